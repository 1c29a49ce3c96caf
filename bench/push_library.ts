/**
 * Library push benchmark: `sregistry push library://...` through the legacy v2 multipart upload of
 * the library fake (tests/servers/library_fake.ts), which presigns its parts against the real S3
 * API of a local Swift (tests/servers/swift.ts), at `SREGISTRY_LIBRARY_CONCURRENCY` 1 (parts one
 * at a time, as the reference Go client sends them), 4 (the default) and 8; against the same
 * client's `s3://` push straight to Swift (1 and 4 parts at a time, to show what the library path
 * adds), `s3cmd put` (parts one at a time) and `rclone copyto` at `--s3-upload-concurrency` 1
 * and 4, all uploading the same file to the same Swift S3 endpoint with the same part size. Every command runs in a fresh
 * bucket (and for sregistry a fresh fake, so the image is really uploaded), which is emptied
 * after; the tools take turns within each run. Peak RSS from `/usr/bin/time -f %M` (else VmHWM
 * polled from /proc). Writes the "## Library push" section of bench/RESULTS.md.
 *
 * Usage: deno run -A bench/push_library.ts [sizesMiB=256,1024] [runs=3] [partMiB=5]
 * @module
 */

import { createHash, randomFillSync } from "node:crypto";
import { join } from "node:path";
import { CLI_ARGS, DENO_DIR } from "../tests/_cli.ts";
import { fakeSquashfs, layoutSif, primaryPartition, writeSif } from "../tests/_sif_writer.ts";
import { presignS3, startLibraryFake } from "../tests/servers/library_fake.ts";
import { startSwift } from "../tests/servers/swift.ts";
import { machine, median, PEAK_METHOD, timeCommand, writeSection } from "./_measure.ts";
import { s3Tools } from "./_s3_tools.ts";

const MiB = 1024 * 1024;
const SIZES = (Deno.args[0] ?? "256,1024").split(",").map(Number);
const RUNS = Number(Deno.args[1] ?? 3);
const PART_MIB = Number(Deno.args[2] ?? 5);
const TOKEN = "bench-token";

/** One push: wall seconds and peak RSS in MiB. */
async function run(cmd: string, args: string[], env: Record<string, string>) {
  const t = await timeCommand(cmd, args, env);
  return { secs: t.secs, peakMiB: t.peakKiB / 1024 };
}

/** A SIF of `mib` MiB (amd64 squashfs primary partition), random after the superblock. */
async function writeBigSif(path: string, mib: number): Promise<number> {
  const part = primaryPartition("amd64", { size: mib * MiB - 64 * 1024 });
  const input = { launchScript: "#!/usr/bin/env run-singularity\n", objects: [part] };
  const size = await writeSif(path, input);
  const { offset } = layoutSif(input).placed[0];
  using f = await Deno.open(path, { write: true });
  await f.seek(offset, Deno.SeekMode.Start);
  await f.write(fakeSquashfs(4096));
  const buf = new Uint8Array(MiB);
  for (let at = offset + 4096; at < size; at += buf.length) {
    const chunk = buf.subarray(0, Math.min(buf.length, size - at));
    randomFillSync(chunk);
    let done = 0;
    while (done < chunk.length) done += await f.write(chunk.subarray(done));
  }
  return size;
}

const swift = await startSwift();
const work = await Deno.makeTempDir({ prefix: "sreg-bench-library-" });
const lines: string[] = [];
try {
  const home = join(work, "home");
  const base = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: home };
  const { s3cfg, rcloneEnv: rclone } = await s3Tools(swift, work, base);
  const deno = Deno.execPath();
  let buckets = 0;
  /** Empty and remove a bucket and its multipart segments. */
  const drop = async (bucket: string) => {
    for (const c of [bucket, `${bucket}+segments`]) await swift.deleteContainer(c);
  };

  type Tool = { name: string; push: (file: string) => Promise<{ secs: number; peakMiB: number }> };
  const sregistry = (concurrency: number): Tool => ({
    name: `sregistry, ${concurrency} part${concurrency > 1 ? "s" : ""} at a time${
      concurrency === 4 ? " (default)" : ""
    }`,
    push: async (file) => {
      const bucket = `lib-${++buckets}`;
      const lib = await startLibraryFake({
        token: TOKEN,
        namespace: "ns",
        images: {},
        ociRedirect: false,
        s3: swift.s3,
        bucket,
        apiVersion: "2.0.0-alpha.2",
        partSize: PART_MIB * MiB,
      });
      try {
        const env = {
          ...base,
          DENO_DIR,
          SREGISTRY_DATABASE: join(home, "db"),
          SREGISTRY_STORAGE: join(home, "storage"),
          SREGISTRY_LIBRARY_BASE: lib.url,
          SREGISTRY_LIBRARY_TOKEN: TOKEN,
          SREGISTRY_LIBRARY_CONCURRENCY: String(concurrency),
        };
        const r = await run(
          deno,
          [...CLI_ARGS, "push", file, "--name", "library://bench/push/big:v1"],
          env,
        );
        const parts = Math.ceil((await Deno.stat(file)).size / (PART_MIB * MiB));
        if (lib.partsPresigned.length !== parts || lib.maxPartsInFlight > concurrency) {
          throw new Error(
            `expected ${parts} parts, at most ${concurrency} at once; got ${lib.partsPresigned.length}, ${lib.maxPartsInFlight}`,
          );
        }
        return r;
      } finally {
        await lib.stop();
        await drop(bucket);
      }
    },
  });
  const bucketed = (
    name: string,
    cmd: string,
    args: (file: string, bucket: string) => string[],
    env: Record<string, string> | ((bucket: string) => Record<string, string>),
  ): Tool => ({
    name,
    push: async (file) => {
      const bucket = `ref-${++buckets}`;
      await swift.createBucket(bucket);
      try {
        const r = await run(
          cmd,
          args(file, bucket),
          typeof env === "function" ? env(bucket) : env,
        );
        const names = await swift.listObjects(bucket);
        if (names.length !== 1) throw new Error(`${name} left ${names.length} objects`);
        return r;
      } finally {
        await drop(bucket);
      }
    },
  });
  const rcloneTool = (c: number) =>
    bucketed(`rclone copyto, ${c} part${c > 1 ? "s" : ""} at a time`, "rclone", (f, b) => [
      "copyto",
      "--ignore-times",
      "--s3-upload-cutoff",
      "64M",
      "--s3-chunk-size",
      `${PART_MIB}M`,
      "--s3-upload-concurrency",
      String(c),
      f,
      `sw:${b}/big.sif`,
    ], rclone);
  // The same client on the same endpoint with the same part size but straight (its s3:// backend,
  // no library fake and no gateway): what the library path adds to sregistry's own cost.
  const sregistryS3 = (c: number) =>
    bucketed(
      `sregistry push s3:// (straight), ${c} part${c > 1 ? "s" : ""} at a time`,
      deno,
      (f) => [...CLI_ARGS, "push", f, "--name", "s3://bench/big:v1"],
      (bucket) => ({
        ...base,
        DENO_DIR,
        SREGISTRY_DATABASE: join(home, "db"),
        SREGISTRY_STORAGE: join(home, "storage"),
        SREGISTRY_S3_BASE: swift.url,
        AWS_ACCESS_KEY_ID: swift.s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: swift.s3.secretAccessKey,
        SREGISTRY_S3_PART_SIZE: String(PART_MIB),
        SREGISTRY_S3_BUCKET: bucket,
        SREGISTRY_S3_CONCURRENCY: String(c),
      }),
    );
  const tools: Tool[] = [
    sregistry(1),
    sregistry(4),
    sregistry(8),
    sregistryS3(1),
    sregistryS3(4),
    bucketed("s3cmd put, parts one at a time", "s3cmd", (f, b) => [
      "-c",
      s3cfg,
      "put",
      "--multipart-chunk-size-mb",
      String(PART_MIB),
      f,
      `s3://${b}/big.sif`,
    ], base),
    rcloneTool(1),
    rcloneTool(4),
  ];

  const results = new Map<number, Map<string, { secs: number[]; peak: number }>>();
  const verify = new Map<number, number>();
  for (const mib of SIZES) {
    const file = join(work, `big-${mib}.sif`);
    await writeBigSif(file, mib);
    const byTool = new Map(tools.map((t) => [t.name, { secs: [] as number[], peak: 0 }]));
    results.set(mib, byTool);
    // One warm-up push each (page cache, Deno's module cache, Swift's first-object paths).
    if (mib === SIZES[0]) { for (const t of tools) await t.push(file); }
    for (let i = 0; i < RUNS; i++) {
      for (const t of tools) {
        const r = await t.push(file);
        const m = byTool.get(t.name)!;
        m.secs.push(r.secs);
        m.peak = Math.max(m.peak, r.peakMiB);
        console.error(
          `${mib} MiB run ${i + 1} ${t.name}: ${r.secs.toFixed(2)} s, ${r.peakMiB.toFixed(0)} MiB`,
        );
      }
    }
    // What the fake's own check costs (a GET of the whole object and its sha256, as `finish`
    // does before it answers `_multipart_complete`): part of every sregistry figure above.
    const bucket = `chk-${++buckets}`;
    await swift.createBucket(bucket);
    await run("s3cmd", ["-c", s3cfg, "put", file, `s3://${bucket}/big.sif`], base);
    const t0 = performance.now();
    const res = await fetch(presignS3(swift.s3, "GET", `/${bucket}/big.sif`));
    const h = createHash("sha256");
    for await (const chunk of res.body!) h.update(chunk);
    h.digest("hex");
    verify.set(mib, (performance.now() - t0) / 1000);
    await drop(bucket);
    await Deno.remove(file);
  }

  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  lines.push(
    "## Library push",
    "",
    `\`deno run -A bench/push_library.ts ${SIZES.join(",")} ${RUNS} ${PART_MIB}\` on ${
      new Date().toISOString().slice(0, 10)
    }, ${await machine()}; load average at the end ${load}. A SIF (amd64 squashfs partition of random bytes) pushed through the library fake's v2 multipart upload (\`_multipart\`, ${PART_MIB} MiB parts as the fake hands out, above sregistry's 64 MiB threshold; each part presigned by the fake with its sha256, PUT through the fake's gateway to Swift's s3api on 127.0.0.1, data on tmpfs), every push into a fresh bucket; sregistry's own \`s3://\` backend, s3cmd and rclone upload the same file to the same Swift S3 endpoint in ${PART_MIB} MiB parts, straight (no fake, no gateway). Median of ${RUNS} runs after one warm-up, the commands taking turns; peak RSS the most of those runs (${PEAK_METHOD}). Every sregistry push was checked to send every part, at most that many at once.`,
    "",
  );
  const names = tools.map((t) => t.name);
  lines.push(
    `| push | ${SIZES.map((s) => `${s} MiB: median (MiB/s), all runs`).join(" | ")} | ${
      SIZES.map((s) => `peak RSS at ${s} MiB`).join(" | ")
    } |`,
    `|---|${SIZES.map(() => "---|").join("")}${SIZES.map(() => "---|").join("")}`,
  );
  for (const n of names) {
    const cells = SIZES.map((s) => {
      const m = results.get(s)!.get(n)!;
      const med = median(m.secs);
      return `${med.toFixed(2)} s (${(s / med).toFixed(0)}), ${
        m.secs.map((x) => x.toFixed(2)).join(" ")
      }`;
    });
    const rss = SIZES.map((s) => `${results.get(s)!.get(n)!.peak.toFixed(0)} MiB`);
    lines.push(`| ${n} | ${cells.join(" | ")} | ${rss.join(" | ")} |`);
  }
  const ratio = (s: number, a: string, b: string) =>
    (median(results.get(s)!.get(a)!.secs) / median(results.get(s)!.get(b)!.secs)).toFixed(2);
  lines.push(
    "",
    `Speed-up of parallel parts (median time at 1 part / at 4, and / at 8): sregistry ${
      SIZES.map((s) =>
        `${s} MiB **${ratio(s, names[0], names[1])}** / **${ratio(s, names[0], names[2])}**`
      ).join(", ")
    }; sregistry s3:// straight (1 / 4) ${
      SIZES.map((s) => `${s} MiB **${ratio(s, names[3], names[4])}**`).join(", ")
    }; rclone (1 / 4) ${
      SIZES.map((s) => `${s} MiB **${ratio(s, names[6], names[7])}**`).join(", ")
    }.`,
    `sregistry (default) against s3cmd (s3cmd time / sregistry time): ${
      SIZES.map((s) => `${s} MiB **${ratio(s, names[5], names[1])}**`).join(", ")
    }. Of every sregistry figure, the fake's own check of the stored object before it answers \`_multipart_complete\` (a GET of the whole object and its sha256) takes about ${
      SIZES.map((s) => `${verify.get(s)!.toFixed(2)} s at ${s} MiB`).join(", ")
    } (measured alone).`,
    "",
  );
} finally {
  await swift.stop();
  await Deno.remove(work, { recursive: true }).catch(() => {});
}

if (lines.length) {
  const section = lines.join("\n");
  console.log(section);
  console.error(`wrote ${await writeSection("## Library push", section)}`);
}
