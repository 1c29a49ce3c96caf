/**
 * Uploads in parts, each read into a buffer so it carries a Content-Length: the OCI chunked upload
 * (PATCH with Content-Range) and the S3-style multipart upload. Memory stays bounded by the part
 * size times the concurrency.
 * @module
 */

import { createHash } from "node:crypto";
import { pool } from "../pool.ts";
import { NO_PROGRESS, type ProgressSink } from "../progress_events.ts";
import { track } from "./_progress.ts";
import { baseName, readExactly, toInterrupted } from "./_util.ts";
import type { UploadJob } from "./upload.ts";

/** What {@link uploadChunked} sends: an {@link UploadJob} whose `url` is the upload session. */
export interface ChunkedUploadJob extends UploadJob {
  /** Bytes per PATCH. */
  chunkSize: number;
}

/** The outcome of {@link uploadChunked}. */
export interface ChunkedUploadResult {
  /** The session URL the last answer gave (the caller finishes with a PUT there). */
  location: string;
  /** Bytes sent. */
  size: number;
  /** `sha256:<hex>` of what was sent. */
  digest: string;
}

/**
 * OCI-style chunked upload: PATCH `chunkSize` pieces with Content-Range to the session URL, following
 * the Location of each answer. The caller finishes with `PUT <location>?digest=<digest>`.
 */
export async function uploadChunked(job: ChunkedUploadJob): Promise<ChunkedUploadResult> {
  const { http, file } = job;
  const size = (await Deno.stat(file)).size;
  const tracker = track(job.progress ?? NO_PROGRESS, job.label ?? baseName(file, "upload"), size);
  const hash = createHash("sha256");
  let location = new URL(job.url);
  try {
    using f = await Deno.open(file, { read: true });
    const chunkSize = Math.max(1, job.chunkSize);
    let offset = 0;
    tracker.at(0);
    while (offset < size) {
      const len = Math.min(chunkSize, size - offset);
      const buf = new Uint8Array(len);
      readExactly(f, buf, file);
      hash.update(buf);
      const headers = new Headers(job.headers);
      headers.set("content-type", job.contentType ?? "application/octet-stream");
      headers.set("content-range", `${offset}-${offset + len - 1}`);
      headers.set("content-length", String(len));
      const res = await http.request(location, {
        method: job.method ?? "PATCH",
        headers,
        body: buf,
        signal: job.signal,
        accept: job.accept,
        auth: job.auth,
      });
      await res.body?.cancel();
      const loc = res.headers.get("location");
      if (loc) location = new URL(loc, location);
      offset += len;
      tracker.add(len);
    }
  } catch (e) {
    throw toInterrupted(job.signal, e);
  } finally {
    tracker.end();
  }
  return { location: location.href, size, digest: `sha256:${hash.digest("hex")}` };
}

/** One part handed to {@link MultipartUploadJob.uploadPart}. */
export interface UploadPart {
  /** 0-based part number. */
  index: number;
  /** Where the part starts in the file. */
  offset: number;
  /** Its length. */
  size: number;
  /** Its bytes. */
  body: Uint8Array;
}

/** What {@link multipartUpload} splits and how each part is sent. */
export interface MultipartUploadJob {
  /** The file to send. */
  file: string;
  /** Bytes per part (the last may be shorter). */
  partSize: number;
  /** Parts in flight at once. */
  concurrency: number;
  /** Send one part (the caller signs and addresses it); returns its ETag. */
  uploadPart: (part: UploadPart) => Promise<string>;
  /** Where progress events go (default {@link NO_PROGRESS}); a part counts once it is sent. */
  progress?: ProgressSink;
  /** The label in progress events (default: the file name). */
  label?: string;
  /** Cancels the upload (fail-fast: no new part starts). */
  signal?: AbortSignal;
}

/**
 * Multipart upload helper (S3 style): splits the file into `partSize` parts and calls `uploadPart`
 * for each, `concurrency` at a time, fail-fast. Returns the parts' ETags in order.
 */
export async function multipartUpload(job: MultipartUploadJob): Promise<string[]> {
  const { file } = job;
  const size = (await Deno.stat(file)).size;
  const partSize = Math.max(1, job.partSize);
  const count = Math.max(1, Math.ceil(size / partSize));
  const indexes = Array.from({ length: count }, (_, i) => i);
  const tracker = track(job.progress ?? NO_PROGRESS, job.label ?? baseName(file, "upload"), size);
  tracker.at(0);
  try {
    return await pool(indexes, job.concurrency, async (index) => {
      const offset = index * partSize;
      const len = Math.min(partSize, size - offset);
      const body = new Uint8Array(len);
      {
        // One handle per part: parts are read concurrently at different offsets.
        using f = await Deno.open(file, { read: true });
        await f.seek(offset, Deno.SeekMode.Start);
        readExactly(f, body, file);
      }
      const etag = await job.uploadPart({ index, offset, size: len, body });
      tracker.add(len);
      return etag;
    }, job.signal);
  } catch (e) {
    throw toInterrupted(job.signal, e);
  } finally {
    tracker.end();
  }
}
