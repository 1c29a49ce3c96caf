/**
 * `sregistry delete`: a remote image, after a confirmation (or `--force`).
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import type { App } from "../app.ts";
import { capability } from "./capability.ts";

/** Ask yes/no on the terminal; without a terminal the answer is no. */
async function confirm(app: App, question: string): Promise<boolean> {
  if (!Deno.stdin.isTerminal()) return false;
  app.log.sink.write(`${question} [y/N] `);
  const buf = new Uint8Array(256);
  const n = await Deno.stdin.read(buf);
  const answer = new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim().toLowerCase();
  return answer === "y" || answer === "yes";
}

/** `sregistry delete`. */
export async function deleteCommand(app: App, image: string, opts: { force?: boolean }) {
  const { client } = app.getClient(image);
  const del = capability(client, "delete");
  if (!opts.force && !(await confirm(app, `Are you sure you want to remove ${image}?`))) {
    throw new UsageError(`Not deleting ${image}: confirm on a terminal, or use --force`);
  }
  await del(image, { force: true });
  if (app.json) app.out.json({ deleted: image, client: client.name });
  else app.log.info(`[delete] ${image}`);
}
