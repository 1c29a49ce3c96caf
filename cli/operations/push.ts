/**
 * `sregistry push`: a local file to a remote through the client named by `--name`.
 * @module
 */

import { NotFoundError, UsageError } from "../../core/errors.ts";
import { removeUri } from "../../core/names.ts";
import type { App } from "../app.ts";
import { capability } from "./capability.ts";

/** `sregistry push`. */
export async function pushCommand(
  app: App,
  image: string,
  opts: { name: string; tag?: string },
): Promise<void> {
  try {
    if (!Deno.statSync(image).isFile) throw new UsageError(`${image} is not a file`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`Image file ${JSON.stringify(image)} does not exist`);
    }
    throw e;
  }
  const { client } = app.getClient(opts.name);
  const push = capability(client, "push");
  const result = await push(image, { name: removeUri(opts.name), tag: opts.tag });
  if (app.json) app.out.json({ client: client.name, ...result });
  else app.out.line(result.url);
}
