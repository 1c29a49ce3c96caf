/**
 * The Cloud Storage JSON API calls google-storage and google-build make besides uploads: bucket get
 * and insert, object get, list (following page tokens), metadata patch, delete, the public-read ACL
 * entry and a ranged media read.
 * @module
 */

import type { Authorizer } from "../../core/auth/types.ts";
import { NetworkError, NotFoundError } from "../../core/errors.ts";
import { type Http, MAX_JSON_BYTES, readBody } from "../../core/http.ts";
import type { StorageEndpoint } from "./endpoint.ts";
import type { ObjectMetadata } from "./layout.ts";

/** The fields of an object resource the clients read. */
export interface ObjectResource {
  /** The object name. */
  name: string;
  /** The bucket. */
  bucket: string;
  /** Size in bytes (a decimal string, as the API sends it). */
  size: string;
  /** The generation (a decimal string). */
  generation: string;
  /** The download URL Google gives. */
  mediaLink?: string;
  /** The resource URL. */
  selfLink?: string;
  /** RFC 3339. */
  updated?: string;
  /** RFC 3339. */
  timeCreated?: string;
  /** base64 MD5. */
  md5Hash?: string;
  /** base64 CRC32C. */
  crc32c?: string;
  /** The content type. */
  contentType?: string;
  /** Custom metadata. */
  metadata?: ObjectMetadata;
}

/** What every call needs. */
export interface Api {
  /** ctx.http. */
  http: Http;
  /** The endpoint. */
  endpoint: StorageEndpoint;
  /** The bearer authorizer, bound to the endpoint's origin. */
  auth: Authorizer;
  /** Cancels calls. */
  signal?: AbortSignal;
}

/** `<api>/b/<bucket>/o/<object>` with the name percent-encoded (`/` included), as the API wants. */
export function objectUrl(api: Api, bucket: string, name: string, root = api.endpoint.api): URL {
  return new URL(`${root}/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}`);
}

/** The media URL of one generation of an object. */
export function mediaUrl(api: Api, o: ObjectResource): URL {
  const url = objectUrl(api, o.bucket, o.name, api.endpoint.download);
  url.searchParams.set("generation", o.generation);
  url.searchParams.set("alt", "media");
  return url;
}

/** A listing page of 1000 objects with metadata is a few MiB at most. */
const MAX_PAGE_BYTES = 32 * 1024 * 1024;

/** Read a JSON answer with a size cap and the stall timeout. */
async function readJson(api: Api, res: Response, what: string, limit = MAX_JSON_BYTES) {
  const bytes = await readBody(api.http, res, { limit, what, signal: api.signal });
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  } catch {
    throw new NetworkError(`${what} is not JSON`);
  }
}

function checkResource(o: unknown, where: string): ObjectResource {
  const r = o as ObjectResource;
  if (!r || typeof r.name !== "string" || typeof r.bucket !== "string") {
    throw new NetworkError(`The object resource from ${where} has no name or bucket`);
  }
  return r;
}

/** Whether the bucket exists (a 404 is false; 401/403 raise). */
export async function bucketExists(api: Api, bucket: string): Promise<boolean> {
  const res = await api.http.request(`${api.endpoint.api}/b/${encodeURIComponent(bucket)}`, {
    auth: api.auth,
    signal: api.signal,
    accept: (s) => s === 200 || s === 404,
  });
  await res.body?.cancel();
  return res.status === 200;
}

/** Create a bucket in `project` (the original's init did so without asking). */
export async function createBucket(api: Api, bucket: string, project: string): Promise<void> {
  const url = new URL(`${api.endpoint.api}/b`);
  url.searchParams.set("project", project);
  const res = await api.http.request(url, {
    method: "POST",
    headers: { "content-type": "application/json; charset=UTF-8" },
    body: JSON.stringify({ name: bucket }),
    auth: api.auth,
    signal: api.signal,
    // 409: created meanwhile (by us or a parallel push), which is what we wanted.
    accept: (s) => s === 200 || s === 409,
  });
  await res.body?.cancel();
}

/** One object's resource, or undefined when it does not exist. */
export async function getObject(
  api: Api,
  bucket: string,
  name: string,
): Promise<ObjectResource | undefined> {
  const url = objectUrl(api, bucket, name);
  const res = await api.http.request(url, {
    auth: api.auth,
    signal: api.signal,
    headers: { accept: "application/json" },
    accept: (s) => s === 200 || s === 404,
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  return checkResource(
    await readJson(api, res, `The object resource of ${JSON.stringify(name)}`),
    url.host,
  );
}

/** What the error of a listing of a missing bucket tells the user to do, by default. */
export const MISSING_BUCKET_FIX =
  "push an image to create it, or set SREGISTRY_GOOGLE_STORAGE_BUCKET";

/**
 * Every object (under `prefix`), following `nextPageToken` to the end.
 * @param fix What the error of a missing bucket says to do.
 * @throws {NotFoundError} when the bucket does not exist.
 */
export async function listObjects(
  api: Api,
  bucket: string,
  prefix?: string,
  fix: string = MISSING_BUCKET_FIX,
): Promise<ObjectResource[]> {
  const out: ObjectResource[] = [];
  let token: string | undefined;
  const seen = new Set<string>();
  do {
    const url = new URL(`${api.endpoint.api}/b/${encodeURIComponent(bucket)}/o`);
    if (prefix) url.searchParams.set("prefix", prefix);
    url.searchParams.set("maxResults", "1000");
    if (token) url.searchParams.set("pageToken", token);
    const res = await api.http.request(url, {
      auth: api.auth,
      signal: api.signal,
      headers: { accept: "application/json" },
      accept: (s) => s === 200 || s === 404,
    });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new NotFoundError(
        `The bucket ${JSON.stringify(bucket)} does not exist; ${fix}`,
      );
    }
    const page = await readJson(
      api,
      res,
      `The object listing of bucket ${JSON.stringify(bucket)}`,
      MAX_PAGE_BYTES,
    ) as { items?: unknown[]; nextPageToken?: string };
    for (const item of page.items ?? []) out.push(checkResource(item, url.host));
    token = typeof page.nextPageToken === "string" && page.nextPageToken !== ""
      ? page.nextPageToken
      : undefined;
    // A server repeating a token would make this loop forever (the original's paging bug).
    if (token !== undefined) {
      if (seen.has(token)) {
        throw new NetworkError(`The listing of bucket ${bucket} repeats page token; giving up`);
      }
      seen.add(token);
    }
  } while (token !== undefined);
  return out;
}

/** Merge custom metadata into an object's (a null value deletes the key); the patched resource. */
export async function patchMetadata(
  api: Api,
  bucket: string,
  name: string,
  metadata: Record<string, string | null>,
): Promise<ObjectResource> {
  const url = objectUrl(api, bucket, name);
  const res = await api.http.request(url, {
    method: "PATCH",
    headers: { "content-type": "application/json; charset=UTF-8" },
    body: JSON.stringify({ metadata }),
    auth: api.auth,
    signal: api.signal,
  });
  return checkResource(await readJson(api, res, "The patched object resource"), url.host);
}

/** Delete one object; false when it was already gone. */
export async function deleteObject(api: Api, bucket: string, name: string): Promise<boolean> {
  const res = await api.http.request(objectUrl(api, bucket, name), {
    method: "DELETE",
    auth: api.auth,
    signal: api.signal,
    accept: (s) => s === 204 || s === 200 || s === 404,
  });
  await res.body?.cancel();
  return res.status !== 404;
}

/**
 * Give allUsers read access (the original's `make_public`), keeping the other ACL entries. Returns
 * the refusal's message when the bucket does not allow object ACLs (uniform bucket-level access,
 * public access prevention) instead of failing the push.
 */
export async function makePublic(
  api: Api,
  bucket: string,
  name: string,
): Promise<string | undefined> {
  const url = new URL(`${objectUrl(api, bucket, name).href}/acl`);
  const res = await api.http.request(url, {
    method: "POST",
    headers: { "content-type": "application/json; charset=UTF-8" },
    body: JSON.stringify({ entity: "allUsers", role: "READER" }),
    auth: api.auth,
    signal: api.signal,
    accept: (s) => s === 200 || s === 400 || s === 403 || s === 412,
  });
  if (res.ok) {
    await res.body?.cancel();
    return undefined;
  }
  const data = await readJson(api, res, "The ACL answer").catch(() => undefined) as
    | { error?: { message?: string } }
    | undefined;
  const m = data?.error?.message;
  return m ? m.split(". ")[0] : `HTTP ${res.status}`;
}

/** A build log is a few MiB; this is far beyond any. */
const MAX_READ_BYTES = 64 * 1024 * 1024;

/**
 * The bytes of an object from `offset` on (a log object growing while a build runs); empty when
 * the object does not exist yet or has nothing new.
 */
export async function readFrom(
  api: Api,
  bucket: string,
  name: string,
  offset: number,
): Promise<Uint8Array> {
  const url = objectUrl(api, bucket, name);
  url.searchParams.set("alt", "media");
  const res = await api.http.request(url, {
    auth: api.auth,
    signal: api.signal,
    headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    accept: (s) => s === 200 || s === 206 || s === 404 || s === 416,
  });
  if (res.status === 404 || res.status === 416) {
    await res.body?.cancel();
    return new Uint8Array();
  }
  const bytes = await readBody(api.http, res, {
    limit: MAX_READ_BYTES,
    what: `The log ${name}`,
    signal: api.signal,
  });
  // A server ignoring Range sends it all.
  return res.status === 200 && offset > 0 ? bytes.subarray(offset) : bytes;
}
