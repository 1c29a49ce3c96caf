/**
 * Benchmark: `sregistry images` over a 10,000-image catalog against a plain `sqlite3` query of the
 * same rows. Builds the catalog directly with node:sqlite and the real schema, runs each side several
 * times, and records median wall time and peak memory (max RSS from `/usr/bin/time`, else VmHWM
 * polled from /proc) in the "## Catalog images" section of bench/RESULTS.md.
 *
 * ```sh
 * deno run -A bench/catalog_images.ts [--rows 10000] [--runs 7]
 * ```
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CLI_ARGS, DENO_DIR } from "../tests/_cli.ts";
import { migrate } from "../db/schema.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const RESULTS = join(ROOT, "bench", "RESULTS.md");
const SECTION = "## Catalog images";

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

/** The rows `images` prints, as one SQL statement for the sqlite3 shell. */
export const EQUIVALENT_SELECT =
  "SELECT c.id, c.created_at, c.client, k.name || '/' || c.name || ':' || c.tag || " +
  "CASE WHEN c.version IS NOT NULL AND c.version != '' THEN '@' || c.version ELSE '' END " +
  "FROM container c LEFT JOIN collection k ON k.id = c.collection_id ORDER BY c.id";

/** Fill a new catalog with `rows` images spread over 100 collections. */
export function buildCatalog(dbPath: string, rows: number, storage: string): void {
  const db = new DatabaseSync(dbPath);
  try {
    db.exec("PRAGMA journal_mode = WAL");
    migrate(db);
    db.exec("BEGIN");
    const coll = db.prepare("INSERT INTO collection (name, token, created_at) VALUES (?, ?, ?)");
    for (let i = 0; i < 100; i++) {
      coll.run(`collection${i}`, crypto.randomUUID(), "2026-01-01 00:00:00");
    }
    const ins = db.prepare(
      `INSERT INTO container (created_at, metrics, name, tag, image, url, uri, client, version,
       collection_id, size, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (let i = 0; i < rows; i++) {
      const c = i % 100;
      const version = (i.toString(16).padStart(8, "0")).repeat(8);
      const name = `image${i}`;
      const uri = `collection${c}/${name}:v${i % 7}@${version}`;
      const day = String(1 + (i % 28)).padStart(2, "0");
      const metrics = JSON.stringify({
        collection: `collection${c}`,
        image: name,
        tag: `v${i % 7}`,
        version,
        uri,
        type: "container",
        MAINTAINER: "bench",
        "org.label-schema.build-date": "2026-01-01",
        deffile: "Bootstrap: docker\nFrom: alpine:3.20\n%post\n  echo hello\n",
      });
      ins.run(
        `2026-03-${day} 12:00:00`,
        metrics,
        name,
        `v${i % 7}`,
        join(storage, `collection${c}`, name, `v${i % 7}@${version}.sif`),
        null,
        uri,
        i % 3 ? "docker" : "local",
        version,
        c + 1,
        1024 * i,
        `sha256:${version}`,
      );
    }
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

interface Sample {
  ms: number;
  maxRssKb: number;
  lines: number;
}

const HAS_TIME = (() => {
  try {
    return Deno.statSync("/usr/bin/time").isFile;
  } catch {
    return false;
  }
})();

async function runOnce(cmd: string[], env: Record<string, string>, tmp: string): Promise<Sample> {
  const timeFile = join(tmp, "time.out");
  const argv = HAS_TIME ? ["/usr/bin/time", "-f", "%M", "-o", timeFile, ...cmd] : cmd;
  const start = performance.now();
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let hwm = 0;
  let poll: ReturnType<typeof setInterval> | undefined;
  if (!HAS_TIME) {
    // VmHWM of the child itself; a poll can miss the very end, so this is a lower bound.
    poll = setInterval(() => {
      try {
        const s = Deno.readTextFileSync(`/proc/${child.pid}/status`);
        const m = s.match(/VmHWM:\s+(\d+)/);
        if (m) hwm = Math.max(hwm, Number(m[1]));
      } catch {
        // exited
      }
    }, 5);
  }
  const out = await child.output();
  const ms = performance.now() - start;
  if (poll !== undefined) clearInterval(poll);
  if (out.code !== 0) {
    throw new Error(
      `${cmd.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  if (HAS_TIME) hwm = Number((await Deno.readTextFile(timeFile)).trim().split("\n").pop());
  const text = new TextDecoder().decode(out.stdout);
  return { ms, maxRssKb: hwm, lines: text.split("\n").filter((l) => l !== "").length };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function bench(
  label: string,
  cmd: string[],
  env: Record<string, string>,
  tmp: string,
  runs: number,
) {
  await runOnce(cmd, env, tmp); // warm-up: caches, page cache
  const samples: Sample[] = [];
  for (let i = 0; i < runs; i++) samples.push(await runOnce(cmd, env, tmp));
  const result = {
    label,
    medianMs: median(samples.map((s) => s.ms)),
    minMs: Math.min(...samples.map((s) => s.ms)),
    maxRssMb: Math.max(...samples.map((s) => s.maxRssKb)) / 1024,
    lines: samples[0].lines,
  };
  console.error(
    `${label}: median ${result.medianMs.toFixed(1)} ms, min ${result.minMs.toFixed(1)} ms, ` +
      `peak RSS ${result.maxRssMb.toFixed(1)} MiB, ${result.lines} lines`,
  );
  return result;
}

/** Replace (or append) this benchmark's section, leaving the other sections alone. */
export function replaceSection(doc: string, section: string): string {
  const start = doc.indexOf(`${SECTION}\n`);
  if (start < 0) return `${doc.trimEnd()}${doc.trim() ? "\n\n" : ""}${section}`;
  const next = doc.indexOf("\n## ", start + SECTION.length);
  const tail = next < 0 ? "" : doc.slice(next + 1);
  return `${doc.slice(0, start)}${section}${tail ? `\n${tail}` : ""}`;
}

if (import.meta.main) {
  const rows = flag("rows", 10_000);
  const runs = flag("runs", 7);
  const tmp = await Deno.makeTempDir({ prefix: "sregistry-bench-" });
  try {
    const dbDir = join(tmp, "db");
    const storage = join(tmp, "storage");
    await Deno.mkdir(dbDir, { recursive: true });
    const dbPath = join(dbDir, "sregistry.db");
    buildCatalog(dbPath, rows, storage);

    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: tmp,
      DENO_DIR,
      NO_COLOR: "1",
      SREGISTRY_DATABASE: dbDir,
      SREGISTRY_STORAGE: storage,
      SREGISTRY_CLIENT_SECRETS: join(tmp, "secrets.json"),
    };
    const sregistry = [Deno.execPath(), ...CLI_ARGS, "images"];
    const ours = await bench("sregistry images", sregistry, env, tmp, runs);
    const ref = await bench("sqlite3", ["sqlite3", dbPath, EQUIVALENT_SELECT], env, tmp, runs);
    // `images` prints "Containers:" and a header line before the rows.
    if (ours.lines - 2 !== rows || ref.lines !== rows) {
      throw new Error(
        `Row counts differ: sregistry ${ours.lines - 2}, sqlite3 ${ref.lines}, expected ${rows}`,
      );
    }
    const empty = await bench(
      "deno run (empty: `sregistry version`)",
      [...sregistry.slice(0, -1), "version"],
      env,
      tmp,
      runs,
    );
    const ratio = ours.medianMs / ref.medianMs;
    const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() =>
      ""
    )).match(/model name\s*:\s*(.+)/)?.[1] ??
      "unknown CPU";
    const section = `${SECTION}

\`deno run -A bench/catalog_images.ts --rows ${rows} --runs ${runs}\` on ${
      new Date().toISOString().slice(0, 10)
    },
${navigator.hardwareConcurrency} CPUs (${cpu}), Deno ${Deno.version.deno}, SQLite via node:sqlite; reference
\`sqlite3\` shell. ${
      rows.toLocaleString("en")
    } images in 100 collections; median of ${runs} runs after
one warm-up; output piped and discarded; peak memory is max RSS (${
      HAS_TIME ? "/usr/bin/time" : "/proc VmHWM"
    }).

| command | median wall | min wall | peak RSS |
|---|---|---|---|
| \`sregistry images\` (\`deno run -q -P=cli main.ts images\`) | ${ours.medianMs.toFixed(0)} ms | ${
      ours.minMs.toFixed(0)
    } ms | ${ours.maxRssMb.toFixed(1)} MiB |
| \`sqlite3 sregistry.db "<same rows>"\` | ${ref.medianMs.toFixed(0)} ms | ${
      ref.minMs.toFixed(0)
    } ms | ${ref.maxRssMb.toFixed(1)} MiB |
| \`sregistry version\` (start-up cost alone) | ${empty.medianMs.toFixed(0)} ms | ${
      empty.minMs.toFixed(0)
    } ms | ${empty.maxRssMb.toFixed(1)} MiB |

Ratio sregistry / sqlite3 (median wall): **${ratio.toFixed(1)}x**; of sregistry's ${
      ours.medianMs.toFixed(0)
    } ms, about ${empty.medianMs.toFixed(0)} ms is Deno start-up and module loading
(\`version\`), so listing ${rows.toLocaleString("en")} rows costs ~${
      Math.max(0, ours.medianMs - empty.medianMs).toFixed(0)
    } ms (one SELECT, one buffered write).
`;
    let doc = "";
    try {
      doc = await Deno.readTextFile(RESULTS);
    } catch {
      doc = "# Benchmark results\n";
    }
    await Deno.writeTextFile(RESULTS, replaceSection(doc, section));
    console.error(`ratio ${ratio.toFixed(2)}x; wrote ${RESULTS}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
