/**
 * `sregistry record`: a catalog row without a file. `record <uri>` with a client's scheme and no
 * `--url`/`--metadata` asks that client for the image's metadata (no download), as sregistry-cli's
 * record did; otherwise the given url and metadata are recorded as they are, with no network.
 * @module
 */

import type { RemoteRecord } from "../../clients/types.ts";
import { getUri } from "../../core/names.ts";
import type { AddResult, Catalog, Metadata } from "../../db/types.ts";
import type { App } from "../app.ts";
import { capability } from "./capability.ts";
import { storeName } from "./store.ts";

/** Options of {@link recordImage}. */
export interface RecordImageOptions {
  /** --url. */
  url?: string;
  /** --metadata, parsed. */
  metadata?: Metadata;
  /** --platform (or --arch): which image of a multi-platform remote name. */
  platform?: string;
}

/** A remote image's metadata as its catalog row keeps it: the client's, with digest and size. */
export function remoteMetadata(
  remote: Pick<RemoteRecord, "metadata" | "digest" | "size">,
  extra: Metadata = {},
): Metadata {
  return {
    ...(remote.metadata ?? {}),
    ...(remote.digest ? { digest: remote.digest } : {}),
    ...(remote.size !== undefined ? { size: remote.size } : {}),
    ...extra,
  };
}

/**
 * The file-less row of what a client said about a remote image (`record <uri>`, a share), named as
 * a pull of the same URI would be, so a later pull updates this row. `extra` joins its metadata.
 */
export async function recordRemote(
  catalog: Catalog,
  client: string,
  remote: RemoteRecord,
  extra: Metadata = {},
): Promise<AddResult> {
  return await catalog.record({
    uri: storeName(remote, undefined).uri,
    url: remote.url,
    metadata: remoteMetadata(remote, extra),
    client,
    platform: remote.platform,
  });
}

/** Record `name` in the catalog; returns the row and whether it is new. */
export async function recordImage(
  app: App,
  name: string,
  opts: RecordImageOptions,
): Promise<AddResult> {
  // Any scheme a registered client answers to (not only sregistry-cli's list): a new backend's too.
  const scheme = getUri(name, false);
  const catalog = app.catalog();
  if (scheme !== undefined && opts.url === undefined && opts.metadata === undefined) {
    const { client } = app.getClient(name);
    const record = capability(client, "record");
    const remote = await record(name, opts.platform ? { platform: opts.platform } : {});
    return await recordRemote(catalog, client.name, remote);
  }
  return await catalog.record({
    uri: name,
    url: opts.url,
    metadata: opts.metadata,
    client: scheme ?? "local",
  });
}
