/**
 * `sregistry build`: a remote build through the client named by `--name`.
 * @module
 */

import { removeUri } from "../../core/names.ts";
import type { App } from "../app.ts";
import { capability } from "./capability.ts";

/** `sregistry build`. */
export async function buildCommand(
  app: App,
  args: string[],
  opts: { name: string; preview?: boolean },
) {
  const { client } = app.getClient(opts.name);
  const build = capability(client, "build");
  const result = await build(args[0] ?? "Singularity", {
    name: removeUri(opts.name),
    extra: args.slice(1),
  });
  app.out.json(result);
}
