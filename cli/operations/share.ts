/**
 * `sregistry share`: a link to a remote image, for someone. The share is recorded: when the client
 * can also `record` and the catalog is on, the image's row (the one `record` or a pull of the same
 * URI writes, its file kept when it has one) gets `shared` (what the client printed: the link) and
 * `shared_with` (the `--email`, when given) in its metadata, so `inspect` shows it later.
 * @module
 */

import { InterruptedError } from "../../core/errors.ts";
import type { App } from "../app.ts";
import { capability } from "./capability.ts";
import { recordRemote } from "./record.ts";

/** `sregistry share`. */
export async function shareCommand(app: App, image: string, opts: { email?: string }) {
  const { client } = app.getClient(image);
  const share = capability(client, "share");
  const link = await share(image, { shareTo: opts.email });
  let recorded: string | undefined;
  const catalog = app.maybeCatalog();
  if (catalog && client.record) {
    try {
      const remote = await client.record(image);
      const r = await recordRemote(catalog, client.name, remote, {
        shared: link,
        ...(opts.email ? { shared_with: opts.email } : {}),
      });
      recorded = r.container.uri;
    } catch (e) {
      if (e instanceof InterruptedError) throw e;
      // The share happened: a catalog that cannot take the row does not undo it.
      app.log.warning(`Shared, but not recorded in the catalog: ${(e as Error).message}`);
    }
  }
  if (app.json) {
    app.out.json({ image, link, client: client.name, ...(recorded ? { recorded } : {}) });
  } else app.out.line(link);
}
