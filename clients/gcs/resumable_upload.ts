/**
 * The JSON API's resumable upload: `POST <upload>/b/<bucket>/o?uploadType=resumable` with the
 * object's resource (name, contentType, metadata) gives a session URI in `Location`; the file then
 * goes in PUTs with `Content-Range: bytes <a>-<b>/<size>`, each but the last a multiple of 256 KiB.
 * A 308 answer's `Range: bytes=0-<n>` says what the server persisted (it may be less than was
 * sent); the last chunk answers 200 or 201 with the object resource.
 *
 * After a dropped connection, a stalled answer or a 5xx, the session is asked where it stands
 * (`PUT` with an empty body and `Content-Range: bytes *\/<size>`) and the upload goes on from the
 * first byte it lacks. A session URI kept by the caller lets a later run continue the same way.
 *
 * {@link uploadFile} is the small case (a build context): one session, one PUT of the whole file.
 * @module
 */

import type { Authorizer } from "../../core/auth/types.ts";
import { NetworkError } from "../../core/errors.ts";
import { type Http, MAX_JSON_BYTES, readBody } from "../../core/http.ts";
import type { ProgressSink } from "../../core/progress_events.ts";
import {
  checkChunkSize,
  SESSION_QUANTUM,
  sessionUpload,
} from "../../core/transfer/resumable_session.ts";
import type { Api, ObjectResource } from "./api.ts";
import type { ObjectMetadata } from "./layout.ts";

/** Chunks are multiples of this (256 KiB), as the API requires. */
export const CHUNK_QUANTUM = SESSION_QUANTUM;

/** The default chunk size: 8 MiB. */
export const DEFAULT_CHUNK_SIZE = 32 * CHUNK_QUANTUM;

/** What {@link resumableUpload} sends. */
export interface ResumableUploadJob {
  /** ctx.http. */
  http: Http;
  /** The bearer authorizer (bound to the API's origin). */
  auth: Authorizer;
  /** `<origin>/upload/storage/v1`. */
  uploadRoot: string;
  /** The bucket. */
  bucket: string;
  /** The object name. */
  name: string;
  /** The local file. */
  file: string;
  /** Custom metadata set with the object. */
  metadata?: ObjectMetadata;
  /** Content type (default application/octet-stream). */
  contentType?: string;
  /** Bytes per PUT: a multiple of 256 KiB (default {@link DEFAULT_CHUNK_SIZE}). */
  chunkSize?: number;
  /** A session URI from an earlier run of the same upload. */
  session?: string;
  /** Called with a new session URI (to keep it for a later run). */
  onSession?: (uri: string) => void;
  /** Progress events. */
  progress?: ProgressSink;
  /** The label in progress events. */
  label?: string;
  /** Cancels the upload. */
  signal?: AbortSignal;
}

async function resourceOf(http: Http, res: Response, signal?: AbortSignal) {
  const bytes = await readBody(http, res, {
    limit: MAX_JSON_BYTES,
    what: "The uploaded object's resource",
    signal,
  });
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as ObjectResource;
  } catch {
    throw new NetworkError("The upload finished but its answer is not an object resource");
  }
}

/** What {@link openSession} asks for. */
export interface SessionRequest {
  /** ctx.http. */
  http: Http;
  /** The bearer authorizer (bound to the API's origin). */
  auth: Authorizer;
  /** `<origin>/upload/storage/v1`. */
  uploadRoot: string;
  /** The bucket. */
  bucket: string;
  /** The object name. */
  name: string;
  /** The size of the whole upload, in bytes. */
  size: number;
  /** Content type (default application/octet-stream). */
  contentType?: string;
  /** Custom metadata set with the object. */
  metadata?: ObjectMetadata;
  /** Cancels the request. */
  signal?: AbortSignal;
}

/** Start a resumable session (the POST with the object's resource); returns the session URI. */
export async function openSession(r: SessionRequest): Promise<string> {
  const contentType = r.contentType ?? "application/octet-stream";
  const url = new URL(`${r.uploadRoot}/b/${encodeURIComponent(r.bucket)}/o`);
  url.searchParams.set("uploadType", "resumable");
  url.searchParams.set("name", r.name);
  const res = await r.http.request(url, {
    method: "POST",
    headers: {
      "content-type": "application/json; charset=UTF-8",
      "x-upload-content-type": contentType,
      "x-upload-content-length": String(r.size),
    },
    body: JSON.stringify({
      name: r.name,
      contentType,
      ...(r.metadata ? { metadata: r.metadata } : {}),
    }),
    auth: r.auth,
    signal: r.signal,
  });
  await res.body?.cancel();
  const location = res.headers.get("location");
  if (!location) throw new NetworkError("The upload was accepted but no session URI came back");
  return new URL(location, url).href;
}

/**
 * Upload a small file (a build context) in one resumable session: the POST, then a single PUT of
 * the whole file, which is held in memory so that a retry can send it again.
 */
export async function uploadFile(
  api: Api,
  bucket: string,
  name: string,
  file: string,
  contentType = "application/gzip",
): Promise<ObjectResource> {
  const size = (await Deno.stat(file)).size;
  const session = await openSession({
    http: api.http,
    auth: api.auth,
    uploadRoot: api.endpoint.upload,
    bucket,
    name,
    size,
    contentType,
    signal: api.signal,
  });
  api.http.log.addSecret(new URL(session).searchParams.get("upload_id") ?? undefined);
  const res = await api.http.request(session, {
    method: "PUT",
    headers: {
      "content-type": contentType,
      "content-range": size ? `bytes 0-${size - 1}/${size}` : "bytes */0",
    },
    body: await Deno.readFile(file),
    auth: api.auth,
    signal: api.signal,
    accept: (s) => s === 200 || s === 201,
  });
  return await resourceOf(api.http, res, api.signal);
}

/**
 * Upload the file through a resumable session; returns the object resource. The session is
 * opened here (or a kept one asked first); core/transfer/resumable_session.ts sends the bytes.
 */
export async function resumableUpload(job: ResumableUploadJob): Promise<ObjectResource> {
  const { http, signal } = job;
  const chunkSize = job.chunkSize ?? DEFAULT_CHUNK_SIZE;
  checkChunkSize(chunkSize, CHUNK_QUANTUM);
  const size = (await Deno.stat(job.file)).size;
  const send = (session: string, resume: boolean) =>
    sessionUpload({
      http,
      auth: job.auth,
      session,
      resume,
      file: job.file,
      chunkSize,
      quantum: CHUNK_QUANTUM,
      contentType: job.contentType,
      progress: job.progress,
      label: job.label ?? job.name,
      name: job.name,
      signal,
    });

  if (job.session) {
    const r = await send(job.session, true);
    if ("done" in r) return await resourceOf(http, r.done, signal);
  }
  // No kept session, or it expired: a new one.
  const session = await openSession({
    http,
    auth: job.auth,
    uploadRoot: job.uploadRoot,
    bucket: job.bucket,
    name: job.name,
    size,
    contentType: job.contentType,
    metadata: job.metadata,
    signal,
  });
  job.onSession?.(session);
  const r = await send(session, false);
  if ("gone" in r) {
    throw new NetworkError(`The upload session of ${job.name} expired; run the push again`);
  }
  return await resourceOf(http, r.done, signal);
}
