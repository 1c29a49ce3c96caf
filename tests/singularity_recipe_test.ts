/**
 * The Singularity recipe: it parses, has one app per registered client and none for a missing one,
 * and each app's `%apprun` line, run through `sh` with its `%appenv` applied and the binary replaced
 * by `deno run` with the compile task's permission flags (read from deno.json), reaches the right
 * client: a capability the client lacks is exit 7 with a message naming that client.
 * @module
 */

import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { CLI_ARGS, compilePermissionFlags, DENO_DIR, ROOT, tempHome } from "./_cli.ts";
import { FACTORIES } from "../clients/mod.ts";
import type { Capability } from "../clients/types.ts";
import { appExample, clientRows } from "../tools/gen_docs.ts";

/** One section of a definition file: `%name [app]` and its body. */
interface Section {
  name: string;
  app?: string;
  body: string[];
}

/** Split a definition file into its header and sections. */
function parseRecipe(text: string): { header: Record<string, string>; sections: Section[] } {
  const header: Record<string, string> = {};
  const sections: Section[] = [];
  let current: Section | undefined;
  for (const line of text.split("\n")) {
    const m = /^%([a-z]+)(?:\s+(\S+))?\s*$/.exec(line);
    if (m) {
      current = { name: m[1], app: m[2], body: [] };
      sections.push(current);
    } else if (current) {
      current.body.push(line);
    } else if (/^[A-Za-z]+:/.test(line)) {
      const [k, ...v] = line.split(":");
      header[k.trim()] = v.join(":").trim();
    } else {
      assert(line.trim() === "" || line.startsWith("#"), `stray header line: ${line}`);
    }
  }
  return { header, sections };
}

const recipe = parseRecipe(Deno.readTextFileSync(join(ROOT, "Singularity")));
const apps = new Map<string, Record<string, string>>();
for (const s of recipe.sections.filter((s) => s.name.startsWith("app"))) {
  assert(s.app, `%${s.name} without an app name`);
  const app = apps.get(s.app) ?? {};
  assertEquals(app[s.name], undefined, `%${s.name} ${s.app} twice`);
  app[s.name] = s.body.join("\n");
  apps.set(s.app, app);
}

/** A command that exercises a capability, for a client lacking it. */
const PROBES: Partial<Record<Capability, string[]>> = {
  share: ["share", "demo/hello:1.0"],
  build: ["build", "Singularity", "--name", "demo/hello:1.0"],
  delete: ["delete", "demo/hello:1.0", "--force"],
  search: ["search", "demo"],
};

Deno.test("singularity recipe: header, default runscript and help", () => {
  assertEquals(recipe.header.Bootstrap, "docker");
  const files = recipe.sections.find((s) => s.name === "files");
  assert(files?.body.some((l) => l.trim() === "dist/sregistry /usr/local/bin/sregistry"));
  const run = recipe.sections.find((s) => s.name === "runscript" && !s.app);
  assert(run?.body.some((l) => l.trim() === 'exec /usr/local/bin/sregistry "$@"'), "runscript");
  assert(recipe.sections.some((s) => s.name === "help" && !s.app), "%help");
});

Deno.test("singularity recipe: one app per registered client, and no other", () => {
  const schemes = FACTORIES.map((f) => f.scheme).sort();
  assertEquals([...apps.keys()].sort(), schemes);
  for (const f of FACTORIES) {
    const app = apps.get(f.scheme)!;
    for (const part of ["appenv", "apprun", "apphelp"]) assert(app[part], `%${part} ${f.scheme}`);
    assert(app.appenv.includes(`SREGISTRY_CLIENT=${f.scheme}`), `%appenv ${f.scheme}`);
    assert(app.apphelp.includes(f.description.split(":")[0]), `%apphelp ${f.scheme}`);
    for (const s of f.settings) assert(app.apphelp.includes(s.name), `${f.scheme}: ${s.name}`);
    assert(/sregistry "\$@"/.test(app.apprun), `%apprun ${f.scheme}`);
  }
});

Deno.test("singularity recipe: every app's %apprun reaches its client", async () => {
  const flags = compilePermissionFlags();
  assert(flags.some((f) => /^(-P|--permission-set)=/.test(f)), `no permission set: ${flags}`);
  assert(!flags.includes("-A") && !flags.includes("--allow-all"), "the binary must not get -A");
  const bin = [
    Deno.execPath(),
    "run",
    "-q",
    ...flags,
    "--config",
    join(ROOT, "deno.json"),
    join(ROOT, "main.ts"),
  ].map(shellQuote).join(" ");
  const rows = clientRows();
  const home = await tempHome();
  try {
    const failures = await Promise.all(rows.map(async (row) => {
      const scheme = row.factory.scheme;
      const app = apps.get(scheme)!;
      const lacking = (Object.keys(PROBES) as Capability[]).find((c) =>
        !row.capabilities.includes(c)
      );
      if (!lacking) return `${scheme}: has every probed capability; add a probe to this test`;
      const script = `${app.appenv}\n${app.apprun.replaceAll("/usr/local/bin/sregistry", bin)}`;
      const out = await new Deno.Command("sh", {
        args: ["-c", script, "sregistry", ...PROBES[lacking]!],
        cwd: home.dir,
        clearEnv: true,
        env: {
          PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          NO_COLOR: "1",
          DENO_DIR,
          ...home.env,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      if (out.code !== 7 || !stderr.includes(`The ${scheme} client cannot`)) {
        return `${scheme} (${PROBES[lacking]!.join(" ")}): exit ${out.code}, ${stderr.trim()}`;
      }
      return undefined;
    }));
    assertEquals(failures.filter((f) => f !== undefined), []);
  } finally {
    await home.cleanup();
  }
});

Deno.test("singularity recipe: every app's help example is a command its client accepts", async () => {
  const bin = [Deno.execPath(), ...CLI_ARGS].map(shellQuote).join(" ");
  const home = await tempHome();
  try {
    const failures = await Promise.all(
      clientRows().map(async (row) => {
        const scheme = row.factory.scheme;
        const app = apps.get(scheme)!;
        const line = app.apphelp.split("\n").find((l) => l.trim().startsWith("Example: "));
        const args = appExample(scheme);
        const shown = `Example: singularity run --app ${scheme} sregistry.sif ${args.join(" ")}`;
        if (line?.trim() !== shown) return `${scheme}: %apphelp shows ${line}, not ${shown}`;
        if (!(row.capabilities as string[]).includes(args[0])) {
          return `${scheme}: the example runs ${args[0]}, which the client cannot do`;
        }
        // Through the app, with every request sent to a closed proxy: the example may fail for a
        // missing setting or the network, never as a usage error or an unsupported command.
        const script = `${app.appenv}\n${app.apprun.replaceAll("/usr/local/bin/sregistry", bin)}`;
        const out = await new Deno.Command("sh", {
          args: ["-c", script, "sregistry", "--json", ...args],
          cwd: home.dir,
          clearEnv: true,
          env: {
            PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
            NO_COLOR: "1",
            DENO_DIR,
            ...home.env,
            HTTPS_PROXY: "http://127.0.0.1:9",
            HTTP_PROXY: "http://127.0.0.1:9",
            SREGISTRY_HTTP_RETRIES: "0",
            SREGISTRY_BACKOFF_MS: "1",
          },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        if (out.code === 0) return undefined;
        // With --json the error is one JSON line on stderr (after any prompt or warning).
        const stderr = new TextDecoder().decode(out.stderr);
        const error = stderr.split("\n").find((l) => l.startsWith('{"error"'));
        const kind = error ? JSON.parse(error).error.kind : undefined;
        if (!["config", "auth", "network"].includes(kind)) {
          return `${scheme} (${args.join(" ")}): exit ${out.code}, ${stderr.trim()}`;
        }
        return undefined;
      }),
    );
    assertEquals(failures.filter((f) => f !== undefined), []);
  } finally {
    await home.cleanup();
  }
});

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
