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

import type { Client, ClientFactory, Context } from "../../clients/types.ts";
import { UsageError } from "../../core/errors.ts";
import { parseImageName, removeUri } from "../../core/names.ts";
import { download } from "../../core/transfer.ts";

const SCHEME = "__scheme__";

// MERGE(store-step): PullTarget and PulledImage mirror the new pull contract of clients/types.ts.
// Once that lands, delete both and import them from "../../clients/types.ts"; TemplateClient and
// TemplateFactory then equal Client and ClientFactory.

/** Where the store step wants the pulled bytes. */
export interface PullTarget {
  /** The staging path to write (core/transfer's `download` resumes from `<path>.partial`). */
  path: string;
  /** Platform for multi-platform images, `os/arch[/variant]`. */
  platform?: string;
}

/** What a pull got: the store step records it and places the file. */
export interface PulledImage {
  /** The file written (normally `into.path`). */
  file: string;
  /** `sif`, `oci-archive`, `simg`...; the store step names the stored file after it. */
  format: string;
  /** Where the bytes came from. */
  url?: string;
  /** `sha256:<hex>` of the file. */
  digest?: string;
  /** Size in bytes. */
  size?: number;
  /** Metadata the remote gave (the store step adds the file's own). */
  metadata?: Record<string, unknown>;
  /** The catalog name to use without `--name` (`collection/image:tag`). */
  suggestedName?: string;
  /** The platform pulled, when the remote had several. */
  platform?: string;
}

/** The client, with the new pull. */
export type TemplateClient = Omit<Client, "pull"> & {
  /** Download `image` to `into.path`. */
  pull(image: string, into: PullTarget): Promise<PulledImage>;
};

/** The factory, building a {@link TemplateClient}. */
export type TemplateFactory = Omit<ClientFactory, "create"> & {
  /** Build the client; no I/O here. */
  create(ctx: Context): TemplateClient;
};

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

/** The __scheme__ client factory. */
export const templateFactory: TemplateFactory = {
  scheme: SCHEME,
  description: "TEMPLATE: describe the remote in one line",
  settings: [
    // Every variable the client reads, so `sregistry backend ls` and docs/clients list them.
    { name: "SREGISTRY___SCHEME___BASE", description: "base URL of the remote", required: true },
    { name: "SREGISTRY___SCHEME___TOKEN", description: "API token", secret: true, required: true },
  ],
  create(ctx: Context): TemplateClient {
    // No I/O here: settings are read when a capability runs (the suite checks it).
    const base = () => ctx.clientSettings.require("SREGISTRY___SCHEME___BASE");
    const token = () => {
      const t = ctx.clientSettings.require("SREGISTRY___SCHEME___TOKEN");
      // MERGE(auth): settings marked `secret` are redacted by the Context; drop this line then.
      ctx.log.addSecret(t); // never printed, --debug included
      return t;
    };
    return {
      name: SCHEME,
      async pull(image, into) {
        const url = imageUrl(base(), image);
        // Every byte goes through core/transfer: .partial, hash while writing, fsync, rename.
        const r = await download(ctx.http, url, into.path, {
          headers: { authorization: `Bearer ${token()}` },
          progress: ctx.progress,
          signal: ctx.signal,
          label: removeUri(image),
        });
        const names = parseImageName(removeUri(image));
        return {
          file: r.path,
          format: "sif",
          url: url.href,
          digest: r.digest,
          size: r.size,
          metadata: { url: url.href, ...(r.etag ? { etag: r.etag } : {}) },
          suggestedName: `${names.collection}/${names.image}:${names.tag}`,
        };
      },
    };
  },
};
