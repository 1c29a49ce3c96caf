/**
 * `sregistry push`: a local file to a remote through the client named by `--name`.
 * @module
 */

import { NotFoundError, UsageError } from "../../core/errors.ts";
import { exists, isFile } from "../../core/fs.ts";
import { removeUri } from "../../core/names.ts";
import type { App } from "../app.ts";
import { capability } from "./capability.ts";

/** `sregistry push`. */
export async function pushCommand(
  app: App,
  image: string,
  opts: { name: string; tag?: string; force?: boolean; platform?: string },
): Promise<void> {
  if (!exists(image)) throw new NotFoundError(`Image file ${JSON.stringify(image)} does not exist`);
  if (!isFile(image)) throw new UsageError(`${JSON.stringify(image)} is not a file`);
  const { client } = app.getClient(opts.name);
  const push = capability(client, "push");
  const result = await push(image, {
    name: removeUri(opts.name),
    tag: opts.tag,
    force: opts.force,
    platform: opts.platform,
  });
  if (app.json) app.out.json({ client: client.name, ...result });
  else app.out.line(result.url);
}
