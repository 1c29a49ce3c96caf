/**
 * `sregistry delete`: a remote image, after a confirmation through the prompt (or `--force`).
 * @module
 */

import type { App } from "../app.ts";
import { capability } from "./capability.ts";

/**
 * `sregistry delete`: asks "Delete <uri>? [y/N]" unless --force; no (or no terminal and no answer on
 * stdin) deletes nothing and is exit 0. The client may ask again before other names go with it.
 */
export async function deleteCommand(
  app: App,
  image: string,
  opts: { force?: boolean; platform?: string },
) {
  const { client, ctx } = app.getClient(image);
  const del = capability(client, "delete");
  const nothing = () => {
    if (app.json) app.out.json({ deleted: [], image, client: client.name });
    else app.log.info("Nothing deleted");
  };
  if (!opts.force && !(await ctx.prompt.confirm(`Delete ${image}?`, { default: false }))) {
    return nothing();
  }
  const result = await del(image, {
    force: opts.force ?? false,
    ...(opts.platform ? { platform: opts.platform } : {}),
  });
  const deleted = result ? result.deleted : [image];
  if (deleted.length === 0) return nothing();
  if (app.json) app.out.json({ deleted, image, client: client.name });
  else for (const d of deleted) app.log.info(`[delete] ${d}`);
}
