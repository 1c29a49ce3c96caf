/**
 * The `sregistry` command line: hands argv to `cli/`, turns SIGINT into a clean stop, exits.
 *
 * ```sh
 * deno run -A jsr:@sregistry/cli pull docker://alpine:3.20
 * ```
 * @module
 */

import { main } from "./cli/program.ts";
import { ExitCode, InterruptedError } from "./core/errors.ts";

export { main, type MainOptions } from "./cli/program.ts";

/**
 * Run the command line as a program: `args` (default `Deno.args`), Ctrl-C and SIGTERM as a clean
 * stop, then exit with the command's code. `mod.ts` calls it too, so that
 * `deno run jsr:@sregistry/cli <command>` (the package's default export) is the CLI as well.
 */
export async function runProgram(args: string[] = Deno.args): Promise<never> {
  const controller = new AbortController();
  let interrupts = 0;
  const onInterrupt = () => {
    // The first Ctrl-C lets transfers stop cleanly (keeping .partial files for resume); the second
    // one does not wait.
    if (++interrupts > 1) Deno.exit(ExitCode.interrupted);
    controller.abort(new InterruptedError("Interrupted"));
  };
  // SIGTERM (kill, a batch system's time limit) stops as cleanly as the first Ctrl-C.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(signal, onInterrupt);
    } catch {
      // Signals are not available everywhere (Windows without a console); Ctrl-C then kills at once.
    }
  }
  const code = await main(args, { signal: controller.signal });
  // A command that finished its work despite the interrupt exits 0 (it said so); one that stopped
  // exits 130.
  Deno.exit(controller.signal.aborted && code !== 0 ? ExitCode.interrupted : code);
}

if (import.meta.main) await runProgram();
