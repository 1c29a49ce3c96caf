/**
 * Download one URL to a file: stream to `<dest>.partial`, hash while writing, verify size and
 * digest, fsync and rename, so a final name never holds a partial or corrupt file. An interrupted
 * download (Ctrl-C, kill -9, a dropped connection) continues from the partial file with a Range
 * request when the saved validator still matches (see resume_state.ts), and starts over otherwise.
 * Large objects on servers that allow ranges are fetched in parallel parts (see ranged_parts.ts).
 * @module
 */

import { dirname } from "node:path";
import type { Authorizer } from "../auth/types.ts";
import { IntegrityError, NetworkError } from "../errors.ts";
import { startBackgroundSync } from "../background_sync.ts";
import { createHasher, type Hasher, hashFileInto } from "../hasher.ts";
import { createHashingWriter, type HashingWriter } from "../hashing_writer.ts";
import type { Http } from "../http.ts";
import { NO_PROGRESS, type ProgressSink } from "../progress_events.ts";
import { finish } from "./_finish.ts";
import { track, type Tracker } from "./_progress.ts";
import { isNoSpace, noSpaceError } from "./_no_space.ts";
import { pump } from "./_pump.ts";
import { type RetryBudget, retryBudget } from "./_retry_budget.ts";
import { baseName, exists, removeQuietly, RestartSignal, toInterrupted } from "./_util.ts";
import { announcedDigest, contentLength, parseContentRange, unsatisfiedTotal } from "./headers.ts";
import { MAX_STREAMS, PARALLEL_THRESHOLD, parallelDownload, splitParts } from "./ranged_parts.ts";
import {
  canResume,
  ifRange,
  type PartialMeta,
  partialPaths,
  readMeta,
  writeMeta,
} from "./resume_state.ts";

/** What {@link download} fetches, where to, and how. */
export interface DownloadJob {
  /** The HTTP client (retries, TLS, proxies, stall timeout). */
  http: Http;
  /** What to fetch. */
  url: string | URL;
  /** The final file; bytes land in `<dest>.partial` until they are verified. */
  dest: string;
  /** Extra request headers. */
  headers?: HeadersInit;
  /** Credentials for every request of this download (retries and ranged parts included). */
  auth?: Authorizer;
  /** `sha256:<hex>`; a mismatch is an IntegrityError (exit 6) and leaves no final file. */
  expectedDigest?: string;
  /** A mismatch is an IntegrityError. */
  expectedSize?: number;
  /** Continue from `<dest>.partial` when its saved validator still matches (default true). */
  resume?: boolean;
  /** Ranged streams for large objects when the server supports ranges (default
   * {@link MAX_STREAMS}; callers pass SREGISTRY_WORKERS or 1 for loopback hosts). */
  parallel?: number;
  /** Objects at least this large are fetched in parallel ranges (default {@link PARALLEL_THRESHOLD}). */
  parallelThreshold?: number;
  /** Size of each ranged part (default: {@link PART_SIZE} or 1/256 of the object if larger). */
  partSize?: number;
  /** Verify against a sha-256 the server announces (Repr-Digest, Digest, X-Checksum-Sha256) when no
   * expectedDigest is given (default true). */
  serverDigest?: boolean;
  /** Where progress events go (default {@link NO_PROGRESS}; the CLI passes ctx.progress). */
  progress?: ProgressSink;
  /** The label in progress events (default: the file name of `dest`). */
  label?: string;
  /** Cancels the download (the partial file is kept for a later resume). */
  signal?: AbortSignal;
  /**
   * Bytes of new ground an attempt must cover, past the furthest point reached before, to earn
   * one more attempt beyond `http.retries` (default 4 MiB). The budget covers
   * the whole download: restarts and ranged parts share it.
   */
  progressAllowance?: number;
}

/** The outcome of {@link download}. */
export interface DownloadResult {
  /** The final file. */
  path: string;
  /** Its size in bytes. */
  size: number;
  /** `sha256:<hex>` of the whole file. */
  digest: string;
  /** Bytes that were already on disk from an earlier attempt (0 for a fresh download). */
  resumedFrom: number;
  /** The URL requested. */
  url: string;
  /** The server's ETag, if any. */
  etag?: string;
  /** The server's Last-Modified, if any. */
  lastModified?: string;
  /** How many ranged streams were used. */
  streams: number;
}

/** One download in flight, shared by the single-stream and the parallel paths. */
export interface Attempt {
  /** The caller's job. */
  readonly job: DownloadJob;
  /** The URL as a string. */
  readonly href: string;
  /** `<dest>.partial`. */
  readonly partial: string;
  /** `<dest>.partial.json`. */
  readonly metaPath: string;
  /** The download's progress. */
  readonly tracker: Tracker;
  /** The retries left for the whole download, shared by restarts and parts. */
  readonly budget: RetryBudget;
  /** The object's size, once a response said (for the message on a full disk). */
  total?: number;
}

/**
 * Download `job.url` to `job.dest` through `<dest>.partial`, verifying size and digest.
 * @throws {IntegrityError} on a size or digest mismatch (no final file is left).
 * @throws {NetworkError} when the retries are used up (the partial file is kept for a resume).
 * @throws {InterruptedError} when `signal` aborts (the partial file is kept).
 */
export async function download(job: DownloadJob): Promise<DownloadResult> {
  const { http, dest, signal } = job;
  const { partial, metaPath } = partialPaths(dest);
  await Deno.mkdir(dirname(dest), { recursive: true });
  const tracker = track(
    job.progress ?? NO_PROGRESS,
    job.label ?? baseName(dest, "download"),
    job.expectedSize,
  );
  const budget = retryBudget(http.retries, job.progressAllowance);
  const attempt: Attempt = { job, href: String(job.url), partial, metaPath, tracker, budget };
  try {
    try {
      return await downloadOnce(attempt, true);
    } catch (e) {
      if (!(e instanceof RestartSignal)) throw e;
      http.log.verbose(`${e.message}; starting over`);
      await removeQuietly(partial, metaPath);
      tracker.restart();
      try {
        return await downloadOnce(attempt, false);
      } catch (again) {
        if (!(again instanceof RestartSignal)) throw again;
        // The object changed twice under one download: it is not stable enough to fetch now.
        throw new NetworkError(
          `Download of ${attempt.href} failed after ${budget.attempts} attempts: ${again.message}; try again later`,
        );
      }
    }
  } catch (e) {
    const info = await Deno.stat(partial).catch(() => undefined);
    // A parallel download's partial file is sparse: its blocks, not its length, are what it holds.
    const onDisk = info &&
      (info.blocks !== null ? Math.min(info.size, info.blocks * 512) : info.size);
    // Nothing arrived (refused, not found, no such host): there is nothing to resume either.
    if (onDisk === 0) await removeQuietly(partial, metaPath);
    if (isNoSpace(e)) {
      // Bytes without their resume state can never be resumed: free their space now.
      const resumable = onDisk !== undefined && onDisk > 0 && await exists(metaPath);
      if (!resumable) await removeQuietly(partial, metaPath);
      await removeQuietly(`${metaPath}.tmp`);
      throw noSpaceError({
        dest,
        partial: resumable ? partial : undefined,
        total: attempt.total ?? job.expectedSize,
        onDisk: resumable ? onDisk : 0,
      }, e);
    }
    throw toInterrupted(signal, e);
  } finally {
    tracker.end();
  }
}

/** Check the digest's form once: only sha256 can be verified. */
function expectedDigestOf(job: DownloadJob): string | undefined {
  const expected = job.expectedDigest?.toLowerCase();
  if (expected && !/^sha256:[0-9a-f]{64}$/.test(expected)) {
    throw new IntegrityError(
      `Cannot verify against digest "${job.expectedDigest}": only sha256:<64 hex> is supported`,
    );
  }
  return expected;
}

/** One single-stream attempt (handing over to the parallel path when the object is large). */
async function downloadOnce(a: Attempt, allowResume: boolean): Promise<DownloadResult> {
  const { job, href, partial, metaPath, tracker } = a;
  const { http, signal } = job;
  let expected = expectedDigestOf(job);
  let meta: PartialMeta | undefined;
  if ((job.resume ?? true) && allowResume && await exists(partial)) {
    meta = await readMeta(metaPath);
    if (!canResume(meta, href, expected)) meta = undefined;
  }
  if (!meta) await removeQuietly(partial, metaPath);

  const parallelWanted = Math.max(1, Math.min(job.parallel ?? MAX_STREAMS, 64));
  const threshold = job.parallelThreshold ?? PARALLEL_THRESHOLD;
  if (meta?.parts && meta.size !== undefined) {
    return await parallelDownload(a, meta, parallelWanted);
  }

  let offset = meta ? (await Deno.stat(partial)).size : 0;
  const resumedFrom = offset;
  using file = await Deno.open(partial, { create: true, write: true, read: false });
  await file.truncate(offset);
  await file.seek(offset, Deno.SeekMode.Start);
  await using background = await startBackgroundSync(partial);
  // Made once the size is known (it decides whether hashing gets a worker), and then covering
  // everything on disk: the kept prefix first, then each piece as it is written.
  let hasher: Hasher | undefined;
  let writer: HashingWriter | undefined;
  const startHashing = async (): Promise<[Hasher, HashingWriter]> => {
    if (hasher && writer) return [hasher, writer];
    hasher = await createHasher({ sizeHint: total, debug: (m) => http.log.debug(m) });
    if (offset > 0 && await hashFileInto(hasher, partial, offset) !== offset) {
      throw new RestartSignal(`The partial file of ${href} changed while it was read`);
    }
    writer = await createHashingWriter(file, {
      hasher,
      onWrite: (n) => {
        offset += n;
        background.wrote(n);
      },
    });
    return [hasher, writer];
  };
  let total: number | undefined = job.expectedSize;
  const { budget } = a;
  // The furthest the file got: only bytes past it are progress (a fresh start covers old ground).
  let furthest = offset;
  let etag = meta?.etag, lastModified = meta?.lastModified;
  if (meta?.size !== undefined) tracker.setTotal(meta.size);
  tracker.at(offset);
  /** Drop what is on disk and its hash: the next bytes come from the start of the object. */
  const startOver = async () => {
    offset = 0;
    hasher?.reset();
    await file.truncate(0);
    await file.seek(0, Deno.SeekMode.Start);
    tracker.restart();
  };
  try {
    for (;;) {
      const headers = new Headers(job.headers);
      if (offset > 0) {
        headers.set("range", `bytes=${offset}-`);
        const v = meta ? ifRange(meta) : undefined;
        if (v) headers.set("if-range", v);
      }
      let res: Response;
      budget.attempt();
      try {
        res = await http.request(href, {
          headers,
          signal,
          auth: job.auth,
          accept: (s) => s === 200 || s === 206 || s === 416,
        });
      } catch (e) {
        throw toInterrupted(signal, e);
      }
      if (res.status === 416) {
        await res.body?.cancel();
        const t = unsatisfiedTotal(res.headers.get("content-range"));
        if (offset > 0 && t === offset) {
          total = t;
          break;
        }
        throw new RestartSignal(`The server refused to resume at byte ${offset}`);
      }
      if (res.status === 206) {
        const cr = parseContentRange(res.headers.get("content-range"));
        if (!cr || cr.start !== offset) {
          await res.body?.cancel();
          throw new RestartSignal(
            `The server sent an unexpected range (${res.headers.get("content-range")})`,
          );
        }
        total = cr.total ?? total;
      } else {
        if (offset > 0) {
          http.log.verbose(
            `The remote file changed or the server ignores ranges: starting ${href} over`,
          );
          await startOver();
        }
        total = contentLength(res) ?? total;
      }
      if (!job.expectedDigest && (job.serverDigest ?? true)) {
        expected = announcedDigest(res.headers) ?? expected;
      }
      etag = res.headers.get("etag") ?? undefined;
      lastModified = res.headers.get("last-modified") ?? undefined;
      if (job.expectedSize !== undefined && total !== undefined && total !== job.expectedSize) {
        await res.body?.cancel();
        await removeQuietly(partial, metaPath);
        throw new IntegrityError(
          `Size mismatch for ${href}: the server offers ${total} bytes, expected ${job.expectedSize}; nothing was kept`,
        );
      }
      tracker.setTotal(total);
      a.total = total;
      meta = { version: 1, url: href, etag, lastModified, digest: expected, size: total };
      writeMeta(metaPath, meta);

      const acceptRanges = res.status === 206 ||
        /bytes/i.test(res.headers.get("accept-ranges") ?? "");
      if (
        offset === 0 && res.status === 200 && total !== undefined && total >= threshold &&
        parallelWanted > 1 && acceptRanges && (etag || lastModified || expected)
      ) {
        await res.body?.cancel();
        meta.parts = splitParts(total, job.partSize);
        writeMeta(metaPath, meta);
        file.close();
        return await parallelDownload(a, meta, parallelWanted);
      }
      if (!res.body) break;
      const before = offset;
      const [, out] = await startHashing().catch(async (e) => {
        await res.body?.cancel();
        throw e;
      });
      try {
        await pump(res.body, http.stallTimeoutMs, Infinity, out, (n) => tracker.add(n), signal);
        if (total === undefined || offset >= total) break;
        throw new NetworkError(`The connection closed at byte ${offset} of ${total}`);
      } catch (e) {
        const err = toInterrupted(signal, e);
        if (err !== e || !(e instanceof NetworkError || e instanceof TypeError)) throw err;
        const gained = Math.max(0, offset - Math.max(before, furthest));
        furthest = Math.max(furthest, offset);
        if (!budget.failed(gained)) {
          const resumable = acceptRanges && Boolean(etag || lastModified);
          throw new NetworkError(
            `Download of ${href} failed after ${budget.attempts} attempts, at byte ${offset}${
              total ? ` of ${total}` : ""
            }: ${(e as Error).message}; ${
              resumable
                ? "run the command again to resume"
                : "the server cannot resume, so each attempt started over; try again later"
            }`,
          );
        }
        http.log.debug(
          `Body of ${href} broke at byte ${offset} (${(e as Error).message}); resuming`,
        );
        if (!acceptRanges && !etag && !lastModified) {
          // No way to resume safely: start over rather than stitch unrelated bytes.
          await startOver();
        } else {
          // What counts is what reached the file: the next request starts there.
          tracker.at(offset);
        }
        await http.backoff(Math.max(1, budget.spent), undefined, signal).catch((x) => {
          throw toInterrupted(signal, x);
        });
      }
    }
    const [h] = await startHashing();
    await background.settle();
    const digest = await h.digest();
    await finish({
      file,
      partial,
      metaPath,
      dest: job.dest,
      href,
      size: offset,
      total,
      expectedSize: job.expectedSize,
      digest,
      expected,
    });
    return {
      path: job.dest,
      size: offset,
      digest,
      resumedFrom,
      url: href,
      etag,
      lastModified,
      streams: 1,
    };
  } finally {
    hasher?.[Symbol.dispose]();
  }
}
