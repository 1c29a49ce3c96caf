/**
 * Benchmark: `sregistry images` over a 10,000-image catalog against the `sqlite3` shell running the
 * same listing, and against sregistry-cli 0.2.39 run from its source, all in the same run. Builds
 * the catalog directly with node:sqlite and the real schema, and records median wall time and peak
 * RSS in the "## Catalog images" section of bench/RESULTS.md. Goals (issue 9): at most 3x the
 * `sqlite3` time, at least 5x faster than sregistry-cli, peak RSS at most 60 MiB.
 *
 * sregistry-cli is looked for in `$SREGISTRY_CLI_SRC` (default /tmp/sregistry-cli: unpack it with
 * `git --git-dir=<mirror> archive HEAD | tar -x -C /tmp/sregistry-cli`; it needs Debian's
 * python3-sqlalchemy and python3-requests); the comparison is skipped, with a message, without it.
 *
 * ```sh
 * deno run -A bench/catalog_images.ts [--rows 10000] [--runs 15]
 * ```
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { CLI_ARGS, DENO_DIR } from "../tests/_cli.ts";
import { migrate } from "../db/schema.ts";
import { have, machine, measure, type Measured, methodNote, writeSection } from "./_measure.ts";

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

/** Where sregistry-cli's source is unpacked, if it is. */
function sregistryCliSource(): string | undefined {
  const dir = Deno.env.get("SREGISTRY_CLI_SRC") ?? "/tmp/sregistry-cli";
  if (!have(join(dir, "sregistry", "client", "__init__.py"))) return undefined;
  const probe = new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import sqlalchemy, requests"],
    stdout: "null",
    stderr: "null",
  }).outputSync();
  return probe.code === 0 ? dir : undefined;
}

const row = (m: Measured, name: string) =>
  `| ${name} | ${m.medianMs.toFixed(1)} ms | ${m.minMs.toFixed(1)} ms | ${
    m.maxRssMiB.toFixed(1)
  } MiB |`;

if (import.meta.main) {
  const rows = flag("rows", 10_000);
  const runs = flag("runs", 15);
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
    const src = sregistryCliSource();
    const commands = [
      { label: "sregistry", cmd: [Deno.execPath(), ...CLI_ARGS, "images"] },
      { label: "sqlite3", cmd: ["sqlite3", dbPath, EQUIVALENT_SELECT] },
      { label: "version", cmd: [Deno.execPath(), ...CLI_ARGS, "version"] },
    ];
    if (src) {
      env.PYTHONPATH = src;
      commands.push({
        label: "sregistry-cli",
        cmd: [
          "/usr/bin/python3",
          "-c",
          "import sys; sys.argv = ['sregistry', 'images']; from sregistry.client import main; main()",
        ],
      });
    } else {
      console.error(
        "sregistry-cli is not available (unpack its source into /tmp/sregistry-cli or set SREGISTRY_CLI_SRC, and install python3-sqlalchemy and python3-requests): skipping that comparison",
      );
    }
    const [ours, ref, version, orig] = await measure(commands, { env, runs, tmp });
    // `images` prints "Containers:" and a header line before the rows.
    if (ours.lines - 2 !== rows || ref.lines !== rows) {
      throw new Error(
        `Row counts differ: sregistry ${ours.lines - 2}, sqlite3 ${ref.lines}, expected ${rows}`,
      );
    }
    const ratio = ours.medianMs / ref.medianMs;
    const vsOrig = orig ? orig.medianMs / ours.medianMs : undefined;
    const section = `${SECTION}

\`deno run -A bench/catalog_images.ts --rows ${rows} --runs ${runs}\` on ${
      new Date().toISOString().slice(0, 10)
    }, ${await machine()}; ${methodNote()}. ${
      rows.toLocaleString("en")
    } images in 100 collections; median of ${runs} runs after 3 warm-ups; output piped and discarded.

| command | median wall | min wall | peak RSS |
|---|---|---|---|
${row(ours, "`sregistry images` (`deno run -q -P=cli main.ts images`)")}
${row(ref, '`sqlite3 sregistry.db "<same listing>"`')}
${row(version, "`sregistry version` (start-up alone)")}
${
      orig
        ? row(orig, "sregistry-cli 0.2.39 `sregistry images` (from source, python3)")
        : "| sregistry-cli 0.2.39 | not available in this run | | |"
    }

- sregistry / sqlite3 (median wall): **${ratio.toFixed(2)}x** (goal <= 3.0; 8.8x before)
- sregistry-cli / sregistry: ${
      vsOrig ? `**${vsOrig.toFixed(1)}x** faster` : "not measured"
    } (goal >= 5; 2.6x before)
- peak RSS: **${ours.maxRssMiB.toFixed(1)} MiB** (goal <= 60; 118-123 MiB before)
`;
    const path = await writeSection(SECTION, section);
    console.error(`ratio ${ratio.toFixed(2)}x of sqlite3; wrote ${path}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
