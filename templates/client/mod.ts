/**
 * TEMPLATE for a new backend. Copy this folder to `clients/<scheme>/`, replace `__scheme__` with
 * the scheme (and `__SCHEME__` with its upper-case, `-` as `_`), then register the factory in
 * clients/mod.ts (one import, one entry in FACTORIES). See docs/contributing-a-client.md.
 *
 * Each capability below is a stub that reports "unsupported" (exit 7). Implement them in the order
 * push, search, pull, record, share; delete a stub you do not implement, so that `sregistry` reports
 * the capability as missing by itself.
 * @module
 */

import { UnsupportedError } from "../../core/errors.ts";
import type { Client, ClientFactory, Context } from "../../clients/types.ts";

const SCHEME = "__scheme__";

function unsupported(what: string): never {
  throw new UnsupportedError(`The ${SCHEME} client cannot ${what} yet`);
}

/** The __scheme__ client factory. */
export const templateFactory: ClientFactory = {
  scheme: SCHEME,
  description: "TEMPLATE: describe the remote in one line",
  settings: [
    // Every variable the client reads, so `sregistry backend ls` and docs can list them.
    { name: "SREGISTRY___SCHEME___BASE", description: "base URL of the remote" },
    { name: "SREGISTRY___SCHEME___TOKEN", description: "API token", secret: true },
  ],
  create(ctx: Context): Client {
    // No network I/O here: settings are read lazily, when a capability runs.
    const base = () => ctx.clientSettings.require("SREGISTRY___SCHEME___BASE");
    const token = () => {
      const t = ctx.clientSettings.get("SREGISTRY___SCHEME___TOKEN");
      ctx.log.addSecret(t); // never printed, --debug included
      return t;
    };
    void base;
    void token;
    return {
      name: SCHEME,
      // 1. push(path, { name, tag }): upload through core/transfer `upload`/`uploadChunked`,
      //    return { url, digest, size }.
      push: () => Promise.resolve(unsupported("push images")),
      // 2. search(query): list remote images, return [{ uri: "__scheme__://...", details }].
      search: () => Promise.resolve(unsupported("search for images")),
      // 3. pull(image, opts): core/transfer `download` to ctx.catalog.stagingPath(names), then
      //    ctx.catalog.add({ file, uri, url, client: SCHEME, sha256, metadata }); with opts.noCache
      //    write to opts.file or the current folder instead.
      pull: () => Promise.resolve(unsupported("pull images")),
      // 4. record(image, { name }): fetch metadata only, ctx.catalog.record({ uri, url, metadata }).
      record: () => Promise.resolve(unsupported("record images")),
      // 5. share(image, { shareTo }): return a link.
      share: () => Promise.resolve(unsupported("share images")),
      // Credentials: pass an authorizer per call (ctx.http.request(url, { auth }), download(..., { auth })).
    };
  },
};
