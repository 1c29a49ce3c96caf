/**
 * `sregistry share`: a link to a remote image, for someone.
 * @module
 */

import type { App } from "../app.ts";
import { capability } from "./capability.ts";

/** `sregistry share`. */
export async function shareCommand(app: App, image: string, opts: { email?: string }) {
  const { client } = app.getClient(image);
  const share = capability(client, "share");
  const link = await share(image, { shareTo: opts.email });
  if (app.json) app.out.json({ image, link, client: client.name });
  else app.out.line(link);
}
