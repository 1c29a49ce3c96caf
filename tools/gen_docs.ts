/**
 * Writes the parts of the repository that list clients, from the registry in `clients/mod.ts`:
 *
 * - the `Singularity` recipe's apps (one per client: `%appenv` sets `SREGISTRY_CLIENT`, `%apprun`
 *   runs the binary, `%apphelp` gives the description, capabilities and settings);
 * - the README's table of clients by capability, and its table of commands (from
 *   cli/command_table.ts, each linking its docs/commands/ page).
 *
 * Each goes between BEGIN/END markers, so the hand-written text around it stays. Run it with
 * `deno task gen` after registering a client; `tests/generated_test.ts` fails while either file is
 * out of date.
 *
 * Capabilities are read as the conformance suite reads them: the methods of the object each
 * factory's `create(ctx)` returns, built by the real app with an offline fetch in an empty home
 * (`create` does no I/O).
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createApp } from "../mod.ts";
import { FACTORIES } from "../clients/mod.ts";
import {
  CAPABILITIES,
  capabilitiesOf,
  type Capability,
  type ClientFactory,
} from "../clients/types.ts";
import { COMMANDS, type CommandSpec } from "../cli/command_table.ts";
import { memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** One registered client as the generated text shows it. */
export interface ClientRow {
  /** Its factory. */
  factory: ClientFactory;
  /** The methods its client object has. */
  capabilities: Capability[];
}

/** The markers around generated text (`kind` is "apps" or "clients"). */
export function markers(kind: "apps" | "clients" | "commands"): { begin: string; end: string } {
  if (kind === "commands") {
    return {
      begin: "<!-- BEGIN GENERATED COMMANDS (deno task gen; from cli/command_table.ts) -->",
      end: "<!-- END GENERATED COMMANDS -->",
    };
  }
  if (kind === "apps") {
    return {
      begin: "# BEGIN GENERATED APPS (deno task gen; one per client in clients/mod.ts)",
      end: "# END GENERATED APPS",
    };
  }
  return {
    begin: "<!-- BEGIN GENERATED CLIENTS (deno task gen; from clients/mod.ts) -->",
    end: "<!-- END GENERATED CLIENTS -->",
  };
}

/** Every registered client with its capabilities, in registry order. */
export function clientRows(factories: readonly ClientFactory[] = FACTORIES): ClientRow[] {
  const home = Deno.makeTempDirSync({ prefix: "sregistry-gen-" });
  try {
    return factories.map((factory) => {
      const app = createApp({
        env: envFrom({
          HOME: home,
          SREGISTRY_CLIENT: factory.scheme,
          SREGISTRY_CLIENT_SECRETS: join(home, "secrets.json"),
          SREGISTRY_DATABASE: join(home, "db"),
          SREGISTRY_STORAGE: join(home, "storage"),
          SREGISTRY_DISABLE_CREDENTIAL_CACHE: "true",
        }),
        factories,
        fetch: (() => Promise.reject(new Error("create() must not fetch"))) as typeof fetch,
        stdout: memorySink(),
        stderr: memorySink(),
      });
      try {
        return { factory, capabilities: capabilitiesOf(app.getClient().client) };
      } finally {
        app.close();
      }
    });
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
}

/**
 * A client's page, relative to the root: `docs/clients/<scheme>.md`, or the page of an alias
 * (`http.md` for `https`), as the conformance suite looks it up.
 */
export function docsPage(factory: ClientFactory): string {
  const names = [factory.scheme, ...(factory.aliases ?? [])];
  const found = names.find((n) => existsSync(join(ROOT, "docs", "clients", `${n}.md`)));
  return `docs/clients/${found ?? factory.scheme}.md`;
}

const INDENT = "    ";

/**
 * The arguments of each app's `%apphelp` example (`singularity run --app <scheme> sregistry.sif
 * <args>`), taken from the client's docs/clients page: a command the client can run with these
 * arguments (gitlab's search needs a project, https cannot search). The app sets SREGISTRY_CLIENT,
 * so names carry no scheme. tests/singularity_recipe_test.ts runs each one through its app.
 */
export const APP_EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  hub: ["search", "vsoch"],
  docker: ["pull", "ubuntu:22.04"],
  nvidia: ["pull", "tensorflow:17.11"],
  aws: ["pull", "busybox:1.0"],
  oras: ["pull", "ghcr.io/singularityhub/github-ci:latest"],
  https: ["pull", "https://example.org/images/hello.sif"],
  "google-storage": ["search", "vsoch"],
  "google-drive": ["search"],
  registry: ["pull", "vanessa/hello:v1"],
  swift: ["search"],
  s3: ["pull", "vanessa/hello:v1"],
  library: ["search", "alpine"],
  dropbox: ["search", "pusheen"],
  "google-build": ["search", "vanessa"],
  globus: ["search"],
  gitlab: ["search", "singularityhub/gitlab-ci"],
};

/** The example arguments of a client's app; a client without one is an error naming the fix. */
export function appExample(scheme: string): readonly string[] {
  const example = APP_EXAMPLES[scheme];
  if (!example) {
    throw new Error(
      `No Singularity app example for "${scheme}": add one to APP_EXAMPLES in tools/gen_docs.ts`,
    );
  }
  return example;
}

/** The `%apphelp` lines of one client (without indentation). */
export function appHelp(row: ClientRow): string[] {
  const f = row.factory;
  const lines = [
    `${f.scheme}: ${f.description}`,
    `Can: ${row.capabilities.join(", ") || "nothing"}.`,
  ];
  if (f.aliases?.length) {
    lines.push(`Also selected by: ${f.aliases.map((a) => `${a}://`).join(", ")}.`);
  }
  lines.push(
    `Example: singularity run --app ${f.scheme} sregistry.sif ${appExample(f.scheme).join(" ")}`,
  );
  if (f.settings.length === 0) {
    lines.push("Settings: none.");
  } else {
    lines.push(
      "Settings (environment, or `sregistry backend add " + f.scheme + " <VAR> <value>`):",
    );
    for (const s of f.settings) {
      const notes = [
        s.required ? "required" : undefined,
        s.secret ? "secret" : undefined,
        s.default !== undefined && s.default !== "" ? `default ${s.default}` : undefined,
      ].filter((n) => n !== undefined);
      const tail = notes.length ? ` (${notes.join("; ")})` : "";
      lines.push(`  ${s.name}${tail}: ${oneLine(s.description)}`);
    }
  }
  return lines;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** The generated app blocks of the recipe, markers included. */
export function singularityApps(rows: readonly ClientRow[]): string {
  const { begin, end } = markers("apps");
  const out = [begin];
  for (const row of rows) {
    const s = row.factory.scheme;
    // %apprun last: the END marker (and the next app's blank line) then sit in a shell script.
    out.push(
      `%apphelp ${s}`,
      ...appHelp(row).map((l) => INDENT + l),
      `%appenv ${s}`,
      `${INDENT}SREGISTRY_CLIENT=${s}`,
      `${INDENT}export SREGISTRY_CLIENT`,
      `%apprun ${s}`,
      `${INDENT}exec /usr/local/bin/sregistry "$@"`,
      "",
    );
  }
  out.push(end);
  return out.join("\n");
}

/** The generated README table, markers included (not yet formatted by deno fmt). */
export function readmeTable(rows: readonly ClientRow[]): string {
  const { begin, end } = markers("clients");
  const head = ["client", ...CAPABILITIES, "what it is"];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${head.map((_h, i) => i > 0 && i <= CAPABILITIES.length ? ":-:" : "---").join(" | ")} |`,
  ];
  for (const row of rows) {
    const f = row.factory;
    const name = [f.scheme, ...(f.aliases ?? [])].map((n) => `\`${n}://\``).join(" ");
    const cells = [
      `[${f.scheme}](${docsPage(f)}) ${name}`,
      ...CAPABILITIES.map((c) => row.capabilities.includes(c) ? "✓" : ""),
      oneLine(f.description).replaceAll("|", "\\|"),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return [begin, "", ...lines, "", end].join("\n");
}

/** The generated README table of commands, markers included (not yet formatted). */
export function commandsTable(commands: readonly CommandSpec[] = COMMANDS): string {
  const { begin, end } = markers("commands");
  const lines = ["| command | usage | what it does |", "| --- | --- | --- |"];
  for (const c of commands) {
    const args = c.args.map((a) => {
      const n = a.variadic ? `${a.name}...` : a.name;
      return a.required ? `<${n}>` : `[${n}]`;
    });
    const required = c.options.filter((o) => o.required).map((o) =>
      o.type === "string" ? `--${o.name} ${o.value ?? "<value>"}` : `--${o.name}`
    );
    const usage = [c.name, ...args, ...required].join(" ");
    const opts = c.options.filter((o) => !o.required).map((o) => `\`--${o.name}\``).join(", ");
    const what = oneLine(c.summary) + (opts ? ` (${opts})` : "");
    lines.push(
      `| [${c.name}](docs/commands/${c.name}.md) | \`${usage}\` | ${what.replaceAll("|", "\\|")} |`,
    );
  }
  return [begin, "", ...lines, "", end].join("\n");
}

/**
 * Replace the text between `begin` and `end` (markers included) with `block`.
 * @throws {Error} when the markers are missing.
 */
export function replaceBetween(text: string, begin: string, end: string, block: string): string {
  const a = text.indexOf(begin);
  const b = text.indexOf(end, a);
  if (a < 0 || b < 0) throw new Error(`Markers "${begin}" ... "${end}" not found`);
  return text.slice(0, a) + block + text.slice(b + end.length);
}

/**
 * The recipe without `%app*` sections outside the generated block: a branch that added its client's
 * app by hand (before the generator existed) merges cleanly, and the next `deno task gen` replaces
 * that app with the generated one.
 */
export function withoutStrayApps(text: string, begin: string, end: string): string {
  const a = text.indexOf(begin);
  const b = text.indexOf(end, a);
  if (a < 0 || b < 0) return text;
  const strip = (part: string) => {
    const out: string[] = [];
    let inApp = false;
    for (const line of part.split("\n")) {
      if (/^%[a-z]+/.test(line)) inApp = /^%app[a-z]+\s/.test(line);
      if (!inApp) out.push(line);
    }
    return out.join("\n");
  };
  const after = strip(text.slice(b + end.length));
  const tail = after.trim() ? after.trimEnd() + "\n" : "\n";
  return strip(text.slice(0, a)) + text.slice(a, b + end.length) + tail;
}

/** Format markdown as `deno fmt` does, so the check compares like with like. */
export async function fmtMarkdown(text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--config", join(ROOT, "deno.json"), "--ext=md", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  if (!out.success) throw new Error(`deno fmt failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** What `Singularity` and `README.md` should hold, from their current text. */
export async function generate(
  current: { singularity: string; readme: string },
  rows: readonly ClientRow[] = clientRows(),
): Promise<{ singularity: string; readme: string }> {
  const apps = markers("apps");
  const clients = markers("clients");
  const commands = markers("commands");
  return {
    singularity: replaceBetween(
      withoutStrayApps(current.singularity, apps.begin, apps.end),
      apps.begin,
      apps.end,
      singularityApps(rows),
    ),
    readme: await fmtMarkdown(
      replaceBetween(
        replaceBetween(current.readme, clients.begin, clients.end, readmeTable(rows)),
        commands.begin,
        commands.end,
        commandsTable(),
      ),
    ),
  };
}

/** The two generated files' paths. */
export const FILES = {
  singularity: join(ROOT, "Singularity"),
  readme: join(ROOT, "README.md"),
} as const;

if (import.meta.main) {
  const current = {
    singularity: Deno.readTextFileSync(FILES.singularity),
    readme: Deno.readTextFileSync(FILES.readme),
  };
  const next = await generate(current);
  for (const key of ["singularity", "readme"] as const) {
    if (next[key] !== current[key]) {
      Deno.writeTextFileSync(FILES[key], next[key]);
      console.log(`wrote ${FILES[key]}`);
    } else {
      console.log(`${FILES[key]} is up to date`);
    }
  }
}
