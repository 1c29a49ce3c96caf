/**
 * The command-line program: parse argv, run one command with the app, map errors to exit codes.
 * main.ts only hands argv here and handles SIGINT.
 * @module
 */

import { Command, CommanderError } from "@commander-js/extra-typings";
import { type App, type AppOptions, createApp, type RunWithApp } from "./app.ts";
import { registerBackendCommand } from "./commands/backend.ts";
import { registerLocalCommands } from "./commands/local.ts";
import { registerRemoteCommands } from "./commands/remote.ts";
import { ExitCode, exitCodeOf, InterruptedError, kindOf } from "../core/errors.ts";
import { redact, sanitize, streamSink, type TextSink } from "../core/log.ts";
import { VERSION } from "../core/version.ts";

/** Injected IO for {@link main}; defaults are the process's. */
export interface MainOptions extends Omit<AppOptions, "debug" | "quiet" | "json"> {
  /** Where data goes. */
  stdout?: TextSink;
  /** Where messages go. */
  stderr?: TextSink;
}

const EXIT_CODES_HELP = `
Exit codes:
  0 ok, 1 other error, 2 usage, 3 not found, 4 authentication or permission,
  5 network or remote server, 6 integrity (digest or size mismatch),
  7 unsupported by this client, 130 interrupted

Examples:
  sregistry pull https://example.org/images/hello.sif --name demo/hello:1.0
  sregistry images
  sregistry inspect demo/hello:1.0 --json
  singularity run $(sregistry get demo/hello:1.0)
`;

/** Build the commander program; `run` executes an action with the app. */
export function buildProgram(run: RunWithApp, stdout: TextSink, stderr: TextSink): Command {
  const program = new Command()
    .name("sregistry")
    .description(
      "Move Singularity/Apptainer images between this machine and many remotes, and keep a local catalog.",
    )
    .version(VERSION, "-V, --version", "print the version and exit")
    .option("--debug", "print debug messages (credentials stay hidden)")
    .option("-q, --quiet", "only warnings and errors; no progress bars")
    .option("--json", "print data, and errors, as JSON")
    .addHelpText("after", EXIT_CODES_HELP)
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => stdout.write(s),
      writeErr: (s) => stderr.write(s),
      outputError: (s, write) => write(`ERROR ${s.replace(/^error: /, "").trim()}\n`),
    });

  program
    .command("version")
    .description("print the version")
    .action(() =>
      run((app) => {
        if (app.json) app.out.json({ version: VERSION, deno: Deno.version.deno });
        else app.out.line(VERSION);
        return Promise.resolve();
      })
    );

  registerLocalCommands(program, run);
  registerRemoteCommands(program, run);
  registerBackendCommand(program, run);
  for (const cmd of program.commands) {
    cmd.exitOverride().configureOutput({
      writeOut: (s) => stdout.write(s),
      writeErr: (s) => stderr.write(s),
      outputError: (s, write) => write(`ERROR ${s.replace(/^error: /, "").trim()}\n`),
    });
  }
  return program;
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

/** Run the CLI with `argv` (without the program name) and return the exit code. */
export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const stdout = options.stdout ?? streamSink(Deno.stdout);
  const stderr = options.stderr ?? streamSink(Deno.stderr);
  let exitCode: number = ExitCode.ok;
  let globals: { debug?: boolean; quiet?: boolean; json?: boolean } = {};

  const run: RunWithApp = async (action) => {
    let app: App | undefined;
    try {
      app = createApp({ ...options, stdout, stderr, ...globals });
      await action(app);
    } catch (error) {
      const interrupted = options.signal?.aborted ? new InterruptedError("Interrupted") : error;
      exitCode = reportError(interrupted, stderr, globals.json ?? false, globals.debug ?? false);
    } finally {
      app?.close();
    }
  };

  const program = buildProgram(run, stdout, stderr);
  program.hook("preAction", (_this, actionCommand) => {
    globals = actionCommand.optsWithGlobals() as typeof globals;
  });
  if (argv.length === 0) {
    stdout.write(`\nSingularity Registry Global Client v${VERSION}\n\n`);
    stdout.write(program.helpInformation());
    stdout.write(EXIT_CODES_HELP);
    return ExitCode.ok;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" || error.code === "commander.version" ||
        error.code === "commander.help"
      ) return ExitCode.ok;
      return ExitCode.usage;
    }
    return reportError(error, stderr, globals.json ?? false, globals.debug ?? false);
  }
  if (program.args.length > 0 && !program.commands.some((c) => c.name() === program.args[0])) {
    return ExitCode.usage;
  }
  return exitCode;
}
