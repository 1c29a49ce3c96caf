/**
 * S3 push and pull benchmark through a local Swift s3api (tests/servers/swift.ts): `sregistry push`
 * and `sregistry pull --no-cache` of one file against `s3cmd put`/`get` and `rclone copyto` (an S3
 * remote for the same server, configured through RCLONE_CONFIG_* variables) of the same file, in
 * the same run, the tools taking turns; plus sregistry's peak RSS at a quarter of the size, to
 * show memory is flat in file size. Writes the "## S3 push and pull" section of bench/RESULTS.md.
 *
 * Usage: deno run -A bench/push_pull_s3.ts [sizeMiB=1024] [runs=3]
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CLI_ARGS, DENO_DIR } from "../tests/_cli.ts";
import { startSwift } from "../tests/servers/swift.ts";
import { PEAK_METHOD, timeCommand } from "./_measure.ts";
import { s3Tools } from "./_s3_tools.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SIZE_MIB = Number(Deno.args[0] ?? 1024);
const RUNS = Number(Deno.args[1] ?? 3);
const BUCKET = "bench";

/** Run a command; wall seconds and peak RSS in MiB. */
async function measure(cmd: string, args: string[], env: Record<string, string>) {
  const t = await timeCommand(cmd, args, env);
  return { secs: t.secs, peakMiB: t.peakKiB / 1024 };
}

async function writeRandom(path: string, mib: number) {
  using f = await Deno.open(path, { create: true, write: true, truncate: true });
  const buf = new Uint8Array(1024 * 1024);
  for (let i = 0; i < mib; i++) {
    for (let j = 0; j < buf.length; j += 65536) crypto.getRandomValues(buf.subarray(j, j + 65536));
    await f.write(buf);
  }
}

async function sameFile(a: string, b: string) {
  const out = await new Deno.Command("cmp", { args: ["-s", a, b] }).output();
  if (!out.success) throw new Error(`${b} differs from ${a}`);
}

const swift = await startSwift();
const work = await Deno.makeTempDir({ prefix: "sreg-bench-s3-" });
const rows: string[] = [];
try {
  await swift.createBucket(BUCKET);
  const file = join(work, "big.sif");
  const small = join(work, "small.sif");
  await writeRandom(file, SIZE_MIB);
  await writeRandom(small, Math.max(1, SIZE_MIB / 4));
  const home = join(work, "home");
  const base = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: home };
  const sreg = {
    ...base,
    DENO_DIR,
    SREGISTRY_DATABASE: join(home, "db"),
    SREGISTRY_STORAGE: join(home, "storage"),
    SREGISTRY_S3_BASE: swift.url,
    SREGISTRY_S3_BUCKET: BUCKET,
    AWS_ACCESS_KEY_ID: swift.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: swift.s3.secretAccessKey,
  };
  const { s3cfg, rcloneEnv: rclone } = await s3Tools(swift, work, base);
  const deno = Deno.execPath();
  const out = join(work, "out.sif");
  type Tool = {
    name: string;
    push: () => Promise<{ secs: number; peakMiB: number }>;
    pull: () => Promise<{ secs: number; peakMiB: number }>;
  };
  const tools: Tool[] = [
    {
      name: "sregistry",
      push: () => measure(deno, [...CLI_ARGS, "push", file, "--name", "s3://bench/big:v1"], sreg),
      pull: () =>
        measure(deno, [
          ...CLI_ARGS,
          "pull",
          "--no-cache",
          "--force",
          "--file",
          out,
          "s3://bench/big:v1",
        ], sreg),
    },
    {
      name: "s3cmd",
      push: () => measure("s3cmd", ["-c", s3cfg, "put", file, `s3://${BUCKET}/s3cmd.sif`], base),
      pull: () =>
        measure("s3cmd", ["-c", s3cfg, "get", "--force", `s3://${BUCKET}/s3cmd.sif`, out], base),
    },
    {
      name: "rclone",
      push: () =>
        measure("rclone", ["copyto", "--ignore-times", file, `sw:${BUCKET}/rclone.sif`], rclone),
      pull: () => measure("rclone", ["copyto", `sw:${BUCKET}/rclone.sif`, out], rclone),
    },
  ];
  const times: Record<
    string,
    { push: number[]; pull: number[]; pushRss: number; pullRss: number }
  > = {};
  for (const t of tools) times[t.name] = { push: [], pull: [], pushRss: 0, pullRss: 0 };
  for (let run = 0; run < RUNS; run++) {
    for (const t of tools) {
      const p = await t.push();
      times[t.name].push.push(p.secs);
      times[t.name].pushRss = Math.max(times[t.name].pushRss, p.peakMiB);
      await Deno.remove(out).catch(() => {});
      const g = await t.pull();
      times[t.name].pull.push(g.secs);
      times[t.name].pullRss = Math.max(times[t.name].pullRss, g.peakMiB);
      await sameFile(file, out);
      await Deno.remove(out);
      console.error(
        `run ${run + 1} ${t.name}: push ${p.secs.toFixed(2)} s, pull ${g.secs.toFixed(2)} s`,
      );
    }
  }
  // Memory at a quarter of the size: flat if close to the full size's.
  const sp = await measure(
    deno,
    [...CLI_ARGS, "push", small, "--name", "s3://bench/small:v1"],
    sreg,
  );
  const sg = await measure(deno, [
    ...CLI_ARGS,
    "pull",
    "--no-cache",
    "--force",
    "--file",
    out,
    "s3://bench/small:v1",
  ], sreg);
  const best = (xs: number[]) => Math.min(...xs);
  const fmt = (s: number) => `${s.toFixed(2)} s (${(SIZE_MIB / 1024 / s).toFixed(2)} GiB/s)`;
  const s = times.sregistry;
  rows.push(
    "## S3 push and pull",
    "",
    `Measured by \`deno run -A bench/push_pull_s3.ts ${SIZE_MIB} ${RUNS}\` on ${
      new Date().toISOString().slice(0, 10)
    }, Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs, Swift ${"2.30"} s3api on 127.0.0.1 (single node, data on tmpfs), best of ${RUNS} runs, the tools taking turns (peak RSS ${PEAK_METHOD}), every pull compared with cmp. sregistry hashes the file (sha256) before a push and verifies it on pull (and fsyncs); s3cmd and rclone compute MD5s. Defaults everywhere (sregistry: 16 MiB parts, 4 at a time, one stream on loopback; s3cmd: 15 MiB parts, one at a time; rclone: 5 MiB parts, 4 at a time, --ignore-times so it uploads again).`,
    "",
    `| ${SIZE_MIB} MiB | sregistry | s3cmd | rclone | s3cmd / sregistry | rclone / sregistry |`,
    "|---|---|---|---|---|---|",
    `| push, best | ${fmt(best(s.push))} | ${fmt(best(times.s3cmd.push))} | ${
      fmt(best(times.rclone.push))
    } | **${(best(times.s3cmd.push) / best(s.push)).toFixed(2)}** | **${
      (best(times.rclone.push) / best(s.push)).toFixed(2)
    }** |`,
    `| pull, best | ${fmt(best(s.pull))} | ${fmt(best(times.s3cmd.pull))} | ${
      fmt(best(times.rclone.pull))
    } | **${(best(times.s3cmd.pull) / best(s.pull)).toFixed(2)}** | **${
      (best(times.rclone.pull) / best(s.pull)).toFixed(2)
    }** |`,
    `| push, all runs (s) | ${s.push.map((x) => x.toFixed(2)).join(" ")} | ${
      times.s3cmd.push.map((x) => x.toFixed(2)).join(" ")
    } | ${times.rclone.push.map((x) => x.toFixed(2)).join(" ")} | | |`,
    `| pull, all runs (s) | ${s.pull.map((x) => x.toFixed(2)).join(" ")} | ${
      times.s3cmd.pull.map((x) => x.toFixed(2)).join(" ")
    } | ${times.rclone.pull.map((x) => x.toFixed(2)).join(" ")} | | |`,
    `| peak RSS push / pull | ${s.pushRss.toFixed(0)} / ${s.pullRss.toFixed(0)} MiB | ${
      times.s3cmd.pushRss.toFixed(0)
    } / ${times.s3cmd.pullRss.toFixed(0)} MiB | ${times.rclone.pushRss.toFixed(0)} / ${
      times.rclone.pullRss.toFixed(0)
    } MiB | | |`,
    `| sregistry peak RSS at ${Math.max(1, SIZE_MIB / 4)} MiB, push / pull | ${
      sp.peakMiB.toFixed(0)
    } / ${sg.peakMiB.toFixed(0)} MiB | | | | flat if close to the row above |`,
    "",
    "Ratios are the other tool's time over sregistry's: above 1 means sregistry is faster.",
    "",
  );
} finally {
  await swift.stop();
  await Deno.remove(work, { recursive: true }).catch(() => {});
}

const section = rows.join("\n");
console.log(section);
if (rows.length) {
  const resultsPath = join(ROOT, "bench", "RESULTS.md");
  let results = await Deno.readTextFile(resultsPath).catch(() => "# Benchmark results\n\n");
  const re = /## S3 push and pull\n[\s\S]*?(?=\n## |$)/;
  results = re.test(results)
    ? results.replace(re, section.trimEnd() + "\n")
    : `${results.trimEnd()}\n\n${section}`;
  await Deno.writeTextFile(resultsPath, results);
}
