import assert from "./_assert.ts";
import { join } from "node:path";
import { createLogger, memorySink } from "../core/log.ts";
import type { ProgressEvent } from "../core/progress_events.ts";
import {
  createProgressRenderer,
  formatBytes,
  formatDuration,
  renderLine,
} from "../cli/render/progress.ts";
import { CLI_ARGS, DENO_DIR, onPath, requirement, tempHome } from "./_cli.ts";
import { makeData, startFaultServer } from "./servers/fault_server.ts";

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
/** One control sequence at the start of a string: its number and its command letter. */
// deno-lint-ignore no-control-regex
const CSI = /^\x1b\[(\d*)([A-Za-z])/;

Deno.test("bytes and durations read the way people expect", () => {
  assert.deepEqual(
    [0, 1023, 1024, 1536 * 1024, 5 * 1024 ** 3].map(formatBytes),
    ["0 B", "1023 B", "1.0 KiB", "1.5 MiB", "5.0 GiB"],
  );
  assert.deepEqual([0, 59.6, 61, 3723, NaN, -1].map(formatDuration), [
    "0:00",
    "1:00",
    "1:01",
    "1:02:03",
    "--:--",
    "--:--",
  ]);
});

Deno.test("a line shows bytes, rate and ETA and never reaches the last column", () => {
  const b = { label: "ubuntu.sif", value: 512 * 1024, total: 1024 * 1024, start: 0, startValue: 0 };
  const line = renderLine(b, 1000, 80);
  assert.match(line, /^ubuntu\.sif +\[#+ +\] 512\.0 KiB\/1\.0 MiB 512\.0 KiB\/s ETA 0:01$/);
  assert.equal(line.length, 79);
  for (const columns of [30, 45, 60, 120, 200]) {
    assert.ok(renderLine(b, 1000, columns).length <= columns - 1, `${columns} columns`);
  }
  // Too narrow for a bar: the numbers stay.
  assert.match(renderLine(b, 1000, 60), /^ubuntu\.sif 512\.0 KiB/);
  const long = { ...b, label: "library/some-very-long-collection-name/image" };
  assert.match(renderLine(long, 1000, 80), /^…/);
});

/** What a terminal shows after `text`: enough of VT100 for the progress bars (\r \n EL ED CUU). */
function screen(text: string): string[] {
  const rows: string[] = [""];
  let row = 0, col = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\r") col = 0;
    else if (c === "\n") {
      row++;
      col = 0;
      rows[row] ??= "";
    } else if (c === "\x1b") {
      const m = text.slice(i).match(CSI)!;
      if (m[2] === "K") rows[row] = "";
      else if (m[2] === "J") {
        // Erase from the cursor to the end of the screen.
        rows[row] = rows[row].slice(0, col);
        rows.length = row + 1;
      } else if (m[2] === "A") row = Math.max(0, row - Number(m[1] || 1));
      i += m[0].length - 1;
    } else {
      const line = rows[row].padEnd(col);
      rows[row] = line.slice(0, col) + c + line.slice(col + 1);
      col++;
    }
  }
  return rows;
}

Deno.test("progress: throttled frames, one line per part, a newline at the end", () => {
  const sink = memorySink(true);
  let t = 0;
  const r = createProgressRenderer({ sink, now: () => t, columns: 100 });
  const emit = (e: ProgressEvent) => r.emit(e);
  emit({ type: "start", id: "a", label: "total", total: 300 });
  emit({ type: "advance", id: "a", bytes: 10 });
  const first = sink.text();
  assert.match(first, /total/);
  t = 50;
  emit({ type: "advance", id: "a", bytes: 10 });
  assert.equal(sink.text(), first, "redrawn within the interval");
  t = 200;
  emit({ type: "start", id: "p1", label: "part 1/2", total: 150, parent: "a" });
  emit({ type: "start", id: "p2", label: "part 2/2", total: 150, parent: "a" });
  emit({ type: "advance", id: "p1", bytes: 100 });
  t = 400;
  emit({ type: "advance", id: "p2", bytes: 50 });
  // Three lines (two parts and the total); the next frame redraws them in place.
  t = 600;
  emit({ type: "advance", id: "p1", bytes: 1 });
  const mid = screen(sink.text());
  assert.equal(mid.length, 3, mid.join("\n"));
  assert.match(mid[0], /^part 1\/2 .*101 B\/150 B/);
  assert.match(mid[1], /^part 2\/2 .*50 B\/150 B/);
  assert.match(mid[2], /^total .*171 B\/300 B/);
  emit({ type: "end", id: "p1" });
  emit({ type: "end", id: "p2" });
  assert.equal(r.bar("a")?.value, 171);
  emit({ type: "end", id: "a" });
  emit({ type: "end", id: "a" });
  assert.ok(sink.text().endsWith("\n"));
  // The finished parts' lines are gone, not left stale under the total.
  const end = screen(sink.text());
  assert.match(end[0], /^total .*171 B\/300 B/);
  assert.deepEqual(end.slice(1), [""]);
  assert.equal(r.bar("a"), undefined);
});

Deno.test("progress: two transfers at once share the screen, each finished line stays", () => {
  const sink = memorySink(true);
  let t = 0;
  const r = createProgressRenderer({ sink, now: () => t, columns: 80, interval: 0 });
  r.emit({ type: "start", id: "x", label: "layer-x", total: 100 });
  r.emit({ type: "start", id: "y", label: "layer-y", total: 200 });
  t = 10;
  r.emit({ type: "advance", id: "x", bytes: 100 });
  r.emit({ type: "advance", id: "y", bytes: 50 });
  assert.deepEqual(screen(sink.text()).map((l) => l.split(" ")[0]), ["layer-x", "layer-y"]);
  r.emit({ type: "end", id: "x" });
  const rows = screen(sink.text());
  assert.match(rows[0], /^layer-x .*100 B\/100 B/);
  assert.match(rows[1], /^layer-y .*50 B\/200 B/);
  assert.equal(rows.length, 2);
});

Deno.test("progress: a resumed transfer starts at its resume point and never passes 100%", () => {
  const sink = memorySink(true);
  let t = 0;
  const r = createProgressRenderer({ sink, now: () => t, columns: 100, interval: 0 });
  r.emit({ type: "start", id: "d", label: "img.sif", total: 1000, resumedFrom: 600 });
  assert.equal(r.bar("d")?.value, 600);
  t = 1000;
  r.emit({ type: "advance", id: "d", bytes: 200 });
  // The rate counts only this run's bytes: 200 B in one second, not 800.
  assert.match(screen(sink.text())[0], /800 B\/1000 B 200 B\/s/);
  // The server refused the resume: the count starts again instead of stacking on 800.
  r.emit({ type: "restart", id: "d" });
  assert.equal(r.bar("d")?.value, 0);
  r.emit({ type: "advance", id: "d", bytes: 1000 });
  assert.match(screen(sink.text())[0], /1000 B\/1000 B/);
  // A counting error upstream still draws a full bar, never 1.2 KiB of 1000 B.
  r.emit({ type: "advance", id: "d", bytes: 200 });
  const line = screen(sink.text())[0];
  assert.match(line, /\[#+\] 1000 B\/1000 B/);
  assert.doesNotMatch(line, /KiB\/1000 B/);
  // Parts: their bytes count towards the download once, and a part's retry position moves it back.
  r.emit({ type: "start", id: "big", label: "big", total: 100, resumedFrom: 40 });
  r.emit({ type: "start", id: "big.1", label: "part", total: 60, resumedFrom: 0, parent: "big" });
  r.emit({ type: "advance", id: "big.1", bytes: 30 });
  r.emit({ type: "position", id: "big.1", bytes: 20 });
  assert.equal(r.bar("big")?.value, 60);
  r.emit({ type: "advance", id: "big.1", bytes: 40 });
  assert.equal(r.bar("big")?.value, 100);
});

Deno.test("progress: a message while a bar is drawn gets its own line and the bar comes back", () => {
  const sink = memorySink(true);
  let t = 0;
  const r = createProgressRenderer({ sink, now: () => t, columns: 80 });
  const log = createLogger({ sink: r.sink, color: false });
  log.info("before any bar");
  assert.equal(sink.text(), "before any bar\n", "no bar: written as is");
  r.emit({ type: "start", id: "a", label: "ubuntu.sif", total: 1000 });
  t = 500;
  r.emit({ type: "advance", id: "a", bytes: 400 });
  log.warning("The server ignores ranges: starting over");
  let rows = screen(sink.text());
  assert.equal(rows[0], "before any bar");
  assert.equal(rows[1], "WARNING The server ignores ranges: starting over");
  assert.match(rows[2], /^ubuntu\.sif .*400 B\/1000 B/);
  assert.equal(rows.length, 3);
  // With parts on screen too: every bar line moves below the message.
  r.emit({ type: "start", id: "p1", label: "part 1/2", total: 500, parent: "a" });
  r.emit({ type: "start", id: "p2", label: "part 2/2", total: 500, parent: "a" });
  t = 1000;
  r.emit({ type: "advance", id: "p1", bytes: 10 });
  log.warning("second");
  rows = screen(sink.text());
  assert.equal(rows[2], "WARNING second");
  assert.match(rows[3], /^part 1\/2/);
  assert.match(rows[5], /^ubuntu\.sif .*410 B\/1000 B/);
  assert.equal(rows.length, 6);
  r.emit({ type: "end", id: "p1" });
  r.emit({ type: "end", id: "p2" });
  r.emit({ type: "end", id: "a" });
  log.info("after");
  rows = screen(sink.text());
  assert.deepEqual(rows.slice(-2), ["after", ""]);
  assert.match(rows.at(-3)!, /^ubuntu\.sif .*410 B\/1000 B/);
  // No line holds a message and a bar together.
  for (const row of rows) assert.ok(!(row.includes("ETA") && /WARNING|after/.test(row)), row);
});

/** Quote for sh. */
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * `sregistry <flags> pull --no-cache --file <dest> <url>` on a pseudo-terminal of `columns`:
 * script(1) runs it and copies what it draws to stdout. Returns the exit code and the drawing.
 */
async function onTerminal(
  home: { env: Record<string, string> },
  flags: string[],
  dest: string,
  url: string,
  columns: number,
  env: Record<string, string> = {},
): Promise<{ code: number; text: string }> {
  const cli = [Deno.execPath(), ...CLI_ARGS, ...flags, "pull", "--no-cache", "--file", dest, url]
    .map(q).join(" ");
  const out = await new Deno.Command("script", {
    args: ["-qefc", `stty cols ${columns} rows 24; exec ${cli}`, "/dev/null"],
    clearEnv: true,
    env: {
      ...home.env,
      ...env,
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      DENO_DIR,
      TERM: "xterm",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

/** The bar frames in a drawing, without control sequences. */
const framesOf = (text: string, marker = "ETA") =>
  text.split(/[\r\n]+/).map((l) => l.replace(ANSI, "")).filter((l) => l.includes(marker));

const SCRIPT = requirement("script (util-linux)", onPath("script"));

Deno.test({
  name: "CLI on a terminal draws a bar that fits the terminal; --quiet and --json draw none",
  ...SCRIPT,
  async fn() {
    const home = await tempHome();
    const srv = startFaultServer();
    try {
      const data = makeData(3 * 1024 * 1024);
      await srv.setFile("/tty.sif", data);
      // About 1.5 s, so that several frames are drawn.
      srv.setFault("/tty.sif", { rate: 2 * 1024 * 1024 });
      const run = async (flags: string[], columns: number) => {
        const dest = join(home.dir, `tty-${flags.join("")}-${columns}.sif`);
        const { code, text } = await onTerminal(home, flags, dest, `${srv.url}/tty.sif`, columns);
        assert.equal(code, 0, text);
        assert.deepEqual(await Deno.readFile(dest), data);
        return text;
      };
      const wide = await run([], 100);
      const frames = framesOf(wide);
      assert.ok(frames.length >= 3, `only ${frames.length} frames:\n${wide}`);
      assert.match(frames.at(-1)!, /3\.0 MiB\/3\.0 MiB/);
      assert.match(frames[0], /\[#* *\]/);
      assert.ok(frames.every((l) => l.length <= 99), frames.join("\n"));

      const narrowFrames = framesOf(await run([], 50), "MiB");
      assert.ok(narrowFrames.length > 0);
      assert.ok(narrowFrames.every((l) => l.length <= 49), narrowFrames.join("\n"));

      srv.setFault("/tty.sif", {});
      for (const flags of [["--quiet"], ["--json"]]) {
        const text = await run(flags, 100);
        assert.doesNotMatch(text, /ETA/, `${flags}: ${text}`);
      }
    } finally {
      await srv.close();
      await home.cleanup();
    }
  },
});

Deno.test({
  name: "CLI on a terminal: a message while a bar is drawn gets a line of its own",
  ...SCRIPT,
  async fn() {
    const home = await tempHome();
    const srv = startFaultServer();
    try {
      const data = makeData(3 * 1024 * 1024);
      await srv.setFile("/msg.sif", data);
      // The connection drops mid-body: --debug then says so while the bar is on screen.
      srv.setFault("/msg.sif", { rate: 3 * 1024 * 1024, drop: { after: 1536 * 1024, times: 1 } });
      const dest = join(home.dir, "msg.sif");
      const { code, text } = await onTerminal(home, ["--debug"], dest, `${srv.url}/msg.sif`, 100);
      assert.equal(code, 0, text);
      assert.deepEqual(await Deno.readFile(dest), data);
      const rows = screen(text.replaceAll("\r\n", "\n"));
      const broke = rows.findIndex((r) => r.includes("broke at byte"));
      assert.ok(broke >= 0, text);
      // A bar was drawn before the message, and the message starts its line rather than ending one.
      assert.ok(framesOf(text.slice(0, text.indexOf("broke at byte"))).length > 0, text);
      assert.match(rows[broke], /^DEBUG Body of /);
      for (const row of rows) {
        assert.ok(!(row.includes("ETA") && row.includes("DEBUG")), `bar and message: ${row}`);
      }
      assert.match(rows.filter((r) => r.includes("ETA")).at(-1)!, /3\.0 MiB\/3\.0 MiB/);
    } finally {
      await srv.close();
      await home.cleanup();
    }
  },
});

Deno.test({
  name:
    "CLI on a terminal: a resumed pull starts its bar at the partial file and never passes 100%",
  ...SCRIPT,
  async fn() {
    const home = await tempHome();
    const srv = startFaultServer();
    try {
      const data = makeData(3 * 1024 * 1024);
      await srv.setFile("/res.sif", data);
      srv.setFault("/res.sif", { drop: { after: 2 * 1024 * 1024, times: 1 } });
      const dest = join(home.dir, "res.sif");
      const url = `${srv.url}/res.sif`;
      // First run: the drop, no retries: exit 5 with the partial file kept.
      const first = await onTerminal(home, [], dest, url, 100, { SREGISTRY_HTTP_RETRIES: "0" });
      assert.equal(first.code, 5, first.text);
      // The store step downloads to a stable hidden name beside --file, so the next run resumes.
      const partial = [...Deno.readDirSync(home.dir)].find((e) => e.name.endsWith(".partial"));
      assert.ok(partial, "no .partial file was kept");
      assert.equal((await Deno.stat(join(home.dir, partial.name))).size, 2 * 1024 * 1024);
      srv.setFault("/res.sif", { rate: 1024 * 1024 });
      const { code, text } = await onTerminal(home, [], dest, url, 100);
      assert.equal(code, 0, text);
      assert.deepEqual(await Deno.readFile(dest), data);
      assert.equal(srv.requests.at(-1)?.range, "bytes=2097152-");
      const frames = framesOf(text);
      assert.ok(frames.length >= 2, text);
      const mib = frames.map((f) => Number(f.match(/([\d.]+) MiB\/3\.0 MiB/)?.[1]));
      assert.ok(mib.every((n) => n >= 2 && n <= 3), frames.join("\n"));
      assert.equal(mib.at(-1), 3);
    } finally {
      await srv.close();
      await home.cleanup();
    }
  },
});
