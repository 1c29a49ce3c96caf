/**
 * The library's own upload, for servers without the OCI redirect (scs-library-client
 * `client/push.go`): get or create the entity, collection and container, get or create the image
 * record by its `sha256.<hex>` hash, upload it with the v2 API, and set the tags per architecture.
 *
 * The v2 upload is one presigned PUT for small files, and for large ones an S3 multipart upload
 * whose presigned parts go up in parallel (the reference client sends them one at a time). The
 * upload id and each finished part's ETag are kept in the credential store under the file, so an
 * interrupted push continues with the parts already stored; a refused one is aborted.
 * @module
 */

import { createHash } from "node:crypto";
import {
  InterruptedError,
  NetworkError,
  NotFoundError,
  SregistryError,
  UnsupportedError,
} from "../../core/errors.ts";
import { join } from "node:path";
import { acquireLock } from "../../core/lock.ts";
import { pool } from "../../core/pool.ts";
import { sleep } from "../../core/sleep.ts";
import { nextProgressId } from "../../core/progress_events.ts";
import type { Context } from "../types.ts";
import { type LibraryApi, versionAtLeast } from "./_api.ts";
import { type LibraryRef, refPath } from "./reference.ts";

/** The API version with the v2 (presigned) upload. */
export const API_V2_UPLOAD = "2.0.0-alpha.1";
/** The API version with per-architecture tags (`v2/tags`). */
export const API_V2_ARCH_TAGS = "2.0.0-alpha.2";

/** One legacy push. */
export interface LegacyPushJob {
  ctx: Context;
  api: LibraryApi;
  ref: LibraryRef;
  /** Absolute path of the SIF. */
  file: string;
  /** The architecture the image is tagged for (the SIF's own unless overridden). */
  arch: string;
  /** Files larger than this use the multipart upload. */
  threshold: number;
  /** Parts in flight at once (before the memory cap). */
  concurrency: number;
  /** The most bytes of parts buffered at once. */
  memory: number;
  /** The progress label. */
  label: string;
}

/** What the credential store keeps for an unfinished multipart upload of one file. */
interface SavedUpload {
  imageId: string;
  uploadId: string;
  size: number;
  mtimeMs: number;
  sha256: string;
  md5: string;
  partSize: number;
  totalParts: number;
  /** Whether the object store wants each part's sha256 (`options.s3compliant`). */
  s3compliant: boolean;
  /** Part number (1-based) to ETag. */
  parts: Record<string, string>;
}

interface Named {
  id: string;
  name?: string;
}

interface ImageRecord extends Named {
  hash?: string;
  uploaded?: boolean;
}

interface MultipartStart {
  uploadID?: string;
  totalParts?: number;
  partSize?: number;
  options?: Record<string, string>;
}

/** sha256 and md5 of a file in one pass (the v2 upload sends both, as the reference client does). */
async function checksums(file: string, signal: AbortSignal) {
  const sha = createHash("sha256");
  const md5 = createHash("md5");
  using f = await Deno.open(file, { read: true });
  const buf = new Uint8Array(4 * 1024 * 1024);
  for (;;) {
    if (signal.aborted) throw new InterruptedError("Interrupted");
    const n = await f.read(buf);
    if (n === null) break;
    sha.update(buf.subarray(0, n));
    md5.update(buf.subarray(0, n));
  }
  return { sha256: sha.digest("hex"), md5: md5.digest("hex") };
}

async function getOrCreate<T extends Named>(
  job: LegacyPushJob,
  path: string,
  create: () => { path: string; body: Record<string, unknown> },
): Promise<T> {
  try {
    const found = await job.api.call<T>(path);
    if (found?.id) return found;
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
  }
  const c = create();
  job.ctx.log.verbose(`Creating ${path.replace(/^v1\//, "")} in the library`);
  let made: T;
  try {
    made = await job.api.call<T>(c.path, { method: "POST", body: c.body });
  } catch (e) {
    // Another push (a parallel CI job) created it since the lookup: use that one.
    if (!(e instanceof NetworkError && e.status === 409)) throw e;
    job.ctx.log.verbose(`${path.replace(/^v1\//, "")} was created meanwhile; using it`);
    made = await job.api.call<T>(path);
  }
  if (!made?.id) {
    throw new NetworkError(`The library gave no id for the new ${c.path.replace(/^v1\//, "")}`);
  }
  return made;
}

/** How long a push whose upload another push replaced waits for that one to finish. */
const OTHER_UPLOAD_WAIT_MS = 60_000;

/** Whether the image at `imagePath` is (or within {@link OTHER_UPLOAD_WAIT_MS} becomes) uploaded. */
async function uploadedMeanwhile(job: LegacyPushJob, imagePath: string): Promise<boolean> {
  const until = Date.now() + OTHER_UPLOAD_WAIT_MS;
  for (let wait = 200;; wait = Math.min(wait * 2, 5000)) {
    const image = await job.api.call<ImageRecord>(imagePath).catch(() => null);
    if (image?.uploaded) return true;
    if (!image || Date.now() + wait > until) return false;
    if (wait === 200) job.ctx.log.info("Another push is uploading this image; waiting for it");
    await sleep(wait, job.ctx.signal);
  }
}

/** Push `job.file` through the library's own upload; returns the image's digest and size. */
export async function legacyPush(job: LegacyPushJob): Promise<{ digest: string; size: number }> {
  const { ctx, api, ref } = job;
  const stat = await Deno.stat(job.file);
  const size = stat.size;
  const mtimeMs = stat.mtime?.getTime() ?? 0;
  const storeKey = `upload ${api.base} ${refPath(ref)} ${job.file}`;
  // Two pushes of this file at once on this machine would share one saved upload: the second waits
  // for the first, then finds the image uploaded.
  await using _lock = await acquireLock(
    join(
      ctx.globals.tmpDir,
      `sregistry-library-push-${
        createHash("sha256").update(storeKey).digest("hex").slice(0, 16)
      }.lock`,
    ),
    {
      signal: ctx.signal,
      onWait: () => ctx.log.info(`Waiting for another push of ${job.file} to finish`),
    },
  );
  const saved = ctx.credentials.get<SavedUpload>(storeKey);
  const same = saved && saved.size === size && saved.mtimeMs === mtimeMs;
  // A resumed upload already knows the file's checksums: no second pass over a big file.
  const sums = same
    ? { sha256: saved.sha256, md5: saved.md5 }
    : await checksums(job.file, ctx.signal);
  if (saved && !same) ctx.credentials.delete(storeKey);

  const entity = await getOrCreate<Named>(job, `v1/entities/${ref.entity}`, () => ({
    path: "v1/entities",
    body: { name: ref.entity, description: "No description" },
  }));
  const collection = await getOrCreate<Named>(
    job,
    `v1/collections/${ref.entity}/${ref.collection}`,
    () => ({
      path: "v1/collections",
      body: { name: ref.collection, description: "No description", entity: entity.id },
    }),
  );
  const container = await getOrCreate<Named>(job, `v1/containers/${refPath(ref)}`, () => ({
    path: "v1/containers",
    body: { name: ref.container, description: "No description", collection: collection.id },
  }));
  const hash = `sha256.${sums.sha256}`;
  const imagePath = `v1/images/${refPath(ref)}:${hash}?arch=${encodeURIComponent(job.arch)}`;
  const image = await getOrCreate<ImageRecord>(
    job,
    imagePath,
    () => ({ path: "v1/images", body: { hash, container: container.id, description: "" } }),
  );

  const version = await api.apiVersion();
  if (!image.uploaded) {
    if (!versionAtLeast(version, API_V2_UPLOAD)) {
      throw new UnsupportedError(
        `The library at ${new URL(api.base).host} speaks API ${
          version ?? "(unknown)"
        }; sregistry uploads with API ${API_V2_UPLOAD} or later (or the OCI redirect)`,
      );
    }
    try {
      const sent = size > job.threshold &&
        await multipartUpload(job, image.id, size, mtimeMs, sums, storeKey);
      if (!sent) await singleUpload(job, image.id, size, sums);
    } catch (e) {
      // Two pushes of the same file (parallel CI jobs) share one image record, and the library
      // keeps one upload per image: starting one drops the other's, whose next call is refused.
      // The upload that started last goes on; once it is done the image is there, with this
      // file's hash, so the refused push waits for that and has then succeeded too.
      const refused = e instanceof NotFoundError ||
        (e instanceof NetworkError && e.status !== undefined && e.status < 500);
      if (!refused || !(await uploadedMeanwhile(job, imagePath))) throw e;
      ctx.log.info("Another push uploaded this image meanwhile; using it");
      ctx.credentials.delete(storeKey);
    }
  } else {
    ctx.log.info("The library already has this image; not uploading it again");
    ctx.credentials.delete(storeKey);
  }

  if (versionAtLeast(version, API_V2_ARCH_TAGS)) {
    for (const tag of ref.tags) {
      await api.call(`v2/tags/${container.id}`, {
        method: "POST",
        body: { Arch: job.arch, Tag: tag, ImageID: image.id },
      });
    }
  } else {
    ctx.log.info(
      `This library keeps one image per tag (API ${version ?? "unknown"}): ${
        ref.tags.join(", ")
      } now name this ${job.arch} image whatever the architecture`,
    );
    for (const tag of ref.tags) {
      await api.call(`v1/tags/${container.id}`, {
        method: "POST",
        body: { Tag: tag, ImageID: image.id },
      });
    }
  }
  return { digest: `sha256:${sums.sha256}`, size };
}

/** Headers a presigned URL signed (`X-Amz-SignedHeaders`). */
function signedHeaders(url: string): string[] {
  try {
    return (new URL(url).searchParams.get("X-Amz-SignedHeaders") ?? "").split(";");
  } catch {
    return [];
  }
}

async function singleUpload(
  job: LegacyPushJob,
  imageId: string,
  size: number,
  sums: { sha256: string; md5: string },
) {
  const { ctx, api } = job;
  const r = await api.call<{ uploadURL?: string }>(`v2/imagefile/${imageId}`, {
    method: "POST",
    body: { filesize: size, sha256sum: sums.sha256, md5sum: sums.md5 },
  });
  if (!r?.uploadURL) throw new NetworkError("The library gave no upload URL for the image");
  const headers: Record<string, string> = { "content-type": "application/octet-stream" };
  // Sent only when signed: S3 refuses unsigned x-amz-* headers on some servers.
  if (signedHeaders(r.uploadURL).includes("x-amz-content-sha256")) {
    headers["x-amz-content-sha256"] = sums.sha256;
  }
  // The object store wants a Content-Length, which a streamed body never has: the file is sent
  // from memory, so only up to the part memory (a library without multipart uploads is rare).
  if (size > job.memory) {
    throw new UnsupportedError(
      `The library at ${new URL(api.base).host} has no multipart upload, and "${job.file}" (${
        Math.ceil(size / 1024 / 1024)
      } MiB) is too large to send in one piece from memory (${job.memory / 1024 / 1024} MiB)`,
    );
  }
  const body = await Deno.readFile(job.file);
  if (body.length !== size) {
    throw new NetworkError(`"${job.file}" changed while it was uploaded; push it again`);
  }
  const id = nextProgressId();
  ctx.progress.emit({ type: "start", id, label: job.label, total: size });
  try {
    // No authorizer: the presigned URL carries its own signature, and the token stays home.
    const res = await ctx.http.request(r.uploadURL, {
      method: "PUT",
      body,
      headers,
      signal: ctx.signal,
    });
    await res.body?.cancel();
    ctx.progress.emit({ type: "advance", id, bytes: size });
  } finally {
    ctx.progress.emit({ type: "end", id });
  }
  await api.call(`v2/imagefile/${imageId}/_complete`, { method: "PUT", body: {} });
}

async function multipartUpload(
  job: LegacyPushJob,
  imageId: string,
  size: number,
  mtimeMs: number,
  sums: { sha256: string; md5: string },
  storeKey: string,
  retried = false,
): Promise<boolean> {
  const { ctx, api } = job;
  const base = `v2/imagefile/${imageId}`;
  let state = ctx.credentials.get<SavedUpload>(storeKey);
  if (state && (state.imageId !== imageId || state.sha256 !== sums.sha256)) {
    ctx.credentials.delete(storeKey);
    state = undefined;
  }
  const resumed = state !== undefined;
  if (!state) {
    let start: MultipartStart;
    try {
      start = await api.call<MultipartStart>(`${base}/_multipart`, {
        method: "POST",
        body: { filesize: size },
      });
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      // A library without multipart uploads takes the file in one piece, as the reference does.
      ctx.log.verbose("The library has no multipart upload; sending the image in one piece");
      return false;
    }
    const partSize = Number(start?.partSize);
    const totalParts = Number(start?.totalParts);
    if (!start?.uploadID || !(partSize > 0) || totalParts !== Math.ceil(size / partSize)) {
      throw new NetworkError(
        `The library started a multipart upload it did not describe (uploadID, partSize ${start?.partSize}, totalParts ${start?.totalParts})`,
      );
    }
    const flag = start.options?.s3compliant;
    state = {
      s3compliant: flag === undefined || flag === "" || flag === "true",
      imageId,
      uploadId: start.uploadID,
      size,
      mtimeMs,
      sha256: sums.sha256,
      md5: sums.md5,
      partSize,
      totalParts,
      parts: {},
    };
    ctx.credentials.set(storeKey, state);
  }
  const st = state;
  const sizeOf = (n: number) => Math.min(st.partSize, size - (n - 1) * st.partSize);
  const todo = Array.from({ length: st.totalParts }, (_, i) => i + 1).filter((n) =>
    !st.parts[String(n)]
  );
  const stored = () => Object.keys(st.parts).length;
  if (resumed) {
    ctx.log.info(
      `Resuming the upload: ${stored()} of ${st.totalParts} parts are already stored`,
    );
  }
  // Parts are buffers (the object store needs a Content-Length): cap the bytes held at once.
  const width = Math.max(
    1,
    Math.min(job.concurrency, Math.floor(job.memory / st.partSize) || 1, todo.length),
  );
  const free: Uint8Array<ArrayBuffer>[] = [];
  const id = nextProgressId();
  const resumedFrom = st.totalParts === 0
    ? 0
    : Object.keys(st.parts).reduce((n, p) => n + sizeOf(Number(p)), 0);
  ctx.progress.emit({ type: "start", id, label: job.label, total: size, resumedFrom });
  try {
    using f = await Deno.open(job.file, { read: true });
    // After a failure no new part starts, but parts in flight finish (the command's signal, not
    // the pool's): each one stored is one the next run does not send.
    const signal = ctx.signal;
    await pool(todo, width, async (n) => {
      const buffer = free.pop() ?? new Uint8Array(st.partSize);
      try {
        const body = buffer.subarray(0, sizeOf(n));
        // Seek and read with no await in between: the handle is shared by the workers.
        f.seekSync((n - 1) * st.partSize, Deno.SeekMode.Start);
        for (let got = 0; got < body.length;) {
          const r = f.readSync(body.subarray(got));
          if (r === null) throw new NetworkError(`"${job.file}" changed while it was uploaded`);
          got += r;
        }
        const sha = st.s3compliant ? createHash("sha256").update(body).digest("hex") : "";
        const r = await api.call<{ presignedURL?: string }>(`${base}/_multipart`, {
          method: "PUT",
          body: { partSize: body.length, uploadID: st.uploadId, partNumber: n, sha256sum: sha },
          signal,
        });
        if (!r?.presignedURL) {
          throw new NetworkError(`The library gave no upload URL for part ${n}`);
        }
        const headers: Record<string, string> = {};
        if (signedHeaders(r.presignedURL).includes("x-amz-content-sha256")) {
          headers["x-amz-content-sha256"] = sha;
        }
        const res = await ctx.http.request(r.presignedURL, {
          method: "PUT",
          body,
          headers,
          signal,
        });
        await res.body?.cancel();
        const etag = res.headers.get("etag");
        if (!etag) throw new NetworkError(`The object store gave no ETag for part ${n}`);
        st.parts[String(n)] = etag;
        ctx.credentials.set(storeKey, st);
        ctx.progress.emit({ type: "advance", id, bytes: body.length });
      } finally {
        free.push(buffer);
      }
    }, ctx.signal);
    await api.call(`${base}/_multipart_complete`, {
      method: "PUT",
      body: {
        uploadID: st.uploadId,
        completedParts: Array.from({ length: st.totalParts }, (_, i) => ({
          partNumber: i + 1,
          token: st.parts[String(i + 1)],
        })),
      },
    });
    ctx.credentials.delete(storeKey);
    return true;
  } catch (e) {
    const left =
      `${stored()} of ${st.totalParts} parts are stored: run the same push again to resume`;
    if (ctx.signal.aborted) throw new InterruptedError(`Push interrupted; ${left}`);
    if (resumed && !retried && e instanceof NotFoundError) {
      // The saved upload is gone (finished, aborted or expired on the server): start over once.
      ctx.log.info("The saved upload is gone from the library; starting the upload again");
      ctx.credentials.delete(storeKey);
      return multipartUpload(job, imageId, size, mtimeMs, sums, storeKey, true);
    }
    const transient = !(e instanceof SregistryError) ||
      (e instanceof NetworkError && (e.status === undefined || e.status >= 500));
    if (transient) {
      throw new NetworkError(`${(e as Error).message}; ${left}`, {
        status: (e as NetworkError).status,
        cause: e,
      });
    }
    // Refused for good: nothing will finish this upload.
    ctx.credentials.delete(storeKey);
    await api.call(`${base}/_multipart_abort`, { method: "PUT", body: { uploadID: st.uploadId } })
      .catch((x) =>
        ctx.log.debug(`Could not abort upload ${st.uploadId}: ${(x as Error).message}`)
      );
    throw e;
  } finally {
    ctx.progress.emit({ type: "end", id });
  }
}
