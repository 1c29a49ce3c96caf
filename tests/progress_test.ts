import assert from "node:assert/strict";
import { join } from "node:path";
import { memorySink } from "../core/log.ts";
import { createProgress, formatBytes, formatDuration, renderLine } from "../core/progress.ts";
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

/** What a terminal shows after `text`: enough of VT100 for the progress bars (\r \n EL CUU). */
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
      else if (m[2] === "A") row = Math.max(0, row - Number(m[1] || 1));
      i += m[0].length - 1;
    } else {
      const line = rows[row].padEnd(col);
      rows[row] = line.slice(0, col) + c + line.slice(col + 1);
      col++;
    }
  }
  return rows;
}

Deno.test("progress: throttled frames, one line per stream, a newline at the end", () => {
  const sink = memorySink(true);
  let t = 0;
  const p = createProgress({
    sink,
    enabled: true,
    label: "total",
    total: 300,
    now: () => t,
    columns: 100,
  });
  p.total.add(10);
  const first = sink.text();
  assert.match(first, /total/);
  t = 50;
  p.total.add(10);
  assert.equal(sink.text(), first, "redrawn within the interval");
  t = 200;
  const a = p.stream("part 1/2", 150);
  const b = p.stream("part 2/2", 150);
  a.add(100);
  t = 400;
  b.add(50);
  // Three lines (two streams and the total); the next frame redraws them in place.
  t = 600;
  a.add(1);
  const mid = screen(sink.text());
  assert.equal(mid.length, 3, mid.join("\n"));
  assert.match(mid[0], /^part 1\/2 .*101 B\/150 B/);
  assert.match(mid[1], /^part 2\/2 .*50 B\/150 B/);
  assert.match(mid[2], /^total .*171 B\/300 B/);
  a.done();
  b.done();
  p.done();
  p.done();
  assert.ok(sink.text().endsWith("\n"));
  // The finished streams' lines are gone, not left stale under the total.
  const end = screen(sink.text());
  assert.match(end[0], /^total .*171 B\/300 B/);
  assert.deepEqual(end.slice(1), ["", ""]);
  assert.equal(p.total.value, 171);
});

Deno.test("progress disabled draws nothing", () => {
  const sink = memorySink(true);
  const p = createProgress({ sink, enabled: false, label: "x" });
  p.total.add(5);
  p.stream("s").add(5);
  p.done();
  assert.equal(sink.text(), "");
});

/** Quote for sh. */
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

Deno.test({
  name: "CLI on a terminal draws a bar that fits the terminal; --quiet and --json draw none",
  ...requirement("script (util-linux)", onPath("script")),
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
        const cli = [Deno.execPath(), ...CLI_ARGS, ...flags, "pull", "--no-cache", "--file", dest]
          .concat(`${srv.url}/tty.sif`).map(q).join(" ");
        // script(1) runs the command on a pseudo-terminal and copies what it draws to stdout.
        const out = await new Deno.Command("script", {
          args: ["-qefc", `stty cols ${columns} rows 24; exec ${cli}`, "/dev/null"],
          clearEnv: true,
          env: {
            ...home.env,
            PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
            DENO_DIR,
            TERM: "xterm",
          },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
        assert.deepEqual(await Deno.readFile(dest), data);
        return text;
      };
      const wide = await run([], 100);
      const frames = wide.split(/[\r\n]+/).map((l) => l.replace(ANSI, "")).filter((l) =>
        l.includes("ETA")
      );
      assert.ok(frames.length >= 3, `only ${frames.length} frames:\n${wide}`);
      assert.match(frames.at(-1)!, /3\.0 MiB\/3\.0 MiB/);
      assert.match(frames[0], /\[#* *\]/);
      assert.ok(frames.every((l) => l.length <= 99), frames.join("\n"));

      const narrow = await run([], 50);
      const narrowFrames = narrow.split(/[\r\n]+/).map((l) => l.replace(ANSI, "")).filter((l) =>
        l.includes("MiB")
      );
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
