/**
 * Benchmark: pull of an 8-layer, 512 MiB image from a local distribution registry with sregistry
 * (`docker://`, no cache) against `skopeo copy docker://... oci:dir` of the same image in the same
 * run. Writes (replaces) the "## OCI pull" section of bench/RESULTS.md, leaving other sections alone.
 *
 * Run: deno run -A bench/pull_oci.ts
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CLI_ARGS, DENO_DIR } from "../tests/_cli.ts";
import { pushImage, startRegistry } from "../tests/servers/registry.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const LAYERS = 8;
const LAYER_MIB = 64;
const RUNS = 3;

async function time(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

async function mustRun(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const reg = await startRegistry();
const work = await Deno.makeTempDir({ prefix: "sregistry-bench-" });
try {
  const layers: Uint8Array[] = [];
  for (let i = 0; i < LAYERS; i++) {
    // Random bytes: incompressible, like real layers; the registry does not look inside.
    const b = new Uint8Array(LAYER_MIB * 1024 * 1024);
    for (let o = 0; o < b.length; o += 65536) crypto.getRandomValues(b.subarray(o, o + 65536));
    layers.push(b);
  }
  await pushImage({ url: reg.url }, "bench/big", "v1", layers);
  layers.length = 0;
  const ref = `${reg.host}/bench/big:v1`;
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const home = join(work, `home-${r}`);
    await Deno.mkdir(join(home, "tmp"), { recursive: true });
    ours.push(
      await time(() =>
        mustRun(Deno.execPath(), [
          ...CLI_ARGS,
          "pull",
          "--no-cache",
          "--file",
          join(home, "out.oci.tar"),
          `docker://${ref}`,
        ], {
          PATH: "/usr/bin:/bin",
          HOME: home,
          DENO_DIR,
          SREGISTRY_STORAGE: join(home, "storage"),
          SREGISTRY_DATABASE: join(home, "db"),
          SREGISTRY_TMPDIR: join(home, "tmp"),
        })
      ),
    );
    theirs.push(
      await time(() =>
        mustRun("skopeo", [
          "--insecure-policy",
          "copy",
          "--src-tls-verify=false",
          `docker://${ref}`,
          `oci:${join(work, `skopeo-${r}`)}:v1`,
        ])
      ),
    );
    await Deno.remove(home, { recursive: true });
    await Deno.remove(join(work, `skopeo-${r}`), { recursive: true });
  }
  const o = median(ours);
  const s = median(theirs);
  const section = `## OCI pull

Pull of an ${LAYERS}-layer image (${LAYERS * LAYER_MIB} MiB, incompressible) from a local
distribution registry (Debian docker-registry, 127.0.0.1, http), median of ${RUNS} runs, each into an
empty cache. sregistry: \`sregistry pull --no-cache docker://...\` (download, verify, write an OCI
archive; includes the CLI start). skopeo: \`skopeo copy docker://... oci:dir\`.
Measured ${new Date().toISOString().slice(0, 10)} on ${Deno.build.os}/${Deno.build.arch}.

| tool | median wall time | runs |
|---|---|---|
| sregistry | ${o.toFixed(2)} s | ${ours.map((x) => x.toFixed(2)).join(", ")} |
| skopeo | ${s.toFixed(2)} s | ${theirs.map((x) => x.toFixed(2)).join(", ")} |

Ratio sregistry / skopeo: **${(o / s).toFixed(2)}** (below 1 is faster than skopeo).
`;
  const path = join(ROOT, "bench", "RESULTS.md");
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch {
    text = "# Benchmark results\n";
  }
  const re = /## OCI pull\n[\s\S]*?(?=\n## |$)/;
  text = re.test(text) ? text.replace(re, section) : `${text.trimEnd()}\n\n${section}`;
  await Deno.writeTextFile(path, text);
  console.log(section);
} finally {
  await reg.stop();
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
