/**
 * The few Cloud Storage JSON API calls google-build makes: bucket get/insert, object get, list,
 * metadata patch, delete, the public-read ACL entry, a ranged read (logs) and a resumable upload of
 * a small file (the build context). google-storage has fuller versions of some of these; a backend
 * may not import another, so this is protocol code of our own (see the report about a shared
 * `clients/gcs/` folder).
 * @module
 */

import type { Authorizer } from "../../core/auth/types.ts";
import { ConfigError, NetworkError, NotFoundError } from "../../core/errors.ts";
import { type Http, isLoopback, MAX_JSON_BYTES, readBody } from "../../core/http.ts";

/** Google's storage origin. */
export const GOOGLE_STORAGE_ORIGIN = "https://storage.googleapis.com";

/** The fields of an object resource we read. */
export interface GcsObject {
  name: string;
  bucket: string;
  size: string;
  generation: string;
  mediaLink?: string;
  selfLink?: string;
  updated?: string;
  timeCreated?: string;
  md5Hash?: string;
  crc32c?: string;
  metadata?: Record<string, string>;
}

/** What every call needs. */
export interface Gcs {
  http: Http;
  /** `https://storage.googleapis.com` or an emulator's origin. */
  origin: string;
  auth: Authorizer;
  signal?: AbortSignal;
}

/**
 * The storage origin for STORAGE_EMULATOR_HOST (as Google's libraries read it; google-storage
 * reads it the same way): unset means Google's; plain http only for a loopback host.
 */
export function storageOrigin(emulator: string | undefined): string {
  const v = emulator?.trim();
  if (!v) return GOOGLE_STORAGE_ORIGIN;
  let url: URL;
  try {
    url = new URL(
      /^[a-z][a-z0-9+.-]*:\/\//i.test(v)
        ? v
        : `${isLoopback(v.split("/")[0]) ? "http" : "https"}://${v}`,
    );
  } catch {
    throw new ConfigError(
      `STORAGE_EMULATOR_HOST ${JSON.stringify(v)} is not a host or URL: use host:port`,
    );
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopback(url.host))) {
    throw new ConfigError(
      `STORAGE_EMULATOR_HOST ${
        JSON.stringify(v)
      } is not https; plain http only for a loopback host`,
    );
  }
  return url.origin;
}

const enc = encodeURIComponent;

/** `<origin>/storage/v1/b/<bucket>/o/<name>`. */
export function objectUrl(g: Gcs, bucket: string, name: string, root = "storage"): URL {
  return new URL(`${g.origin}/${root}/v1/b/${enc(bucket)}/o/${enc(name)}`);
}

/** The media URL of an object generation. */
export function mediaUrl(g: Gcs, o: GcsObject): URL {
  const u = objectUrl(g, o.bucket, o.name, "download/storage");
  u.searchParams.set("generation", o.generation);
  u.searchParams.set("alt", "media");
  return u;
}

async function json<T>(g: Gcs, res: Response, what: string, limit = MAX_JSON_BYTES): Promise<T> {
  const bytes = await readBody(g.http, res, { limit, what, signal: g.signal });
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch {
    throw new NetworkError(`${what} is not JSON`);
  }
}

/** Whether a bucket exists. */
export async function bucketExists(g: Gcs, bucket: string): Promise<boolean> {
  const res = await g.http.request(`${g.origin}/storage/v1/b/${enc(bucket)}`, {
    auth: g.auth,
    signal: g.signal,
    accept: (s) => s === 200 || s === 404,
  });
  await res.body?.cancel();
  return res.status === 200;
}

/** Create a bucket in a project (409, created meanwhile, is fine). */
export async function createBucket(g: Gcs, bucket: string, project: string): Promise<void> {
  const url = new URL(`${g.origin}/storage/v1/b`);
  url.searchParams.set("project", project);
  const res = await g.http.request(url, {
    method: "POST",
    headers: { "content-type": "application/json; charset=UTF-8" },
    body: JSON.stringify({ name: bucket }),
    auth: g.auth,
    signal: g.signal,
    accept: (s) => s === 200 || s === 409,
  });
  await res.body?.cancel();
}

/** One object, or undefined. */
export async function getObject(
  g: Gcs,
  bucket: string,
  name: string,
): Promise<GcsObject | undefined> {
  const res = await g.http.request(objectUrl(g, bucket, name), {
    auth: g.auth,
    signal: g.signal,
    headers: { accept: "application/json" },
    accept: (s) => s === 200 || s === 404,
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  return await json<GcsObject>(g, res, `The object resource of ${JSON.stringify(name)}`);
}

/** Every object under `prefix`, following page tokens (a repeated token stops the loop). */
export async function listObjects(g: Gcs, bucket: string, prefix?: string): Promise<GcsObject[]> {
  const out: GcsObject[] = [];
  const seen = new Set<string>();
  let token: string | undefined;
  do {
    const url = new URL(`${g.origin}/storage/v1/b/${enc(bucket)}/o`);
    if (prefix) url.searchParams.set("prefix", prefix);
    if (token) url.searchParams.set("pageToken", token);
    const res = await g.http.request(url, {
      auth: g.auth,
      signal: g.signal,
      headers: { accept: "application/json" },
      accept: (s) => s === 200 || s === 404,
    });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new NotFoundError(
        `The bucket ${
          JSON.stringify(bucket)
        } does not exist; build an image to create it, or set SREGISTRY_GOOGLE_STORAGE_BUCKET`,
      );
    }
    const page = await json<{ items?: GcsObject[]; nextPageToken?: string }>(
      g,
      res,
      `The listing of bucket ${JSON.stringify(bucket)}`,
      32 * 1024 * 1024,
    );
    out.push(...(page.items ?? []).filter((o) => typeof o?.name === "string"));
    token = page.nextPageToken || undefined;
    if (token !== undefined) {
      if (seen.has(token)) throw new NetworkError(`The listing of ${bucket} repeats a page token`);
      seen.add(token);
    }
  } while (token !== undefined);
  return out;
}

/** Merge custom metadata into an object's (null deletes a key). */
export async function patchMetadata(
  g: Gcs,
  bucket: string,
  name: string,
  metadata: Record<string, string | null>,
): Promise<GcsObject> {
  const res = await g.http.request(objectUrl(g, bucket, name), {
    method: "PATCH",
    headers: { "content-type": "application/json; charset=UTF-8" },
    body: JSON.stringify({ metadata }),
    auth: g.auth,
    signal: g.signal,
  });
  return await json<GcsObject>(g, res, "The patched object resource");
}

/** Delete an object; false when it was gone already. */
export async function deleteObject(g: Gcs, bucket: string, name: string): Promise<boolean> {
  const res = await g.http.request(objectUrl(g, bucket, name), {
    method: "DELETE",
    auth: g.auth,
    signal: g.signal,
    accept: (s) => s === 200 || s === 204 || s === 404,
  });
  await res.body?.cancel();
  return res.status !== 404;
}

/** Give allUsers read access; returns the refusal's reason instead of failing (UBLA buckets). */
export async function makePublic(
  g: Gcs,
  bucket: string,
  name: string,
): Promise<string | undefined> {
  const res = await g.http.request(`${objectUrl(g, bucket, name).href}/acl`, {
    method: "POST",
    headers: { "content-type": "application/json; charset=UTF-8" },
    body: JSON.stringify({ entity: "allUsers", role: "READER" }),
    auth: g.auth,
    signal: g.signal,
    accept: (s) => s === 200 || s === 400 || s === 403 || s === 412,
  });
  if (res.ok) {
    await res.body?.cancel();
    return undefined;
  }
  const e = await json<{ error?: { message?: string } }>(g, res, "The ACL answer").catch(() => ({
    error: undefined,
  }));
  return e.error?.message?.split(". ")[0] ?? `HTTP ${res.status}`;
}

/**
 * The bytes of an object from `offset` on (a logs object growing while a build runs); empty when
 * the object does not exist yet or has nothing new.
 */
export async function readFrom(
  g: Gcs,
  bucket: string,
  name: string,
  offset: number,
): Promise<Uint8Array> {
  const url = objectUrl(g, bucket, name);
  url.searchParams.set("alt", "media");
  const res = await g.http.request(url, {
    auth: g.auth,
    signal: g.signal,
    headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    accept: (s) => s === 200 || s === 206 || s === 404 || s === 416,
  });
  if (res.status === 404 || res.status === 416) {
    await res.body?.cancel();
    return new Uint8Array();
  }
  const bytes = await readBody(g.http, res, {
    limit: 64 * 1024 * 1024,
    what: `The log ${name}`,
    signal: g.signal,
  });
  // A server ignoring Range sends it all.
  return res.status === 200 && offset > 0 ? bytes.subarray(offset) : bytes;
}

/** Upload a (small) file in one resumable session: the POST, then a single PUT. */
export async function uploadFile(
  g: Gcs,
  bucket: string,
  name: string,
  file: string,
  contentType = "application/gzip",
): Promise<GcsObject> {
  const size = (await Deno.stat(file)).size;
  const start = new URL(`${g.origin}/upload/storage/v1/b/${enc(bucket)}/o`);
  start.searchParams.set("uploadType", "resumable");
  start.searchParams.set("name", name);
  const res = await g.http.request(start, {
    method: "POST",
    headers: {
      "content-type": "application/json; charset=UTF-8",
      "x-upload-content-type": contentType,
      "x-upload-content-length": String(size),
    },
    body: JSON.stringify({ name, contentType }),
    auth: g.auth,
    signal: g.signal,
  });
  await res.body?.cancel();
  const location = res.headers.get("location");
  if (!location) throw new NetworkError("The upload was accepted but no session URI came back");
  const session = new URL(location, start);
  g.http.log.addSecret(session.searchParams.get("upload_id") ?? undefined);
  const put = await g.http.request(session, {
    method: "PUT",
    headers: {
      "content-type": contentType,
      "content-range": size ? `bytes 0-${size - 1}/${size}` : "bytes */0",
    },
    // A build context is small; the bytes in memory can be re-sent on a retry.
    body: await Deno.readFile(file),
    auth: g.auth,
    signal: g.signal,
    accept: (s) => s === 200 || s === 201,
  });
  return await json<GcsObject>(g, put, "The uploaded object's resource");
}
