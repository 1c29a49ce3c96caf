/**
 * TEMPLATE for a new backend, with a minimal working pull. Copy this folder to `clients/<scheme>/`,
 * replace `__scheme__` with the scheme and `__SCHEME__` with its upper case (`-` as `_`), rename
 * `templateFactory`, and register the factory in clients/mod.ts (one import, one entry in
 * FACTORIES). Copy `doc.md` to `docs/clients/<scheme>.md` and tests/clients/template_test.ts to
 * `tests/clients/<scheme>_test.ts`. See docs/contributing-a-client.md.
 *
 * The pull is a plain HTTP GET of `<BASE>/<collection>/<image>:<tag>.sif` with a bearer token. It
 * writes where the store step says (`into.path`) and returns what it got; the store step in cli/
 * does the rest (catalog, --no-cache, --file, --force), the same way for every client. A client
 * never touches the catalog.
 *
 * A capability exists when its method does: add `push`, `search`, `record`, `delete`, `share` or
 * `build` when the remote can do it, and `sregistry` reports the others as unsupported (exit 7).
 * @module
 */

import type {
  Client,
  ClientFactory,
  Context,
  PulledImage,
  PullTarget,
  RemoteRecord,
} from "../../clients/types.ts";
import { bearerToken } from "../../core/auth/basic.ts";
import { UsageError } from "../../core/errors.ts";
import { parseImageName, removeUri } from "../../core/names.ts";
import { download } from "../../core/transfer/mod.ts";

const SCHEME = "__scheme__";

/** The URL of an image: `<BASE>/<collection>/<image>:<tag>.sif`. */
export function imageUrl(base: string, image: string): URL {
  const names = parseImageName(removeUri(image));
  const root = base.endsWith("/") ? base : `${base}/`;
  let url: URL;
  try {
    url = new URL(`${names.collection}/${names.image}:${names.tag}.sif`, root);
  } catch {
    throw new UsageError(
      `SREGISTRY___SCHEME___BASE ${JSON.stringify(base)} is not a URL: use https://host/path`,
    );
  }
  return url;
}

/** The catalog name an image suggests: `collection/image:tag`. */
function suggestedName(image: string): string {
  const names = parseImageName(removeUri(image));
  return `${names.collection}/${names.image}:${names.tag}`;
}

/** The __scheme__ client factory. */
export const templateFactory: ClientFactory = {
  scheme: SCHEME,
  description: "TEMPLATE: describe the remote in one line",
  settings: [
    // Every variable the client reads, so `sregistry backend ls` and docs/clients list them.
    { name: "SREGISTRY___SCHEME___BASE", description: "base URL of the remote", required: true },
    // `secret: true`: the value is redacted from every message, --debug included, by the Context.
    { name: "SREGISTRY___SCHEME___TOKEN", description: "API token", secret: true, required: true },
  ],
  create(ctx: Context): Client {
    // No I/O here: settings are read when a capability runs (the suite checks it). A base URL
    // given in the environment is saved to the secrets file, as sregistry-cli's clients did.
    const base = () =>
      ctx.settings.getAndUpdate("SREGISTRY___SCHEME___BASE") ??
        ctx.settings.require("SREGISTRY___SCHEME___BASE");
    // The token goes as an authorizer bound to the image's origin: a redirect elsewhere gets none.
    const auth = (url: URL) =>
      bearerToken(ctx.settings.require("SREGISTRY___SCHEME___TOKEN"), { origin: url.origin });
    return {
      name: SCHEME,

      async pull(image: string, into: PullTarget): Promise<PulledImage> {
        const url = imageUrl(base(), image);
        // Every byte goes through core/transfer: .partial, hash while writing, fsync, rename.
        const r = await download({
          http: ctx.http,
          url,
          dest: into.path,
          auth: auth(url),
          progress: ctx.progress,
          signal: ctx.signal,
          label: removeUri(image),
        });
        return {
          file: r.path,
          format: "sif",
          url: url.href,
          digest: r.digest,
          size: r.size,
          metadata: { url: url.href, ...(r.etag ? { etag: r.etag } : {}) },
          suggestedName: suggestedName(image),
        };
      },

      // Metadata only (a HEAD): `sregistry record __scheme__://c/i:t` stores a row without a file.
      async record(image: string): Promise<RemoteRecord> {
        const url = imageUrl(base(), image);
        const res = await ctx.http.request(url, { method: "HEAD", auth: auth(url) });
        await res.body?.cancel();
        const size = Number(res.headers.get("content-length") ?? NaN);
        const etag = res.headers.get("etag");
        return {
          url: url.href,
          ...(Number.isFinite(size) ? { size } : {}),
          metadata: { url: url.href, ...(etag ? { etag } : {}) },
          suggestedName: suggestedName(image),
        };
      },
    };
  },
};
