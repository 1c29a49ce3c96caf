/**
 * Swift push and pull benchmark: `sregistry push` / `sregistry pull --no-cache` of a large random
 * file against a local Swift (tests/servers/swift.ts: tempauth, data on tmpfs), against
 * `swift upload` / `swift download` (python3-swiftclient) of the same file in the same run, the
 * tools taking turns; wall time and peak RSS (VmHWM), and sregistry's peak RSS at a quarter of the
 * size to show it is flat. Writes the "## Swift push and pull" section of bench/RESULTS.md.
 *
 * Usage: deno run -A bench/push_pull_swift.ts [sizeMiB=1024] [runs=3]
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CLI_ARGS, DENO_DIR } from "../tests/_cli.ts";
import { startSwift, type Swift } from "../tests/servers/swift.ts";
import { pollPeak } from "./_measure.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SIZE_MIB = Number(Deno.args[0] ?? 1024);
const RUNS = Number(Deno.args[1] ?? 3);

interface Run {
  secs: number;
  peakKiB: number;
}

/** Run a command to the end, polling /proc/<pid>/status for VmHWM. */
async function measure(cmd: Deno.Command, what: string): Promise<Run> {
  const t0 = performance.now();
  const child = cmd.spawn();
  const stop = pollPeak(child, 10);
  const out = await child.output();
  const peak = stop();
  if (!out.success) {
    throw new Error(`${what} failed: ${new TextDecoder().decode(out.stderr).slice(-400)}`);
  }
  return { secs: (performance.now() - t0) / 1000, peakKiB: peak };
}

function sregistry(sw: Swift, home: string, args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [...CLI_ARGS, "--quiet", ...args],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      DENO_DIR,
      SREGISTRY_DATABASE: join(home, "db"),
      SREGISTRY_STORAGE: join(home, "storage"),
      SREGISTRY_CLIENT_SECRETS: join(home, "secrets.json"),
      SREGISTRY_SWIFT_URL: sw.authUrl,
      SREGISTRY_SWIFT_USER: sw.user.name,
      SREGISTRY_SWIFT_TOKEN: sw.user.key,
    },
    stdout: "piped",
    stderr: "piped",
  });
}

function swiftCli(sw: Swift, cwd: string, args: string[]): Deno.Command {
  return new Deno.Command("swift", {
    args: ["-A", sw.authUrl, "-U", sw.user.name, "-K", sw.user.key, "-q", ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  });
}

async function randomFile(path: string, size: number): Promise<void> {
  using f = await Deno.open(path, { create: true, write: true, truncate: true });
  const buf = new Uint8Array(4 * 1024 * 1024);
  for (let left = size; left > 0; left -= buf.length) {
    for (let i = 0; i < buf.length; i += 65536) crypto.getRandomValues(buf.subarray(i, i + 65536));
    const n = Math.min(left, buf.length);
    let off = 0;
    while (off < n) off += await f.write(buf.subarray(off, n));
  }
}

const best = (xs: Run[]) => Math.min(...xs.map((r) => r.secs));
const peak = (xs: Run[]) => Math.max(...xs.map((r) => r.peakKiB)) / 1024;
const mibs = (size: number, s: number) => (size / 1024 / 1024 / s).toFixed(0);

const sw = await startSwift({ memory: true });
const work = await Deno.makeTempDir({ prefix: "sreg-bench-swift-" });
let section = "";
try {
  const size = SIZE_MIB * 1024 * 1024;
  const file = join(work, "big.sif");
  await randomFile(file, size);
  const small = join(work, "small.sif");
  await randomFile(small, Math.floor(size / 4));
  await sw.createContainer("bench");
  await sw.createContainer("bench-swift");
  // Warm the CLI's module cache and the session.
  await measure(sregistry(sw, work, ["push", small, "--name", "swift://bench/warm:v1"]), "warm-up");

  const ours = { push: [] as Run[], pull: [] as Run[] };
  const theirs = { push: [] as Run[], pull: [] as Run[] };
  for (let i = 0; i < RUNS; i++) {
    ours.push.push(
      await measure(sregistry(sw, work, ["push", file, "--name", "swift://bench/big:v1"]), "push"),
    );
    theirs.push.push(await measure(swiftCli(sw, work, ["upload", "bench-swift", "big.sif"]), "up"));
    const dest = join(work, "pulled.sif");
    ours.pull.push(
      await measure(
        sregistry(sw, work, [
          "pull",
          "--no-cache",
          "--force",
          "--file",
          dest,
          "swift://bench/big:v1",
        ]),
        "pull",
      ),
    );
    await Deno.remove(dest);
    theirs.pull.push(
      await measure(
        swiftCli(sw, work, ["download", "bench-swift", "big.sif", "-o", "downloaded.sif"]),
        "download",
      ),
    );
    await Deno.remove(join(work, "downloaded.sif"));
  }
  const smallPush = await measure(
    sregistry(sw, work, ["push", small, "--name", "swift://bench/small:v1"]),
    "small push",
  );
  const smallPull = await measure(
    sregistry(sw, work, [
      "pull",
      "--no-cache",
      "--force",
      "--file",
      join(work, "s.out"),
      "swift://bench/small:v1",
    ]),
    "small pull",
  );

  const row = (what: string, a: Run[], b: Run[]) =>
    `| ${what} | ${best(b).toFixed(2)} s (${mibs(size, best(b))} MiB/s), ${
      peak(b).toFixed(0)
    } MiB | ${best(a).toFixed(2)} s (${mibs(size, best(a))} MiB/s), ${peak(a).toFixed(0)} MiB | **${
      (best(b) / best(a)).toFixed(2)
    }** | ${a.map((r) => r.secs.toFixed(2)).join(" ")} / ${
      b.map((r) => r.secs.toFixed(2)).join(" ")
    } |`;
  section = [
    `## Swift push and pull`,
    ``,
    `Measured by \`deno run -A bench/push_pull_swift.ts ${SIZE_MIB} ${RUNS}\` on ${
      new Date().toISOString().slice(0, 10)
    }, Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs, a single-node Swift ` +
    `(Debian, tempauth, data on tmpfs) on 127.0.0.1; ${SIZE_MIB} MiB of random data; best of ${RUNS} ` +
    `runs, the tools taking turns. sregistry hashes the file (sha256) while it goes up and sets the ` +
    `digest by POST, verifies it on pull, and fsyncs; \`swift\` checks MD5 ETags.`,
    ``,
    `| What | swift (python3-swiftclient) | sregistry | ratio (swift / sregistry time) | all runs, s (sregistry / swift) |`,
    `|---|---|---|---|---|`,
    row(`push (\`swift upload\`)`, ours.push, theirs.push),
    row(`pull (\`swift download\`)`, ours.pull, theirs.pull),
    ``,
    `Peak RSS of sregistry at ${SIZE_MIB / 4} MiB: push ${
      (smallPush.peakKiB / 1024).toFixed(0)
    } MiB, ` +
    `pull ${
      (smallPull.peakKiB / 1024).toFixed(0)
    } MiB (flat when close to the ${SIZE_MIB} MiB figures).`,
    ``,
  ].join("\n");
} finally {
  await sw.stop();
  await Deno.remove(work, { recursive: true }).catch(() => {});
}

console.log(section);
const resultsPath = join(ROOT, "bench", "RESULTS.md");
let results = await Deno.readTextFile(resultsPath).catch(() => "# Benchmark results\n\n");
const re = /## Swift push and pull\n[\s\S]*?(?=\n## |$)/;
results = re.test(results)
  ? results.replace(re, section.trimEnd() + "\n")
  : `${results.trimEnd()}\n\n${section}`;
await Deno.writeTextFile(resultsPath, results);
