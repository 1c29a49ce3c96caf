/**
 * Upload a file as one streamed request body.
 * @module
 */

import type { Authorizer } from "../auth/types.ts";
import { IntegrityError } from "../errors.ts";
import type { Http } from "../http.ts";
import { NO_PROGRESS, type ProgressSink } from "../progress_events.ts";
import { track, type Tracker } from "./_progress.ts";
import { baseName, toInterrupted } from "./_util.ts";

/** What {@link upload} sends, where to, and how. */
export interface UploadJob {
  /** The HTTP client. */
  http: Http;
  /** Where to send it. */
  url: string | URL;
  /** The file to send. */
  file: string;
  /** HTTP method (default PUT). */
  method?: string;
  /** Extra request headers. */
  headers?: HeadersInit;
  /** Credentials for every request (retries included). */
  auth?: Authorizer;
  /** Content-Type (default application/octet-stream). */
  contentType?: string;
  /** Statuses the caller accepts (default 2xx). */
  accept?: (status: number) => boolean;
  /** Where progress events go (default {@link NO_PROGRESS}). */
  progress?: ProgressSink;
  /** The label in progress events (default: the file name). */
  label?: string;
  /** Cancels the upload. */
  signal?: AbortSignal;
}

/** A ReadableStream over a file region that reports progress; the file closes when it ends. */
function fileStream(
  path: string,
  start: number,
  length: number,
  tracker: Tracker,
): ReadableStream<Uint8Array> {
  let f: Deno.FsFile | undefined;
  let left = length;
  return new ReadableStream<Uint8Array>({
    async start() {
      f = await Deno.open(path, { read: true });
      await f.seek(start, Deno.SeekMode.Start);
    },
    async pull(controller) {
      if (left <= 0) {
        f?.close();
        f = undefined;
        controller.close();
        return;
      }
      const buf = new Uint8Array(Math.min(1024 * 1024, left));
      const n = await f!.read(buf);
      if (n === null) {
        f?.close();
        f = undefined;
        controller.error(
          new IntegrityError(`The file "${path}" shrank while it was being uploaded`),
        );
        return;
      }
      left -= n;
      tracker.add(n);
      controller.enqueue(buf.subarray(0, n));
    },
    cancel() {
      f?.close();
      f = undefined;
    },
  }, { highWaterMark: 2 });
}

/**
 * Upload a file as a streaming request body (retried with a fresh stream on 5xx/network errors).
 * Deno sends stream bodies with chunked transfer encoding (no Content-Length); for servers that
 * require a length use `uploadChunked` or `multipartUpload`, whose parts are buffers.
 */
export async function upload(job: UploadJob): Promise<Response> {
  const { http, file } = job;
  const size = (await Deno.stat(file)).size;
  const tracker = track(job.progress ?? NO_PROGRESS, job.label ?? baseName(file, "upload"), size);
  const headers = new Headers(job.headers);
  if (!headers.has("content-type")) {
    headers.set("content-type", job.contentType ?? "application/octet-stream");
  }
  let attempts = 0;
  try {
    return await http.request(job.url, {
      method: job.method ?? "PUT",
      headers,
      signal: job.signal,
      accept: job.accept,
      auth: job.auth,
      bodyFactory: () => {
        // Each attempt sends the whole file again: its count starts from zero.
        if (attempts++ > 0) tracker.restart();
        else tracker.at(0);
        return fileStream(file, 0, size, tracker);
      },
    });
  } catch (e) {
    throw toInterrupted(job.signal, e);
  } finally {
    tracker.end();
  }
}
