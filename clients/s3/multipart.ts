/**
 * A resumable S3 multipart upload: parts are read in order into buffers and sent `concurrency` at
 * a time, with `UNSIGNED-PAYLOAD` so no part is hashed twice (the whole file's sha256 is already
 * in the metadata, and a pull verifies it). The upload id and the finished parts are kept in the
 * credential store; the next push of the same file (same key, size and mtime) checks them with
 * ListParts and sends only the rest. A push that fails for good (refused, file changed) aborts its
 * upload; an interrupted or dropped one keeps it for the next run.
 * @module
 */

import { UNSIGNED_PAYLOAD } from "../../core/auth/sigv4.ts";
import type { CredentialStore } from "../../core/credentials.ts";
import { InterruptedError, NetworkError, SregistryError } from "../../core/errors.ts";
import { nextProgressId, type ProgressSink } from "../../core/progress_events.ts";
import { objectUrl, s3Request, type S3Target, s3Xml, xmlBlocks, xmlValue } from "./api.ts";

/** What the credential store keeps per unfinished upload. */
export interface SavedUpload {
  uploadId: string;
  size: number;
  mtimeMs: number;
  digest: string;
  partSize: number;
  /** Part number (1-based) to ETag. */
  parts: Record<string, string>;
}

/** One multipart push. */
export interface MultipartJob {
  target: S3Target;
  key: string;
  file: string;
  size: number;
  mtimeMs: number;
  /** `sha256:<hex>` (also in `headers` as metadata). */
  digest: string;
  /** Headers of CreateMultipartUpload: metadata, ACL, content type. */
  headers: Record<string, string>;
  partSize: number;
  concurrency: number;
  store: CredentialStore;
  progress: ProgressSink;
  label: string;
  signal?: AbortSignal;
  debug(message: string): void;
}

/** The credential-store key of an upload. */
export function uploadKey(t: S3Target, key: string): string {
  return `multipart ${t.endpoint} ${t.bucket}/${key}`;
}

/** A saved upload for the same file, or undefined. */
export function savedUploadFor(
  job: Pick<MultipartJob, "target" | "key" | "store" | "size" | "mtimeMs">,
) {
  const saved = job.store.get<SavedUpload>(uploadKey(job.target, job.key));
  if (saved && saved.size === job.size && saved.mtimeMs === job.mtimeMs) return saved;
  return undefined;
}

async function abort(t: S3Target, key: string, uploadId: string, debug: (m: string) => void) {
  try {
    await s3Request(t, { method: "DELETE", key, query: { uploadId }, ok: [404] });
    debug(`Aborted multipart upload ${uploadId}`);
  } catch (e) {
    debug(`Could not abort multipart upload ${uploadId}: ${(e as Error).message}`);
  }
}

/** Parts the server holds for an upload (ListParts, all pages); undefined when the upload is gone. */
async function listParts(t: S3Target, key: string, uploadId: string) {
  const parts = new Map<number, { etag: string; size: number }>();
  let marker = "";
  for (;;) {
    const query: Record<string, string> = { uploadId };
    if (marker) query["part-number-marker"] = marker;
    let xml: string;
    try {
      xml = await s3Xml(t, { key, query });
    } catch (e) {
      if (e instanceof SregistryError && e.exitCode === 3) return undefined;
      throw e;
    }
    for (const p of xmlBlocks(xml, "Part")) {
      parts.set(Number(xmlValue(p, "PartNumber")), {
        etag: xmlValue(p, "ETag") ?? "",
        size: Number(xmlValue(p, "Size")),
      });
    }
    marker = xmlValue(xml, "NextPartNumberMarker") ?? "";
    if (xmlValue(xml, "IsTruncated") !== "true" || !marker) return parts;
  }
}

const unquote = (etag: string) => etag.replace(/^"|"$/g, "");

/** Upload `job.file` in parts (resuming a saved upload of the same file); returns the ETag. */
export async function multipartPush(job: MultipartJob): Promise<string> {
  const t = job.target;
  const storeKey = uploadKey(t, job.key);
  const count = Math.max(1, Math.ceil(job.size / job.partSize));
  const sizeOf = (n: number) => Math.min(job.partSize, job.size - (n - 1) * job.partSize);
  let uploadId: string | undefined;
  const done = new Map<number, string>();

  const previous = job.store.get<SavedUpload>(storeKey);
  if (previous) {
    const same = previous.size === job.size && previous.mtimeMs === job.mtimeMs &&
      previous.partSize === job.partSize && previous.digest === job.digest;
    if (same) {
      const remote = await listParts(t, job.key, previous.uploadId);
      if (remote) {
        uploadId = previous.uploadId;
        for (const [n, etag] of Object.entries(previous.parts)) {
          const r = remote.get(Number(n));
          if (r && unquote(r.etag) === unquote(etag) && r.size === sizeOf(Number(n))) {
            done.set(Number(n), etag);
          }
        }
        job.debug(`Resuming multipart upload ${uploadId}: ${done.size} of ${count} parts stored`);
      }
    } else {
      // The file changed since: that upload can never be finished.
      await abort(t, job.key, previous.uploadId, job.debug);
    }
    if (!uploadId) job.store.delete(storeKey);
  }
  if (!uploadId) {
    const xml = await s3Xml(t, {
      method: "POST",
      key: job.key,
      query: { uploads: "" },
      headers: job.headers,
    });
    uploadId = xmlValue(xml, "UploadId");
    if (!uploadId) throw new NetworkError(`S3 gave no UploadId for ${t.bucket}/${job.key}`);
  }
  const saved: SavedUpload = {
    uploadId,
    size: job.size,
    mtimeMs: job.mtimeMs,
    digest: job.digest,
    partSize: job.partSize,
    parts: Object.fromEntries(done),
  };
  job.store.set(storeKey, saved);

  const id = nextProgressId();
  const resumedFrom = [...done.keys()].reduce((n, p) => n + sizeOf(p), 0);
  job.progress.emit({ type: "start", id, label: job.label, total: job.size, resumedFrom });
  const ac = new AbortController();
  const onAbort = () => ac.abort(job.signal?.reason);
  job.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    using f = await Deno.open(job.file, { read: true });
    const todo = Array.from({ length: count }, (_, i) => i + 1).filter((n) => !done.has(n));
    let next = 0;
    let failure: unknown;
    // One buffer per worker, reused for each of its parts: memory stays at part size × concurrency
    // whatever the file's size (fresh buffers per part left collection to the GC, which let a
    // 256 MiB push peak at 450 MiB).
    const worker = async () => {
      const buffer = new Uint8Array(job.partSize);
      while (next < todo.length && !ac.signal.aborted) {
        const n = todo[next++];
        // Reads happen here, one part at a time in order, before the part's request starts.
        const body = buffer.subarray(0, sizeOf(n));
        f.seekSync((n - 1) * job.partSize, Deno.SeekMode.Start);
        let got = 0;
        while (got < body.length) {
          const r = f.readSync(body.subarray(got));
          if (r === null) throw new NetworkError(`"${job.file}" changed while it was uploaded`);
          got += r;
        }
        try {
          const res = await t.http.request(
            objectUrl(t, job.key, { partNumber: String(n), uploadId: uploadId! }),
            {
              method: "PUT",
              headers: {
                "x-amz-content-sha256": UNSIGNED_PAYLOAD,
                "content-length": String(body.length),
              },
              body,
              auth: t.auth,
              signal: ac.signal,
            },
          );
          await res.body?.cancel();
          const etag = res.headers.get("etag");
          if (!etag) {
            throw new NetworkError(`S3 gave no ETag for part ${n} of ${t.bucket}/${job.key}`);
          }
          done.set(n, etag);
          saved.parts[String(n)] = etag;
          job.store.set(storeKey, saved);
          job.progress.emit({ type: "advance", id, bytes: body.length });
        } catch (e) {
          failure ??= e;
          ac.abort(e);
          throw e;
        }
      }
    };
    await Promise.allSettled(
      Array.from({ length: Math.min(job.concurrency, todo.length) || 1 }, worker),
    );
    if (job.signal?.aborted) {
      throw new InterruptedError(
        `Push interrupted; ${done.size} of ${count} parts are stored: run the same push again to resume`,
      );
    }
    if (failure) throw failure;
    const xml = `<CompleteMultipartUpload>${
      [...done.entries()].sort((a, b) => a[0] - b[0]).map(([n, e]) =>
        `<Part><PartNumber>${n}</PartNumber><ETag>${e}</ETag></Part>`
      ).join("")
    }</CompleteMultipartUpload>`;
    const answer = await s3Xml(t, {
      method: "POST",
      key: job.key,
      query: { uploadId },
      body: new TextEncoder().encode(xml),
      headers: { "content-type": "application/xml" },
    });
    // S3 may answer 200 with an error document inside.
    const code = xmlValue(answer, "Code");
    if (code && !xmlValue(answer, "ETag")) {
      throw new NetworkError(
        `CompleteMultipartUpload failed (${code}: ${xmlValue(answer, "Message") ?? ""})`,
      );
    }
    job.store.delete(storeKey);
    return xmlValue(answer, "ETag") ?? "";
  } catch (e) {
    const resumable = e instanceof InterruptedError ||
      (e instanceof NetworkError && (e.status === undefined || e.status >= 500));
    if (!resumable) {
      // Refused or broken for good: nothing will finish this upload.
      await abort(t, job.key, uploadId, job.debug);
      job.store.delete(storeKey);
      throw e;
    }
    if (e instanceof InterruptedError) throw e;
    throw new NetworkError(
      `${
        (e as Error).message
      }; ${done.size} of ${count} parts are stored: run the same push again to resume`,
      { status: (e as NetworkError).status, cause: e },
    );
  } finally {
    job.signal?.removeEventListener("abort", onAbort);
    job.progress.emit({ type: "end", id });
  }
}
