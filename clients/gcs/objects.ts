/**
 * What google-storage and google-build do alike with images kept as bucket objects: finding the
 * objects a name means, describing one as a record, searching, pulling, deleting, creating a
 * missing bucket. Each client passes what differs (its scheme, its hints, the fields it reports).
 * The service-account token both keep in their credential store is core/auth/service_account.ts.
 * @module
 */

import { isLoopback } from "../../core/http.ts";
import type { ParsedName } from "../../core/names.ts";
import { download, MAX_STREAMS } from "../../core/transfer/mod.ts";
import type { Context, PulledImage, PullTarget, RemoteRecord, SearchHit } from "../types.ts";
import {
  type Api,
  bucketExists,
  createBucket,
  deleteObject,
  getObject,
  listObjects,
  mediaUrl,
  type ObjectResource,
} from "./api.ts";
import { digestOf, isContainer, isVersionOf, objectUri, versionOfName } from "./layout.ts";

/** Create the bucket unless it exists, in the project `project()` names (asked only then). */
export async function ensureBucket(
  ctx: Context,
  api: Api,
  bucket: string,
  project: () => Promise<string>,
): Promise<void> {
  if (await bucketExists(api, bucket)) return;
  const p = await project();
  await createBucket(api, bucket, p);
  ctx.log.info(`Created bucket ${bucket} in project ${p}`);
}

/** How {@link findObjects} picks objects. */
export interface FindOptions {
  /** Take the exact `url:tag.sif` even when its metadata does not say `type: container`. */
  untypedExact?: boolean;
  /** What the error of a missing bucket says to do. */
  fix?: string;
}

/**
 * The objects an image name means, newest first: the exact object of a name with a version, else
 * every version of the tag (`url:tag.sif`, `url:tag@<version>.sif`) that is a container.
 */
export async function findObjects(
  api: Api,
  bucket: string,
  names: ParsedName,
  options: FindOptions = {},
): Promise<ObjectResource[]> {
  if (names.version) {
    const o = await getObject(api, bucket, names.storage);
    return o ? [o] : [];
  }
  const exact = `${names.url}:${names.tag}.sif`;
  const listed = await listObjects(api, bucket, `${names.url}:${names.tag}`, options.fix);
  return listed
    .filter((o) =>
      isVersionOf(o.name, names) &&
      (isContainer(o.metadata) || (options.untypedExact === true && o.name === exact))
    )
    .sort((x, y) => (y.updated ?? "").localeCompare(x.updated ?? ""));
}

/** Resource fields a client copies into a record's metadata, in this order after `generation`. */
export type RecordField = "selfLink" | "md5Hash" | "crc32c";

/**
 * An object as a record: its media URL, the digest its metadata carries, its size, its metadata
 * with where it lives, and the name to keep it under (`url:tag@<version>`; from the object's name
 * when no parsed name is given).
 */
export function describeObject(
  api: Api,
  o: ObjectResource,
  names: ParsedName | undefined,
  fields: readonly RecordField[],
): RemoteRecord {
  const url = o.mediaLink ?? mediaUrl(api, o).href;
  const size = Number(o.size);
  const version = names?.version ?? versionOfName(o.name);
  const base = names ? `${names.url}:${names.tag}` : o.name.replace(/(@[^/@]+)?\.sif$/, "");
  const extra: Record<string, string> = {};
  for (const f of fields) if (o[f]) extra[f] = o[f]!;
  return {
    url,
    digest: digestOf(o.metadata),
    ...(Number.isSafeInteger(size) ? { size } : {}),
    metadata: {
      ...o.metadata,
      bucket: o.bucket,
      object: o.name,
      generation: o.generation,
      ...extra,
      url,
    },
    suggestedName: version ? `${base}@${version}` : base,
  };
}

/**
 * The containers among `objects` whose name or metadata holds `query` (all when undefined), as
 * search hits with their size and date (and what `details` adds).
 */
export function searchHits(
  scheme: string,
  objects: ObjectResource[],
  query: string | undefined,
  details: (o: ObjectResource) => SearchHit["details"] = () => ({}),
): SearchHit[] {
  const q = query?.toLowerCase();
  return objects
    .filter((o) => isContainer(o.metadata))
    .filter((o) =>
      !q || o.name.toLowerCase().includes(q) ||
      Object.values(o.metadata ?? {}).some((v) => String(v).toLowerCase().includes(q))
    )
    .map((o) => ({
      uri: objectUri(scheme, o),
      details: {
        size: `${Math.round(Number(o.size) / 1024 / 1024)} MB`,
        updated: o.updated,
        ...details(o),
      },
    }));
}

/**
 * Download an object through core/transfer (ranged, resumable), checked against the record's
 * digest and size, to `into.path`.
 */
export async function pullObject(
  ctx: Context,
  api: Api,
  o: ObjectResource,
  record: RemoteRecord,
  into: PullTarget,
  label: string,
): Promise<PulledImage> {
  const url = mediaUrl(api, o);
  const r = await download({
    http: ctx.http,
    url,
    dest: into.resumable,
    auth: api.auth,
    expectedDigest: record.digest,
    expectedSize: record.size,
    parallel: isLoopback(url.host) ? 1 : Math.min(ctx.globals.workers, MAX_STREAMS),
    progress: ctx.progress,
    label,
    signal: ctx.signal,
  });
  await Deno.rename(into.resumable, into.path);
  return { ...record, file: into.path, format: "unknown", digest: r.digest, size: r.size };
}

/**
 * Delete the objects a name means (found, so at least one); several are deleted only with `force`
 * or the user's yes. Returns the URIs deleted.
 */
export async function deleteObjects(
  ctx: Context,
  api: Api,
  scheme: string,
  names: ParsedName,
  objects: ObjectResource[],
  force: boolean | undefined,
): Promise<{ deleted: string[] }> {
  if (objects.length > 1 && !force) {
    const ok = await ctx.prompt.confirm(
      `${scheme}://${names.uri} names ${objects.length} objects (${
        objects.map((o) => o.name).join(", ")
      }); delete them all?`,
      { default: false },
    );
    if (!ok) return { deleted: [] };
  }
  const deleted: string[] = [];
  for (const o of objects) {
    if (await deleteObject(api, o.bucket, o.name)) deleted.push(objectUri(scheme, o));
  }
  return { deleted };
}
