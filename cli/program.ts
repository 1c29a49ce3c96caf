/**
 * The command-line program: parse argv with `node:util` parseArgs against the command table, load
 * only the command that runs, run it with the app, and map errors to exit codes. main.ts only hands
 * argv here and handles SIGINT.
 * @module
 */

import type { App, AppOptions } from "./app.ts";
import {
  COMMANDS,
  type CommandSpec,
  findCommand,
  GLOBAL_OPTIONS,
  type OptionSpec,
  type OptionValues,
} from "./command_table.ts";
import { ExitCode, exitCodeOf, InterruptedError, kindOf, UsageError } from "../core/errors.ts";
import { redact, sanitize, streamSink, type TextSink } from "../core/log.ts";
import { VERSION } from "../core/version.ts";

/** Injected IO for {@link main}; defaults are the process's. */
export interface MainOptions extends Omit<AppOptions, "debug" | "quiet" | "json"> {
  /** Where data goes. */
  stdout?: TextSink;
  /** Where messages go. */
  stderr?: TextSink;
}

const EXIT_CODES_HELP = `Exit codes:
  0 ok, 1 other error, 2 usage, 3 not found, 4 authentication or permission,
  5 network or remote server, 6 integrity (digest or size mismatch),
  7 unsupported by this client, 130 interrupted
`;

const TOP_EXAMPLES = `Examples:
  sregistry pull https://example.org/images/hello.sif --name demo/hello:1.0
  sregistry images
  sregistry inspect demo/hello:1.0 --json
  sregistry help oras
  singularity run $(sregistry get demo/hello:1.0)
`;

function flagLabel(o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : "    "}--${o.name}${o.value ? ` ${o.value}` : ""}`;
}

function optionLines(options: readonly OptionSpec[]): string {
  const labels = options.map(flagLabel);
  const width = Math.max(...labels.map((l) => l.length)) + 2;
  return options.map((o, i) =>
    `  ${labels[i].padEnd(width)}${o.description}${o.required ? " (required)" : ""}`
  ).join("\n");
}

function argUsage(spec: CommandSpec): string {
  return spec.args.map((a) => {
    const n = `${a.name}${a.variadic ? "..." : ""}`;
    return a.required ? `<${n}>` : `[${n}]`;
  }).join(" ");
}

/** The top-level help: usage, commands, global options, exit codes, examples. */
export function programHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return `Usage: sregistry [options] <command> [arguments]

Move Singularity/Apptainer images between this machine and many remotes, and keep a local catalog.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join("\n")}
  ${"help".padEnd(width)}print help for a command, or a client's settings and capabilities

Options (anywhere on the line):
${optionLines(GLOBAL_OPTIONS)}

--ca-file, --insecure and --plain-http stand for the settings named, and win over the environment
and the secrets file. --plain-http makes every client with a NOHTTPS setting (docker, oras...) use
http:// for registry hosts (loopback hosts already do); https:// URLs stay https.

Run "sregistry <command> --help" for a command's arguments, options and examples, and
"sregistry help <client>" (docker, s3...) for a client's settings and what it can do.

${EXIT_CODES_HELP}
${TOP_EXAMPLES}`;
}

/** A command's help: usage, arguments, options, global options, notes, examples. */
export function commandHelp(spec: CommandSpec): string {
  const parts = [
    `Usage: sregistry ${spec.name}${spec.args.length ? ` ${argUsage(spec)}` : ""} [options]`,
    spec.summary.charAt(0).toUpperCase() + spec.summary.slice(1),
  ];
  if (spec.args.length) {
    const width = Math.max(...spec.args.map((a) => a.name.length)) + 2;
    parts.push(
      `Arguments:\n${spec.args.map((a) => `  ${a.name.padEnd(width)}${a.description}`).join("\n")}`,
    );
  }
  if (spec.options.length) parts.push(`Options:\n${optionLines(spec.options)}`);
  parts.push(`Global options:\n${optionLines(GLOBAL_OPTIONS)}`);
  if (spec.notes) parts.push(spec.notes);
  if (spec.examples.length) {
    parts.push(`Examples:\n${spec.examples.map((e) => `  ${e}`).join("\n")}`);
  }
  return `${parts.join("\n\n")}\n`;
}

/** Edit distance, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j] + 1,
        cur[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The closest candidate to `word` (within a third of its length), or undefined. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 0.5 : distance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function didYouMean(s: string | undefined): string {
  return s === undefined ? "" : ` (did you mean ${s}?)`;
}

/** What argv says to do. */
export type Invocation =
  | { kind: "help"; spec?: CommandSpec }
  | { kind: "client-help"; name: string }
  | { kind: "version" }
  | { kind: "run"; spec: CommandSpec; args: string[]; opts: OptionValues };

/** Global flags seen on the line, found before full parsing so usage errors can honour --json. */
export interface GlobalFlags {
  /** --debug. */
  debug: boolean;
  /** -q/--quiet. */
  quiet: boolean;
  /** --json. */
  json: boolean;
}

/** The global options that take a value (`--ca-file <pem>`): their value is not the command word. */
const VALUED_GLOBALS: ReadonlySet<string> = new Set(
  GLOBAL_OPTIONS.filter((o) => o.type === "string").map((o) => `--${o.name}`),
);

/** The index of the command word: the first word that is not a flag nor a global flag's value. */
function commandIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("-") || a === "-") return i;
    if (VALUED_GLOBALS.has(a)) i++;
  }
  return -1;
}

/** The global flags anywhere on the line (before a `--`). */
export function scanGlobals(argv: readonly string[]): GlobalFlags {
  const end = argv.indexOf("--");
  const head = end < 0 ? argv : argv.slice(0, end);
  const shorts = head.filter((a) => /^-[a-zA-Z]+$/.test(a)).join("");
  return {
    debug: head.includes("--debug"),
    quiet: head.includes("--quiet") || shorts.includes("q"),
    json: head.includes("--json"),
  };
}

/**
 * Parse argv (without the program name) against the command table.
 * @throws {UsageError} for an unknown command or flag, a missing argument or value, or too many
 * arguments; the message suggests the fix.
 */
export async function parseInvocation(argv: readonly string[]): Promise<Invocation> {
  // The command is the first word that is not a flag; only global flags may come before it.
  const at = commandIndex(argv);
  const before = at < 0 ? argv : argv.slice(0, at);
  for (let i = 0; i < before.length; i++) {
    if (before[i] === "--") break;
    checkGlobalFlag(before[i]);
    if (VALUED_GLOBALS.has(before[i]) && ++i >= before.length) {
      throw new UsageError(`Option ${before[i - 1]} needs a value: ${before[i - 1]} <value>`);
    }
  }
  const word = at < 0 ? undefined : argv[at];
  if (word === undefined || word === "help") {
    const topic = word === "help" ? argv.slice(at + 1).find((a) => !a.startsWith("-")) : undefined;
    if (topic !== undefined && topic !== "help") {
      // `help <client>` (docker, s3...): not a command, so the client registry answers.
      // `help help` is the top help, as `help --help` is.
      const spec = findCommand(topic);
      return spec ? { kind: "help", spec } : { kind: "client-help", name: topic };
    }
    if (word === undefined && !before.some((a) => a === "-h" || a === "--help")) {
      if (before.some((a) => a === "-V" || a === "--version")) return { kind: "version" };
    }
    return { kind: "help" };
  }
  const spec = mustFind(word);
  const rest = [...before, ...argv.slice(at + 1)];
  const options = [...GLOBAL_OPTIONS, ...spec.options];
  const config: Record<string, { type: "boolean" | "string"; short?: string }> = {};
  for (const o of options) {
    config[o.name] = { type: o.type, ...(o.short ? { short: o.short } : {}) };
  }
  // node:util loads only when there are flags to parse: the first node: import alone costs about a
  // quarter of `sregistry version`'s start-up.
  const tokens = rest.some((a) => a.startsWith("-") && a !== "-")
    ? (await import("node:util")).parseArgs({
      args: rest,
      options: config,
      strict: false,
      allowPositionals: true,
      tokens: true,
    }).tokens
    : rest.map((value, index) => ({ kind: "positional" as const, index, value }));
  const opts: OptionValues = {};
  const args: string[] = [];
  for (const t of tokens) {
    if (t.kind === "positional") args.push(t.value);
    if (t.kind !== "option") continue;
    const o = options.find((x) => x.name === t.name);
    if (!o) {
      const names = options.map((x) => `--${x.name}`);
      throw new UsageError(
        `Unknown option ${JSON.stringify(t.rawName)} for "sregistry ${spec.name}"${
          didYouMean(suggest(t.rawName.startsWith("--") ? t.rawName : `--${t.name}`, names))
        }: see "sregistry ${spec.name} --help"`,
      );
    }
    if (o.type === "string") {
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith("-") && t.value !== "-")) {
        throw new UsageError(
          `Option --${o.name} needs a value: --${o.name} ${o.value ?? "<value>"}`,
        );
      }
      opts[o.name] = t.value;
    } else {
      if (t.inlineValue) {
        throw new UsageError(
          `Option --${o.name} takes no value, but got ${
            JSON.stringify(t.value)
          }: give --${o.name} alone`,
        );
      }
      opts[o.name] = true;
    }
  }
  if (opts.help) return { kind: "help", spec };
  if (opts.version) return { kind: "version" };
  for (const o of spec.options) {
    if (opts[o.name] === undefined && o.default !== undefined) opts[o.name] = o.default;
    if (o.required && opts[o.name] === undefined) {
      throw new UsageError(
        `Missing option --${o.name} ${
          o.value ?? "<value>"
        } (${o.description}): usage: sregistry ${spec.name} ${argUsage(spec)} --${o.name} ${
          o.value ?? "<value>"
        }`,
      );
    }
  }
  const required = spec.args.filter((a) => a.required);
  if (args.length < required.length) {
    const missing = required[args.length];
    throw new UsageError(
      `Missing argument <${missing.name}> (${missing.description}): usage: sregistry ${spec.name} ${
        argUsage(spec)
      }`,
    );
  }
  if (!spec.args.some((a) => a.variadic) && args.length > spec.args.length) {
    throw new UsageError(
      `Too many arguments for "sregistry ${spec.name}": ${
        JSON.stringify(args.slice(spec.args.length).join(" "))
      } is extra; usage: sregistry ${spec.name}${spec.args.length ? ` ${argUsage(spec)}` : ""}`,
    );
  }
  return { kind: "run", spec, args, opts };
}

function checkGlobalFlag(flag: string): void {
  const long = GLOBAL_OPTIONS.map((o) => `--${o.name}`);
  if (long.includes(flag)) return;
  if (VALUED_GLOBALS.has(flag.split("=")[0])) return;
  if (/^-[a-zA-Z]+$/.test(flag)) {
    const shorts = GLOBAL_OPTIONS.map((o) => o.short).filter((s) => s !== undefined);
    const bad = [...flag.slice(1)].find((c) => !shorts.includes(c));
    if (bad === undefined) return;
  }
  throw new UsageError(
    `Unknown option ${JSON.stringify(flag)}${didYouMean(suggest(flag, long))}: only ${
      long.join(", ")
    } may come before the command`,
  );
}

/** `help <client>`: not in the command table, as it is not a command of its own. */
const CLIENT_HELP: CommandSpec = {
  name: "help",
  summary: "print a client's settings and capabilities",
  args: [{ name: "client", required: true, description: "a client's scheme, e.g. docker" }],
  options: [],
  examples: ["sregistry help docker", "sregistry help s3 --json"],
  needs: ["clients"],
  load: async () => {
    const m = await import("./commands/client_help.ts");
    return (app, [name]) => m.clientHelpCommand(app, name);
  },
};

/** The names `help <topic>` accepts besides clients, for suggestions. */
export function commandNames(): string[] {
  return [...COMMANDS.map((c) => c.name), "help"];
}

function mustFind(word: string): CommandSpec {
  const spec = findCommand(word);
  if (spec) return spec;
  throw new UsageError(
    `Unknown command ${JSON.stringify(word)}${
      didYouMean(suggest(word, [...COMMANDS.map((c) => c.name), "help"]))
    }: see "sregistry --help" for the commands`,
  );
}

/** Print an error as one line (or JSON) and return its exit code. */
export function reportError(
  error: unknown,
  stderr: TextSink,
  json: boolean,
  debug = false,
): number {
  const code = exitCodeOf(error);
  const message = redact(error instanceof Error ? error.message : String(error))
    .replace(/\s*\n\s*/g, " ");
  if (json) {
    stderr.write(
      `${JSON.stringify({ error: { kind: kindOf(error), message, exitCode: code } })}\n`,
    );
  } else {
    // Messages carry text from servers and files: controls (ESC, NUL) are made visible on the
    // terminal; the JSON form keeps them exact (escaped by JSON.stringify).
    stderr.write(`ERROR ${sanitize(message, true)}\n`);
    if (debug && error instanceof Error && error.stack) {
      stderr.write(`${sanitize(redact(error.stack))}\n`);
    }
  }
  return code;
}

/** The app options for the parts a command uses, imported only then. */
async function loadParts(spec: CommandSpec, options: MainOptions): Promise<Partial<AppOptions>> {
  const parts: Partial<AppOptions> = {};
  if (spec.needs.includes("catalog")) {
    parts.openCatalog = options.openCatalog ?? (await import("../db/catalog.ts")).openCatalog;
  }
  if (spec.needs.includes("clients")) {
    parts.clients = options.clients ?? await import("../clients/mod.ts");
    parts.createHttp = options.createHttp ?? (await import("../core/http.ts")).createHttp;
    parts.createContext = options.createContext ??
      (await import("./client_context.ts")).createClientContext;
  }
  return parts;
}

/** Run the CLI with `argv` (without the program name) and return the exit code. */
export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const stdout = options.stdout ?? streamSink(Deno.stdout);
  const stderr = options.stderr ?? streamSink(Deno.stderr);
  const globals = scanGlobals(argv);
  if (argv.length === 0) {
    stdout.write(`\nSingularity Registry Global Client v${VERSION}\n\n${programHelp()}`);
    return ExitCode.ok;
  }
  let invocation: Invocation;
  try {
    invocation = await parseInvocation(argv);
  } catch (error) {
    return reportError(error, stderr, globals.json, globals.debug);
  }
  if (invocation.kind === "help") {
    stdout.write(invocation.spec ? commandHelp(invocation.spec) : programHelp());
    return ExitCode.ok;
  }
  if (invocation.kind === "version") {
    stdout.write(`${VERSION}\n`);
    return ExitCode.ok;
  }
  const { spec, args, opts } = invocation.kind === "client-help"
    ? { spec: CLIENT_HELP, args: [invocation.name], opts: {} as OptionValues }
    : invocation;
  let app: App | undefined;
  try {
    const [run, parts, { createApp }] = await Promise.all([
      spec.load(),
      loadParts(spec, options),
      import("./app.ts"),
    ]);
    app = createApp({
      ...options,
      ...parts,
      stdout,
      stderr,
      ...globals,
      // The TLS and plain-http flags overlay the settings they stand for (cli/app.ts).
      caFile: typeof opts["ca-file"] === "string" ? opts["ca-file"] : options.caFile,
      insecure: opts.insecure === true || options.insecure,
      plainHttp: opts["plain-http"] === true || options.plainHttp,
    });
    await run(app, args, opts);
    return ExitCode.ok;
  } catch (error) {
    // After Ctrl-C every failure is exit 130; an InterruptedError already says what was (not) done.
    const interrupted = options.signal?.aborted && !(error instanceof InterruptedError)
      ? new InterruptedError("Interrupted")
      : error;
    return reportError(interrupted, stderr, globals.json, globals.debug);
  } finally {
    app?.close();
  }
}
