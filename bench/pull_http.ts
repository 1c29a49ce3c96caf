/**
 * HTTP pull benchmark: `sregistry pull --no-cache` of a large file from a local nginx (digest verified)
 * against `curl -o` of the same file in the same run, plus peak memory (VmHWM) at two sizes and the
 * bytes re-fetched after a SIGKILL at about 50%. Writes the "## HTTP pull" section of bench/RESULTS.md.
 *
 * Usage: deno run -A bench/pull_http.ts [sizeMiB=1024] [runs=5]
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CLI_ARGS, DENO_DIR } from "../tests/_cli.ts";
import { makeLargeFile, startNginx } from "../tests/servers/nginx.ts";
import { pollPeak } from "./_measure.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SIZE_MIB = Number(Deno.args[0] ?? 1024);
/** Runs of each tool; the best is reported because this machine's disk and CPU are shared. */
const RUNS = Number(Deno.args[1] ?? 5);

function cli(args: string[], home: string): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [...CLI_ARGS, ...args],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      DENO_DIR,
      SREGISTRY_DATABASE: join(home, "db"),
      SREGISTRY_STORAGE: join(home, "storage"),
    },
    stdout: "piped",
    stderr: "piped",
  });
}

/** Run a process, polling /proc/<pid>/status for VmHWM; returns seconds and peak KiB. */
async function measure(
  cmd: Deno.Command,
): Promise<{ secs: number; peakKiB: number; ok: boolean; err: string }> {
  const t0 = performance.now();
  const child = cmd.spawn();
  const stop = pollPeak(child, 20);
  const out = await child.output();
  const peak = stop();
  return {
    secs: (performance.now() - t0) / 1000,
    peakKiB: peak,
    ok: out.success,
    err: new TextDecoder().decode(out.stderr).slice(-300),
  };
}

async function bytesSent(log: string, path: string): Promise<number> {
  const text = await Deno.readTextFile(log).catch(() => "");
  let n = 0;
  for (const line of text.split("\n")) {
    const m = line.match(/^(\d+) (\d+) ".*" (\S+)$/);
    if (m && m[3] === path) n += Number(m[2]);
  }
  return n;
}

const ng = await startNginx();
const work = await Deno.makeTempDir({ prefix: "sreg-bench-" });
const rows: string[] = [];
try {
  const size = SIZE_MIB * 1024 * 1024;
  const small = 256 * 1024 * 1024;
  await makeLargeFile(join(ng.root, "big.sif"), size);
  await makeLargeFile(join(ng.root, "small.sif"), small);
  const url = `${ng.http}/big.sif`;
  // Warm the page cache and the CLI's module cache so both tools start equal.
  await new Deno.Command("curl", { args: ["-s", "-o", "/dev/null", url] }).output();
  await cli(["version"], work).output();

  const curlRuns: number[] = [], sregRuns: number[] = [];
  let peakBig = 0, peakSmall = 0, curlPeak = 0;
  for (let i = 0; i < RUNS; i++) {
    const c = await measure(
      new Deno.Command("curl", {
        args: ["-s", "-o", join(work, "curl.out"), url],
        stderr: "piped",
      }),
    );
    curlRuns.push(c.secs);
    curlPeak = Math.max(curlPeak, c.peakKiB);
    await Deno.remove(join(work, "curl.out"));
    const s = await measure(
      cli(["pull", "--no-cache", "--force", "--file", join(work, "s.sif"), url], work),
    );
    if (!s.ok) throw new Error(`sregistry failed: ${s.err}`);
    sregRuns.push(s.secs);
    peakBig = Math.max(peakBig, s.peakKiB);
    await Deno.remove(join(work, "s.sif"));
  }
  const s2 = await measure(
    cli(
      ["pull", "--no-cache", "--force", "--file", join(work, "m.sif"), `${ng.http}/small.sif`],
      work,
    ),
  );
  peakSmall = s2.peakKiB;
  await Deno.remove(join(work, "m.sif")).catch(() => {});
  const curlBest = Math.min(...curlRuns), sregBest = Math.min(...sregRuns);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const curlMed = median(curlRuns), sregMed = median(sregRuns);

  // Resume: SIGKILL at ~50%, then pull again and count what nginx sent the second time.
  const dest = join(work, "r.sif");
  const child = cli(["pull", "--no-cache", "--file", dest, url], work).spawn();
  let done = 0;
  for (let i = 0; i < 2000 && done < size / 2; i++) {
    await new Promise((r) => setTimeout(r, 5));
    try {
      const meta = JSON.parse(await Deno.readTextFile(`${dest}.partial.json`));
      done = meta.parts
        ? meta.parts.reduce(
          (a: number, p: { start: number; pos: number }) => a + p.pos - p.start,
          0,
        )
        : (await Deno.stat(`${dest}.partial`)).size;
    } catch { /* not started yet */ }
  }
  try {
    child.kill("SIGKILL");
  } catch { /* finished already */ }
  await child.output();
  const meta = JSON.parse(await Deno.readTextFile(`${dest}.partial.json`).catch(() => "{}"));
  const kept = meta.parts
    ? meta.parts.reduce((a: number, p: { start: number; pos: number }) => a + p.pos - p.start, 0)
    : (await Deno.stat(`${dest}.partial`).catch(() => ({ size: 0 }))).size;
  const before = await bytesSent(ng.accessLog, "/big.sif");
  const again = await measure(cli(["pull", "--no-cache", "--file", dest, url], work));
  await new Promise((r) => setTimeout(r, 300)); // nginx writes its log line after the response
  const refetched = (await bytesSent(ng.accessLog, "/big.sif")) - before;
  const gib = (n: number) => (n / 1024 ** 3).toFixed(2);

  rows.push(
    `## HTTP pull`,
    ``,
    `Measured by \`deno run -A bench/pull_http.ts ${SIZE_MIB}\` on ${
      new Date().toISOString().slice(0, 10)
    }, ` +
      `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs, nginx on 127.0.0.1 (sendfile), ` +
      `best of ${RUNS} runs, the tools taking turns. sregistry verifies sha256 and fsyncs; curl does neither.`,
    ``,
    `| What | curl -o | sregistry pull --no-cache | ratio (curl time / sregistry time) |`,
    `|---|---|---|---|`,
    `| ${SIZE_MIB} MiB wall time | ${curlBest.toFixed(2)} s (${gib(size / curlBest)} GiB/s) | ${
      sregBest.toFixed(2)
    } s (${gib(size / sregBest)} GiB/s) | **${(curlBest / sregBest).toFixed(2)}** (goal >= 0.6) |`,
    `| ${SIZE_MIB} MiB wall time, median | ${curlMed.toFixed(2)} s | ${sregMed.toFixed(2)} s | ${
      (curlMed / sregMed).toFixed(2)
    } |`,
    `| all runs (s) | ${curlRuns.map((x) => x.toFixed(2)).join(" ")} | ${
      sregRuns.map((x) => x.toFixed(2)).join(" ")
    } | |`,
    `| peak RSS (VmHWM), ${SIZE_MIB} MiB | ${(curlPeak / 1024).toFixed(0)} MiB | ${
      (peakBig / 1024).toFixed(0)
    } MiB | |`,
    `| peak RSS (VmHWM), 256 MiB | | ${
      (peakSmall / 1024).toFixed(0)
    } MiB | flat if close to the row above |`,
    ``,
    `Resume: SIGKILL when ${(kept / size * 100).toFixed(0)}% was on disk (${
      meta.parts ? `${meta.parts.length} ranged streams` : "single stream"
    }); the next pull ${again.ok ? "succeeded" : "FAILED"} in ${
      again.secs.toFixed(2)
    } s and fetched ` +
      `${(refetched / 1024 ** 2).toFixed(0)} MiB again = **${
        (refetched / size).toFixed(3)
      }** of the file ` +
      `(ideal: ${((size - kept) / size).toFixed(3)}).`,
    ``,
  );
} finally {
  await ng.stop();
  await Deno.remove(work, { recursive: true }).catch(() => {});
}

const section = rows.join("\n");
console.log(section);
const resultsPath = join(ROOT, "bench", "RESULTS.md");
let results = await Deno.readTextFile(resultsPath).catch(() => "# Benchmark results\n\n");
const re = /## HTTP pull\n[\s\S]*?(?=\n## |$)/;
results = re.test(results)
  ? results.replace(re, section.trimEnd() + "\n")
  : `${results.trimEnd()}\n\n${section}`;
await Deno.writeTextFile(resultsPath, results);
