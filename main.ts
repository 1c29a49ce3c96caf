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

if (import.meta.main) {
  const controller = new AbortController();
  let interrupts = 0;
  const onInterrupt = () => {
    // The first Ctrl-C lets transfers stop cleanly (keeping .partial files for resume); the second
    // one does not wait.
    if (++interrupts > 1) Deno.exit(ExitCode.interrupted);
    controller.abort(new InterruptedError("Interrupted"));
  };
  try {
    Deno.addSignalListener("SIGINT", onInterrupt);
  } catch {
    // Signals are not available everywhere (Windows without a console); Ctrl-C then kills at once.
  }
  const code = await main(Deno.args, { signal: controller.signal });
  Deno.exit(controller.signal.aborted ? ExitCode.interrupted : code);
}
