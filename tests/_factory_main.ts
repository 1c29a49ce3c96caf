/**
 * `sregistry` with one more client registered through createApp's `factories` option, the way a
 * new backend runs before it is in clients/mod.ts: `deno run -P=cli tests/_factory_main.ts
 * <module-url> <command...>`, where the module exports `factory`. SIGINT is handled as main.ts does.
 * @module
 */

import { main } from "../main.ts";
import { FACTORIES } from "../clients/mod.ts";
import type { ClientFactory } from "../clients/types.ts";
import { ExitCode, InterruptedError } from "../core/errors.ts";

const [moduleUrl, ...argv] = Deno.args;
const { factory } = await import(moduleUrl) as { factory: ClientFactory };
const controller = new AbortController();
let interrupts = 0;
Deno.addSignalListener("SIGINT", () => {
  if (++interrupts > 1) Deno.exit(ExitCode.interrupted);
  controller.abort(new InterruptedError("Interrupted"));
});
const code = await main(argv, { signal: controller.signal, factories: [...FACTORIES, factory] });
Deno.exit(controller.signal.aborted ? ExitCode.interrupted : code);
