/**
 * Shared timing for the start-up and listing benchmarks: hyperfine when it is installed (commands
 * taking turns, warm-up runs, JSON export), else our own loop; peak RSS from `/usr/bin/time -f %M`
 * (else VmHWM polled from /proc).
 * @module
 */

import { join } from "node:path";

/** One measured command. */
export interface Measured {
  /** Label in the results table. */
  label: string;
  /** The command line. */
  cmd: string[];
  /** Median wall time, ms. */
  medianMs: number;
  /** Fastest run, ms. */
  minMs: number;
  /** Peak RSS over a few runs, MiB. */
  maxRssMiB: number;
  /** Lines of stdout of one run. */
  lines: number;
}

/** Whether a program is installed. */
export function have(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** hyperfine on PATH, if any. */
export const HYPERFINE: string | undefined = ["/usr/bin/hyperfine", "/usr/local/bin/hyperfine"]
  .find(have);
const TIME = have("/usr/bin/time") ? "/usr/bin/time" : undefined;

/** How {@link timeCommand} takes peak RSS, for the results. */
export const PEAK_METHOD: string = TIME ? "max RSS from /usr/bin/time" : "VmHWM polled from /proc";

/** The median of `xs`. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * Poll a running child's VmHWM (peak RSS) every `everyMs`; the returned function stops polling and
 * gives the highest value seen, in KiB. For commands that cannot run under `/usr/bin/time`.
 */
export function pollPeak(child: Deno.ChildProcess, everyMs = 10): () => number {
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const m = Deno.readTextFileSync(`/proc/${child.pid}/status`).match(/VmHWM:\s+(\d+)/);
      if (m) peak = Math.max(peak, Number(m[1]));
    } catch {
      // exited
    }
  }, everyMs);
  return () => {
    clearInterval(poll);
    return peak;
  };
}

/** One timed run of a command ({@link timeCommand}). */
export interface Timed {
  /** Wall time, seconds. */
  secs: number;
  /** Peak RSS, KiB. */
  peakKiB: number;
  /** Standard output. */
  stdout: string;
}

/**
 * Run `cmd args` to the end in a clean environment: wall time and peak RSS (`/usr/bin/time`'s %M
 * when it is installed, else VmHWM polled from /proc). Throws, with the end of stderr, when the
 * command fails.
 */
export async function timeCommand(
  cmd: string,
  args: readonly string[],
  env: Record<string, string>,
): Promise<Timed> {
  const timeFile = TIME ? await Deno.makeTempFile({ prefix: "sreg-bench-time-" }) : undefined;
  try {
    const argv = timeFile ? [TIME!, "-f", "%M", "-o", timeFile, cmd, ...args] : [cmd, ...args];
    const start = performance.now();
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stop = timeFile ? undefined : pollPeak(child, 2);
    const out = await child.output();
    const secs = (performance.now() - start) / 1000;
    let peakKiB = stop?.() ?? 0;
    if (out.code !== 0) {
      throw new Error(
        `${[cmd, ...args].join(" ")} failed (${out.code}): ${
          new TextDecoder().decode(out.stderr).slice(-800)
        }`,
      );
    }
    if (timeFile) peakKiB = Number((await Deno.readTextFile(timeFile)).trim().split("\n").pop());
    return { secs, peakKiB, stdout: new TextDecoder().decode(out.stdout) };
  } finally {
    if (timeFile) await Deno.remove(timeFile).catch(() => {});
  }
}

async function runOnce(
  cmd: string[],
  env: Record<string, string>,
): Promise<{ ms: number; rssKb: number; lines: number }> {
  const t = await timeCommand(cmd[0], cmd.slice(1), env);
  return {
    ms: t.secs * 1000,
    rssKb: t.peakKiB,
    lines: t.stdout.split("\n").filter((l) => l !== "").length,
  };
}

/**
 * Time `commands` in the same run (taking turns under hyperfine), `runs` times each after
 * `warmup` runs, and take peak RSS from three more runs of each.
 */
export async function measure(
  commands: { label: string; cmd: string[] }[],
  options: { env: Record<string, string>; runs: number; warmup?: number; tmp: string },
): Promise<Measured[]> {
  const { env, runs, tmp } = options;
  const warmup = options.warmup ?? 3;
  const times = new Map<string, number[]>();
  if (HYPERFINE) {
    const exportFile = join(tmp, "hyperfine.json");
    const out = await new Deno.Command(HYPERFINE, {
      args: [
        "-N",
        "--style",
        "none",
        "-w",
        String(warmup),
        "-r",
        String(runs),
        "--export-json",
        exportFile,
        ...commands.map((c) => c.cmd.map(quote).join(" ")),
      ],
      env,
      clearEnv: true,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.code !== 0) {
      throw new Error(`hyperfine failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    const { results } = JSON.parse(await Deno.readTextFile(exportFile)) as {
      results: { times: number[] }[];
    };
    results.forEach((r, i) => times.set(commands[i].label, r.times.map((t) => t * 1000)));
  } else {
    for (const c of commands) times.set(c.label, []);
    for (let i = 0; i < warmup; i++) for (const c of commands) await runOnce(c.cmd, env);
    for (let i = 0; i < runs; i++) {
      for (const c of commands) times.get(c.label)!.push((await runOnce(c.cmd, env)).ms);
    }
  }
  const results: Measured[] = [];
  for (const c of commands) {
    let rss = 0;
    let lines = 0;
    for (let i = 0; i < 3; i++) {
      const r = await runOnce(c.cmd, env);
      rss = Math.max(rss, r.rssKb);
      lines = r.lines;
    }
    const ts = times.get(c.label)!;
    const m: Measured = {
      label: c.label,
      cmd: c.cmd,
      medianMs: median(ts),
      minMs: Math.min(...ts),
      maxRssMiB: rss / 1024,
      lines,
    };
    console.error(
      `${m.label}: median ${m.medianMs.toFixed(1)} ms, min ${m.minMs.toFixed(1)} ms, ` +
        `peak RSS ${m.maxRssMiB.toFixed(1)} MiB`,
    );
    results.push(m);
  }
  return results;
}

/** How the figures were taken, for the results. */
export function methodNote(): string {
  return `${
    HYPERFINE ? "hyperfine -N (commands taking turns)" : "own timing loop"
  }; peak RSS ${PEAK_METHOD}`;
}

/** The machine, for the results. */
export async function machine(): Promise<string> {
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(
    /model name\s*:\s*(.+)/,
  )?.[1] ?? "unknown CPU";
  return `${navigator.hardwareConcurrency} CPUs (${cpu}), ${Deno.build.os}/${Deno.build.arch}, Deno ${Deno.version.deno}`;
}

/** Replace (or append) one `## ` section of a results document, leaving the others alone. */
export function replaceSection(doc: string, heading: string, section: string): string {
  const start = doc.indexOf(`${heading}\n`);
  if (start < 0) return `${doc.trimEnd()}${doc.trim() ? "\n\n" : ""}${section}`;
  const next = doc.indexOf("\n## ", start + heading.length);
  const tail = next < 0 ? "" : doc.slice(next + 1);
  return `${doc.slice(0, start)}${section}${tail ? `\n${tail}` : ""}`;
}

/** Write `section` into bench/RESULTS.md under `heading`. */
export async function writeSection(heading: string, section: string): Promise<string> {
  const path = new URL("./RESULTS.md", import.meta.url).pathname;
  let doc = "# Benchmark results\n";
  try {
    doc = await Deno.readTextFile(path);
  } catch {
    // first run
  }
  await Deno.writeTextFile(path, replaceSection(doc, heading, section));
  return path;
}
