/**
 * Benchmark: the start-up cost of `sregistry version` against `deno run` of an empty module, the
 * floor any Deno program pays, measured in the same run (goal: ratio at most 2.0). Writes the
 * "## Start-up" section of bench/RESULTS.md.
 *
 * ```sh
 * deno run -A bench/start.ts [--runs 30]
 * ```
 * @module
 */

import { join } from "node:path";
import { CLI_ARGS, DENO_DIR } from "../tests/_cli.ts";
import { machine, measure, methodNote, writeSection } from "./_measure.ts";

const HEADING = "## Start-up";
/** The goal of issue 9: `version` at most this many times an empty module's run. */
export const GOAL = 2.0;

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

if (import.meta.main) {
  const runs = flag("runs", 30);
  const tmp = await Deno.makeTempDir({ prefix: "sregistry-bench-start-" });
  try {
    const empty = join(tmp, "empty.ts");
    await Deno.writeTextFile(empty, "");
    const env = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: tmp,
      DENO_DIR,
      NO_COLOR: "1",
    };
    const [base, version, help] = await measure([
      { label: "empty", cmd: [Deno.execPath(), "run", "-q", empty] },
      { label: "version", cmd: [Deno.execPath(), ...CLI_ARGS, "version"] },
      { label: "help", cmd: [Deno.execPath(), ...CLI_ARGS, "pull", "--help"] },
    ], { env, runs, tmp });
    const ratio = version.medianMs / base.medianMs;
    const section = `${HEADING}

\`deno run -A bench/start.ts --runs ${runs}\` on ${
      new Date().toISOString().slice(0, 10)
    }, ${await machine()}; ${methodNote()}; median of ${runs} runs after 3 warm-ups.

| command | median wall | min wall | peak RSS |
|---|---|---|---|
| \`deno run -q empty.ts\` (the floor) | ${base.medianMs.toFixed(1)} ms | ${
      base.minMs.toFixed(1)
    } ms | ${base.maxRssMiB.toFixed(1)} MiB |
| \`sregistry version\` (\`deno run -q -P=cli main.ts version\`) | ${
      version.medianMs.toFixed(1)
    } ms | ${version.minMs.toFixed(1)} ms | ${version.maxRssMiB.toFixed(1)} MiB |
| \`sregistry pull --help\` | ${help.medianMs.toFixed(1)} ms | ${help.minMs.toFixed(1)} ms | ${
      help.maxRssMiB.toFixed(1)
    } MiB |

Ratio version / empty (median wall): **${ratio.toFixed(2)}x** (goal <= ${
      GOAL.toFixed(1)
    }; 5.8x with commander, zod and every client loaded eagerly).
`;
    const path = await writeSection(HEADING, section);
    console.error(`ratio ${ratio.toFixed(2)}x (goal <= ${GOAL}); wrote ${path}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
