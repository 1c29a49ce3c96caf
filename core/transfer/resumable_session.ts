/**
 * Uploading a file into a resumable session (Google's protocol, used by Drive and Cloud Storage):
 * the caller opens the session and gets its URI; the file then goes in PUTs to that URI with
 * `Content-Range: bytes <a>-<b>/<size>`, each but the last a multiple of the server's quantum
 * (256 KiB for Google). A `308` answer's `Range: bytes=0-<n>` says what the server persisted (it
 * may be less than was sent); the last chunk is answered 200 or 201.
 *
 * After a dropped connection, a stall or a 5xx, the session is asked where it stands (a `PUT` with
 * no body and `Content-Range: bytes *\/<size>`) and the upload goes on from the first byte it
 * lacks. A session URI the caller kept from an earlier run is asked the same way first, so an
 * interrupted push continues in the next run.
 * @module
 */

import type { Authorizer } from "../auth/types.ts";
import { NetworkError, NotFoundError, UsageError } from "../errors.ts";
import type { Http } from "../http.ts";
import { nextProgressId, NO_PROGRESS, type ProgressSink } from "../progress_events.ts";
import { toInterrupted } from "./_util.ts";

/** Google's chunk quantum: 256 KiB. */
export const SESSION_QUANTUM = 256 * 1024;

/** What {@link sessionUpload} sends. */
export interface SessionUploadJob {
  /** The HTTP client. */
  http: Http;
  /** Credentials for the session URI's origin. */
  auth?: Authorizer;
  /** The session URI (the `Location` of the request that opened it). */
  session: string;
  /** The local file. */
  file: string;
  /** Ask the session where it stands before sending (a session kept from an earlier run). */
  resume?: boolean;
  /** Bytes per PUT: a multiple of {@link SessionUploadJob.quantum}. */
  chunkSize: number;
  /** Chunks but the last are multiples of this (default {@link SESSION_QUANTUM}). */
  quantum?: number;
  /** Content type of the chunks (default application/octet-stream). */
  contentType?: string;
  /** Progress events. */
  progress?: ProgressSink;
  /** The label in progress events. */
  label: string;
  /** What log lines and errors call the upload (default {@link SessionUploadJob.label}). */
  name?: string;
  /** Cancels the upload. */
  signal?: AbortSignal;
}

/** The outcome: the server's final answer (body unread), or a session that no longer exists. */
export type SessionUploadResult = { done: Response } | { gone: true };

/** `Range: bytes=0-<n>` of a 308: how many bytes the server holds (0 without the header). */
export function persistedBytes(res: Response): number {
  const m = res.headers.get("range")?.match(/^bytes=0-(\d+)$/);
  return m ? Number(m[1]) + 1 : 0;
}

/**
 * Refuse a chunk size that is not a positive multiple of `quantum`, before anything is sent.
 * @throws {UsageError} naming the bad size and a good one.
 */
export function checkChunkSize(chunkSize: number, quantum: number = SESSION_QUANTUM): void {
  if (chunkSize > 0 && chunkSize % quantum === 0) return;
  const unit = quantum % 1024 === 0
    ? `${quantum / 1024} KiB (${quantum} bytes)`
    : `${quantum} bytes`;
  throw new UsageError(
    `The upload chunk size ${chunkSize} is not a multiple of ${unit}; use for example ${
      8 * quantum
    }`,
  );
}

/**
 * Send `job.file` into the session, resuming from what the server holds.
 * @throws {NetworkError} when the server makes no progress or the retries are used up (the
 * session stays valid: the caller keeps its URI for the next run).
 */
export async function sessionUpload(job: SessionUploadJob): Promise<SessionUploadResult> {
  const { http, signal, session } = job;
  checkChunkSize(job.chunkSize, job.quantum);
  const name = job.name ?? job.label;
  const size = (await Deno.stat(job.file)).size;
  const contentType = job.contentType ?? "application/octet-stream";
  const progress = job.progress ?? NO_PROGRESS;
  const id = nextProgressId();
  let started = false;
  const at = (bytes: number) => {
    if (!started) {
      started = true;
      progress.emit({ type: "start", id, label: job.label, total: size, resumedFrom: bytes });
    } else progress.emit({ type: "position", id, bytes });
  };

  type Status = { done: Response } | { persisted: number } | { gone: true };
  const status = async (): Promise<Status> => {
    let res: Response;
    try {
      res = await http.request(session, {
        method: "PUT",
        headers: { "content-range": `bytes */${size}`, "content-length": "0" },
        auth: job.auth,
        signal,
        accept: (s) => s === 200 || s === 201 || s === 308 || s === 404 || s === 410,
      });
    } catch (e) {
      if (e instanceof NotFoundError) return { gone: true };
      throw e;
    }
    if (res.status === 404 || res.status === 410) {
      await res.body?.cancel();
      return { gone: true };
    }
    if (res.status === 308) {
      await res.body?.cancel();
      return { persisted: persistedBytes(res) };
    }
    return { done: res };
  };

  let offset = 0;
  if (job.resume) {
    const s = await status();
    if (!("persisted" in s)) return s;
    offset = s.persisted;
    http.log.verbose(`Resuming the upload of ${name} at byte ${offset} of ${size}`);
  }

  using f = await Deno.open(job.file, { read: true });
  let failures = 0;
  try {
    at(offset);
    for (;;) {
      const len = Math.min(job.chunkSize, size - offset);
      const buf = new Uint8Array(len);
      await f.seek(offset, Deno.SeekMode.Start);
      for (let got = 0; got < len;) {
        const n = await f.read(buf.subarray(got));
        if (n === null) {
          throw new NetworkError(`The file "${job.file}" shrank while it was uploaded`);
        }
        got += n;
      }
      const range = len === 0 ? `bytes */${size}` : `bytes ${offset}-${offset + len - 1}/${size}`;
      let res: Response;
      try {
        res = await http.request(session, {
          method: "PUT",
          headers: {
            "content-range": range,
            "content-length": String(len),
            "content-type": contentType,
          },
          body: buf,
          auth: job.auth,
          signal,
          // A retry would resend bytes the server may partly hold: ask it instead (below).
          retries: 0,
          accept: (s) => s === 200 || s === 201 || s === 308,
        });
      } catch (e) {
        if (signal?.aborted) throw e;
        const retryable = e instanceof NetworkError &&
          (e.status === undefined || e.status === 408 || e.status === 429 || e.status >= 500);
        if (!retryable) throw e;
        if (++failures > http.retries) {
          throw new NetworkError(
            `The upload of ${name} stopped at byte ${offset} of ${size}: ${
              (e as Error).message
            }; run the push again to resume`,
          );
        }
        http.log.debug(`Chunk at byte ${offset} of ${name} failed (${(e as Error).message})`);
        await http.backoff(failures, undefined, signal);
        const s = await status();
        if (!("persisted" in s)) return s;
        if (s.persisted > offset) failures = 0;
        offset = s.persisted;
        at(offset);
        continue;
      }
      if (res.status !== 308) return { done: res };
      await res.body?.cancel();
      const persisted = persistedBytes(res);
      if (persisted > offset) failures = 0;
      else if (++failures > http.retries) {
        throw new NetworkError(
          `The upload of ${name} makes no progress at byte ${offset} of ${size}; run the push again`,
        );
      }
      offset = persisted;
      at(offset);
    }
  } catch (e) {
    throw toInterrupted(signal, e);
  } finally {
    if (started) progress.emit({ type: "end", id });
  }
}
