/**
 * Every byte sregistry moves goes through here.
 *
 * Downloads stream to `<dest>.partial`, hash with `node:crypto` while writing, verify size and digest,
 * fsync and rename, so a final name never holds a partial or corrupt file. The validator (ETag,
 * Last-Modified, expected digest) and, for parallel downloads, each part's progress are saved in
 * `<dest>.partial.json`; the next run (after Ctrl-C, kill -9 or a dropped connection) continues with a
 * Range request when the validator still matches, and starts over otherwise.
 *
 * Uploads stream from the file; chunked (OCI PATCH) and multipart (S3) helpers read one part at a time
 * so memory stays bounded by the part size times the concurrency.
 * @module
 */

import { createHash } from "node:crypto";
import { dirname } from "node:path";
import { createHashingWriter, type HashingWriter } from "./hashing_writer.ts";
import { IntegrityError, InterruptedError, NetworkError, SregistryError } from "./errors.ts";
import type { Authorizer } from "./auth/types.ts";
import type { Http } from "./http.ts";
import { startBackgroundSync } from "./background_sync.ts";
import { createHasher, type Hasher, hashFileInto, hashFrom } from "./hasher.ts";
import { pool } from "./pool.ts";
import { type Bar, createProgress, type Progress } from "./progress.ts";

/** Options of {@link download}. */
export interface DownloadOptions {
  /** Extra request headers. */
  headers?: HeadersInit;
  /** `sha256:<hex>`; a mismatch is an IntegrityError (exit 6) and leaves no final file. */
  expectedDigest?: string;
  /** A mismatch is an IntegrityError. */
  expectedSize?: number;
  /** Continue from `<dest>.partial` when its saved validator still matches (default true). */
  resume?: boolean;
  /** Ranged streams for large objects when the server supports ranges (default: 1 below
   * {@link PARALLEL_THRESHOLD}, else SREGISTRY_WORKERS capped at {@link MAX_STREAMS}). */
  parallel?: number;
  /** Objects at least this large are fetched in parallel ranges (default {@link PARALLEL_THRESHOLD}). */
  parallelThreshold?: number;
  /** Size of each ranged part (default: {@link PART_SIZE} or 1/256 of the object if larger). */
  partSize?: number;
  /** Draw a bar on stderr (callers pass ctx.progress). */
  progress?: boolean;
  /** Bar label. */
  label?: string;
  /** Cancels the download (the partial file is kept for a later resume). */
  signal?: AbortSignal;
  /** Credentials for every request of the download (each part and retry is authorized afresh). */
  auth?: Authorizer;
  /** Verify against a sha-256 the server announces (Repr-Digest, Digest, X-Checksum-Sha256) when no
   * expectedDigest is given (default true). */
  serverDigest?: boolean;
  /** Called with the number of bytes written so far (tests and callers that report progress). */
  onProgress?: (bytes: number, total: number | undefined) => void;
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

/** The smallest part of a parallel download (the larger of this and 1/256 of the object). */
export const PART_SIZE = 16 * 1024 * 1024;

/**
 * Many parts, fetched in order by a few streams: the bytes on disk then grow from the front almost
 * as a single stream's would, so the hash can follow the download instead of reading the whole file
 * again at the end, and a slow connection holds up one small part, not a quarter of the file.
 */
function splitParts(total: number, partSize?: number): Part[] {
  const size = Math.max(1, partSize ?? Math.max(PART_SIZE, Math.ceil(total / 256)));
  return Array.from({ length: Math.ceil(total / size) }, (_, i) => {
    const start = i * size;
    return { start, end: Math.min(total, start + size), pos: start };
  });
}

/** Objects at least this large may be fetched with parallel ranged streams. */
export const PARALLEL_THRESHOLD = 256 * 1024 * 1024;
/** The most parallel ranged streams per object (peers use 3 to 8). */
export const MAX_STREAMS = 4;
/**
 * The body is read into this landing buffer (a BYOB read, about a third cheaper than the default
 * reader's fresh chunks), written to the file at once and copied into the hasher's buffer. Reading
 * straight into the hasher's buffer would save the copy, but a read that fails or is cancelled takes
 * its buffer with it, and with it every byte not yet hashed: the file and the digest would part.
 */
const LANDING = 1024 * 1024;

interface Part {
  start: number;
  end: number;
  pos: number;
}

interface PartialMeta {
  version: 1;
  url: string;
  etag?: string;
  lastModified?: string;
  digest?: string;
  size?: number;
  parts?: Part[];
}

/** The validator the server gave, to send back in If-Range (weak ETags cannot be used). */
function ifRange(meta: PartialMeta): string | undefined {
  if (meta.etag && !meta.etag.startsWith("W/")) return meta.etag;
  return meta.lastModified;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function removeQuietly(...paths: string[]) {
  for (const p of paths) await Deno.remove(p).catch(() => {});
}

async function readMeta(path: string): Promise<PartialMeta | undefined> {
  try {
    const m = JSON.parse(await Deno.readTextFile(path));
    return m && m.version === 1 && typeof m.url === "string" ? m as PartialMeta : undefined;
  } catch {
    return undefined;
  }
}

function writeMeta(path: string, meta: PartialMeta) {
  // Written via a temp file and rename so a kill mid-write never leaves half a JSON document.
  const tmp = `${path}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(meta));
  Deno.renameSync(tmp, path);
}

function parseContentRange(
  v: string | null,
): { start: number; end: number; total?: number } | undefined {
  const m = v?.match(/^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i);
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

function unsatisfiedTotal(v: string | null): number | undefined {
  const m = v?.match(/^bytes\s+\*\/(\d+)$/i);
  return m ? Number(m[1]) : undefined;
}

/** The sha-256 a server announces for the whole representation, as `sha256:<hex>`, if any. */
export function announcedDigest(headers: Headers): string | undefined {
  for (const name of ["repr-digest", "digest"]) {
    const m = headers.get(name)?.match(/sha-?256=:?([A-Za-z0-9+/=]+):?/i);
    if (m) {
      try {
        const bytes = Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0));
        if (bytes.length === 32) {
          return `sha256:${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
        }
      } catch { /* not base64: ignore the header */ }
    }
  }
  const x = headers.get("x-checksum-sha256")?.trim().toLowerCase();
  return x && /^[0-9a-f]{64}$/.test(x) ? `sha256:${x}` : undefined;
}

function contentLength(res: Response): number | undefined {
  const v = res.headers.get("content-length");
  return v && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** Fill `buf` from the file's current position; a short read means the file shrank under us. */
function readExactly(f: Deno.FsFile, buf: Uint8Array, file: string): void {
  for (let got = 0; got < buf.length;) {
    const n = f.readSync(buf.subarray(got));
    if (n === null) {
      throw new IntegrityError(`The file "${file}" shrank while it was being uploaded`);
    }
    got += n;
  }
}

/** Why a ranged attempt must start over from zero. */
class RestartSignal extends Error {}

/**
 * Read at most `limit` bytes of a body into `writer`, calling `onBytes` as they arrive, and flush it:
 * whatever arrived is on disk when this returns or throws. A stream that yields nothing for
 * `stallMs` is cancelled and reported as a NetworkError, which callers retry.
 */
async function pump(
  body: ReadableStream<Uint8Array>,
  stallMs: number,
  limit: number,
  writer: HashingWriter,
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<number> {
  let byob: ReadableStreamBYOBReader | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream (the NOVERIFY path's node:https body): chunks come from the default reader.
    reader = body.getReader();
  }
  let landing = new ArrayBuffer(byob ? LANDING : 0);
  let total = 0;
  const next = async (): Promise<Uint8Array | undefined> => {
    if (byob) {
      const view = new Uint8Array(landing, 0, Math.min(LANDING, limit - total));
      const { done, value } = await byob.read(view);
      if (value) landing = value.buffer as ArrayBuffer;
      return done ? undefined : value;
    }
    const { done, value } = await reader!.read();
    return done ? undefined : value.subarray(0, limit - total);
  };
  const cancel = () => (byob ?? reader)!.cancel().catch(() => {});
  let last = Date.now();
  let stalled = false;
  const timer = setInterval(() => {
    if (Date.now() - last > stallMs) {
      stalled = true;
      cancel();
    }
  }, Math.max(50, Math.min(1000, stallMs / 4)));
  signal?.addEventListener("abort", cancel, { once: true });
  try {
    while (total < limit) {
      const chunk = await next();
      if (!chunk) break;
      last = Date.now();
      total += chunk.length;
      await writer.write(chunk);
      onBytes(chunk.length);
      if (stalled) break;
    }
    await writer.flush();
    if (signal?.aborted) throw signal.reason;
    if (stalled) throw new NetworkError(`The transfer stalled: no data for ${stallMs / 1000} s`);
    return total;
  } catch (e) {
    // Keep what arrived: it is valid data and the resume starts after it.
    await writer.flush().catch(() => {});
    if (signal?.aborted) throw signal.reason;
    if (stalled) throw new NetworkError(`The transfer stalled: no data for ${stallMs / 1000} s`);
    throw e;
  } finally {
    clearInterval(timer);
    signal?.removeEventListener("abort", cancel);
    if (total >= limit) await cancel();
    (byob ?? reader)!.releaseLock();
  }
}

function toInterrupted(signal: AbortSignal | undefined, e: unknown): unknown {
  if (signal?.aborted) {
    return signal.reason instanceof SregistryError
      ? signal.reason
      : new InterruptedError("Interrupted");
  }
  return e;
}

/**
 * Download `url` to `dest` through `<dest>.partial`, verifying size and digest.
 * @throws {IntegrityError} on a size or digest mismatch (no final file is left).
 * @throws {NetworkError} when the retries are used up (the partial file is kept for a resume).
 * @throws {InterruptedError} when `signal` aborts (the partial file is kept).
 */
export async function download(
  http: Http,
  url: string | URL,
  dest: string,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const href = String(url);
  const partial = `${dest}.partial`;
  const metaPath = `${partial}.json`;
  const signal = options.signal;
  await Deno.mkdir(dirname(dest), { recursive: true });
  const progress = createProgress({
    sink: http.log.sink,
    enabled: options.progress ?? false,
    label: options.label ?? dest.split("/").at(-1) ?? "download",
    total: options.expectedSize,
  });
  try {
    try {
      return await downloadOnce(http, href, dest, partial, metaPath, options, progress, true);
    } catch (e) {
      if (!(e instanceof RestartSignal)) throw e;
      http.log.verbose(`${e.message}; starting over`);
      await removeQuietly(partial, metaPath);
      return await downloadOnce(http, href, dest, partial, metaPath, options, progress, false);
    }
  } catch (e) {
    // Nothing arrived (refused, not found, no such host): there is nothing to resume either.
    if ((await Deno.stat(partial).catch(() => undefined))?.size === 0) {
      await removeQuietly(partial, metaPath);
    }
    throw toInterrupted(signal, e);
  } finally {
    progress.done();
  }
}

async function downloadOnce(
  http: Http,
  href: string,
  dest: string,
  partial: string,
  metaPath: string,
  options: DownloadOptions,
  progress: Progress,
  allowResume: boolean,
): Promise<DownloadResult> {
  const signal = options.signal;
  let expected = options.expectedDigest?.toLowerCase();
  if (expected && !/^sha256:[0-9a-f]{64}$/.test(expected)) {
    throw new IntegrityError(
      `Cannot verify against digest "${options.expectedDigest}": only sha256:<64 hex> is supported`,
    );
  }
  let meta: PartialMeta | undefined;
  if ((options.resume ?? true) && allowResume && await exists(partial)) {
    meta = await readMeta(metaPath);
    const usable = meta &&
      (expected
        ? meta.digest === expected || (!meta.digest && meta.url === href)
        : meta.url === href) &&
      (ifRange(meta) || meta.digest);
    if (!usable) meta = undefined;
  }
  if (!meta) await removeQuietly(partial, metaPath);

  const parallelWanted = Math.max(1, Math.min(options.parallel ?? MAX_STREAMS, 64));
  const threshold = options.parallelThreshold ?? PARALLEL_THRESHOLD;
  const inParts = (m: PartialMeta) =>
    parallelDownload(http, href, dest, partial, metaPath, m, options, progress, parallelWanted);
  if (meta?.parts && meta.size !== undefined) return await inParts(meta);

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
  let total: number | undefined = options.expectedSize;
  let failures = 0;
  let etag = meta?.etag, lastModified = meta?.lastModified;
  const bar = progress.total;
  bar.set(offset);
  /** Drop what is on disk and its hash: the next bytes come from the start of the object. */
  const startOver = async () => {
    offset = 0;
    hasher?.reset();
    await file.truncate(0);
    await file.seek(0, Deno.SeekMode.Start);
    bar.set(0);
  };
  try {
    for (;;) {
      const headers = new Headers(options.headers);
      if (offset > 0) {
        headers.set("range", `bytes=${offset}-`);
        const v = meta ? ifRange(meta) : undefined;
        if (v) headers.set("if-range", v);
      }
      let res: Response;
      try {
        res = await http.request(href, {
          headers,
          signal,
          auth: options.auth,
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
      if (!options.expectedDigest && (options.serverDigest ?? true)) {
        expected = announcedDigest(res.headers) ?? expected;
      }
      etag = res.headers.get("etag") ?? undefined;
      lastModified = res.headers.get("last-modified") ?? undefined;
      if (
        options.expectedSize !== undefined && total !== undefined && total !== options.expectedSize
      ) {
        await res.body?.cancel();
        await removeQuietly(partial, metaPath);
        throw new IntegrityError(
          `Size mismatch for ${href}: the server offers ${total} bytes, expected ${options.expectedSize}; nothing was kept`,
        );
      }
      bar.setTotal(total);
      meta = { version: 1, url: href, etag, lastModified, digest: expected, size: total };
      writeMeta(metaPath, meta);

      const acceptRanges = res.status === 206 ||
        /bytes/i.test(res.headers.get("accept-ranges") ?? "");
      if (
        offset === 0 && res.status === 200 && total !== undefined && total >= threshold &&
        parallelWanted > 1 && acceptRanges && (etag || lastModified || expected)
      ) {
        await res.body?.cancel();
        meta.parts = splitParts(total, options.partSize);
        writeMeta(metaPath, meta);
        file.close();
        return await inParts(meta);
      }
      if (!res.body) break;
      const before = offset;
      const [, out] = await startHashing().catch(async (e) => {
        await res.body?.cancel();
        throw e;
      });
      let received = offset;
      try {
        await pump(res.body, http.stallTimeoutMs, Infinity, out, (n) => {
          received += n;
          bar.add(n);
          options.onProgress?.(received, total);
        }, signal);
        if (total === undefined || offset >= total) break;
        throw new NetworkError(`The connection closed at byte ${offset} of ${total}`);
      } catch (e) {
        const err = toInterrupted(signal, e);
        if (err !== e || !(e instanceof NetworkError || e instanceof TypeError)) throw err;
        failures = offset > before ? 1 : failures + 1;
        if (failures > http.retries) {
          throw new NetworkError(
            `Download of ${href} failed at byte ${offset}${total ? ` of ${total}` : ""}: ${
              (e as Error).message
            }; run the command again to resume`,
          );
        }
        http.log.debug(
          `Body of ${href} broke at byte ${offset} (${(e as Error).message}); resuming`,
        );
        if (!acceptRanges && !etag && !lastModified) {
          // No way to resume safely: start over rather than stitch unrelated bytes.
          await startOver();
        }
        await http.backoff(failures, undefined, signal).catch((x) => {
          throw toInterrupted(signal, x);
        });
      }
    }
    const [h] = await startHashing();
    await background.settle();
    const digest = await h.digest();
    await finish(file, partial, metaPath, dest, href, offset, total, options, digest, expected);
    return {
      path: dest,
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

async function finish(
  file: Deno.FsFile | undefined,
  partial: string,
  metaPath: string,
  dest: string,
  href: string,
  size: number,
  total: number | undefined,
  options: DownloadOptions,
  digest: string,
  expected: string | undefined,
) {
  const fail = async (msg: string) => {
    file?.close();
    await removeQuietly(partial, metaPath);
    throw new IntegrityError(msg);
  };
  if (total !== undefined && size !== total) {
    await fail(
      `Size mismatch for ${href}: received ${size} bytes, the server announced ${total}; nothing was kept, try again`,
    );
  }
  if (options.expectedSize !== undefined && size !== options.expectedSize) {
    await fail(
      `Size mismatch for ${href}: received ${size} bytes, expected ${options.expectedSize}; nothing was kept`,
    );
  }
  if (expected && digest !== expected) {
    await fail(
      `Digest mismatch for ${href}: expected ${expected}, got ${digest}; nothing was kept, try again`,
    );
  }
  if (file) {
    await file.sync();
    file.close();
  } else {
    using f = await Deno.open(partial, { read: true, write: true });
    await f.sync();
  }
  await Deno.rename(partial, dest);
  await removeQuietly(metaPath);
}

async function parallelDownload(
  http: Http,
  href: string,
  dest: string,
  partial: string,
  metaPath: string,
  meta: PartialMeta,
  options: DownloadOptions,
  progress: Progress,
  streams: number,
): Promise<DownloadResult> {
  const signal = options.signal;
  const total = meta.size!;
  const parts = meta.parts!;
  const resumedFrom = parts.reduce((a, p) => a + (p.pos - p.start), 0);
  {
    using f = await Deno.open(partial, { create: true, write: true });
    // A sparse file of the final size: each stream writes its own range in place.
    if ((await f.stat()).size !== total) await f.truncate(total);
  }
  await using background = await startBackgroundSync(partial);
  progress.total.setTotal(total);
  progress.total.set(resumedFrom);
  let done = resumedFrom;
  const saver = setInterval(() => {
    try {
      writeMeta(metaPath, meta);
    } catch { /* the next tick or the end writes it */ }
  }, 500);
  const validator = ifRange(meta);
  using hasher = await createHasher({ sizeHint: total, debug: (m) => http.log.debug(m) });
  const grew = createTicker();
  const stopFollowing = new AbortController();
  const followed = followHash(partial, parts, hasher, grew, stopFollowing.signal);
  followed.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
  try {
    await pool(parts, streams, async (part, i, poolSignal) => {
      if (part.pos >= part.end) return;
      const bar: Bar & { done(): void } = progress.stream(
        `part ${i + 1}/${parts.length}`,
        part.end - part.start,
      );
      bar.set(part.pos - part.start);
      using f = await Deno.open(partial, { write: true });
      // The saved resume point is what reached the file, not what arrived.
      const writer = await createHashingWriter(f, {
        onWrite: (n) => {
          part.pos += n;
          background.wrote(n);
          grew.tick();
        },
      });
      let failures = 0;
      try {
        while (part.pos < part.end) {
          const headers = new Headers(options.headers);
          headers.set("range", `bytes=${part.pos}-${part.end - 1}`);
          if (validator) headers.set("if-range", validator);
          const res = await http.request(href, {
            headers,
            signal: poolSignal,
            auth: options.auth,
          });
          const cr = parseContentRange(res.headers.get("content-range"));
          if (res.status !== 206 || !cr || cr.start !== part.pos || (cr.total ?? total) !== total) {
            await res.body?.cancel();
            throw new RestartSignal(
              `The remote object changed during a ranged download of ${href}`,
            );
          }
          await f.seek(part.pos, Deno.SeekMode.Start);
          const before = part.pos;
          try {
            await pump(res.body!, http.stallTimeoutMs, part.end - part.pos, writer, (n) => {
              done += n;
              bar.add(n);
              options.onProgress?.(done, total);
            }, poolSignal);
            if (part.pos < part.end) {
              throw new NetworkError(`The connection closed at byte ${part.pos}`);
            }
          } catch (e) {
            if (poolSignal.aborted || !(e instanceof NetworkError || e instanceof TypeError)) {
              throw e;
            }
            failures = part.pos > before ? 1 : failures + 1;
            if (failures > http.retries) {
              throw new NetworkError(
                `Download of ${href} failed at byte ${part.pos}: ${
                  (e as Error).message
                }; run the command again to resume`,
              );
            }
            await http.backoff(failures, undefined, poolSignal);
          }
        }
      } finally {
        bar.done();
      }
    }, signal);
  } catch (e) {
    stopFollowing.abort();
    grew.tick();
    await followed.catch(() => {});
    throw toInterrupted(signal, e);
  } finally {
    clearInterval(saver);
    try {
      writeMeta(metaPath, meta);
    } catch { /* best effort */ }
  }
  const size = await followed;
  const digest = await hasher.digest();
  await finish(undefined, partial, metaPath, dest, href, size, total, options, digest, meta.digest);
  return {
    path: dest,
    size,
    digest,
    resumedFrom,
    url: href,
    etag: meta.etag,
    lastModified: meta.lastModified,
    streams: Math.min(streams, parts.length),
  };
}

/** Wakes the one waiter, if any, when something changed. */
function createTicker(): { tick(): void; wait(): Promise<void> } {
  let wake: (() => void) | undefined;
  return {
    tick() {
      const w = wake;
      wake = undefined;
      w?.();
    },
    wait: () => new Promise<void>((resolve) => wake = resolve),
  };
}

/** Where the bytes on disk stop being contiguous from the start of the file. */
function contiguousEnd(parts: readonly Part[]): number {
  for (const p of parts) if (p.pos < p.end) return p.pos;
  return parts.at(-1)?.end ?? 0;
}

/**
 * Hash a parallel download's file from the front as its contiguous prefix grows (parts are fetched
 * in order, so it grows steadily), reading back from the page cache. Returns the bytes hashed: the
 * whole file, unless `stop` ends it early.
 */
async function followHash(
  path: string,
  parts: readonly Part[],
  hasher: Hasher,
  grew: { wait(): Promise<void> },
  stop: AbortSignal,
): Promise<number> {
  using f = await Deno.open(path, { read: true });
  const total = parts.at(-1)?.end ?? 0;
  let hashed = 0;
  while (hashed < total) {
    const frontier = contiguousEnd(parts);
    if (frontier <= hashed) {
      if (stop.aborted) break;
      await grew.wait();
      continue;
    }
    if (await hashFrom(hasher, f, frontier - hashed) !== frontier - hashed) {
      throw new IntegrityError(`The file "${path}" shrank during the download`);
    }
    hashed = frontier;
  }
  return hashed;
}

/** Options of {@link upload} and the chunked helpers. */
export interface UploadOptions {
  /** HTTP method (default PUT). */
  method?: string;
  /** Extra request headers. */
  headers?: HeadersInit;
  /** Content-Type (default application/octet-stream). */
  contentType?: string;
  /** Draw a bar on stderr. */
  progress?: boolean;
  /** Bar label. */
  label?: string;
  /** Cancels the upload. */
  signal?: AbortSignal;
  /** Statuses the caller accepts (default 2xx). */
  accept?: (status: number) => boolean;
  /** Credentials for every request of the upload. */
  auth?: Authorizer;
}

/** A ReadableStream over a file region that reports progress; the file closes when it ends. */
function fileStream(
  path: string,
  start: number,
  length: number,
  bar: Bar,
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
      bar.add(n);
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
 * require a length use {@link uploadChunked} or {@link multipartUpload}, whose parts are buffers.
 */
export async function upload(
  http: Http,
  url: string | URL,
  file: string,
  options: UploadOptions = {},
): Promise<Response> {
  const size = (await Deno.stat(file)).size;
  const progress = createProgress({
    sink: http.log.sink,
    enabled: options.progress ?? false,
    label: options.label ?? file.split("/").at(-1) ?? "upload",
    total: size,
  });
  const headers = new Headers(options.headers);
  if (!headers.has("content-type")) {
    headers.set("content-type", options.contentType ?? "application/octet-stream");
  }
  try {
    return await http.request(url, {
      method: options.method ?? "PUT",
      headers,
      signal: options.signal,
      accept: options.accept,
      auth: options.auth,
      bodyFactory: () => {
        progress.total.set(0);
        return fileStream(file, 0, size, progress.total);
      },
    });
  } catch (e) {
    throw toInterrupted(options.signal, e);
  } finally {
    progress.done();
  }
}

/**
 * OCI-style chunked upload: PATCH `chunkSize` pieces with Content-Range to the session URL, following
 * the Location of each answer. The caller finishes with `PUT <location>?digest=<digest>`.
 */
export async function uploadChunked(
  http: Http,
  startUrl: string | URL,
  file: string,
  options: UploadOptions & { chunkSize: number },
): Promise<{ location: string; size: number; digest: string }> {
  const size = (await Deno.stat(file)).size;
  const progress = createProgress({
    sink: http.log.sink,
    enabled: options.progress ?? false,
    label: options.label ?? file.split("/").at(-1) ?? "upload",
    total: size,
  });
  const hash = createHash("sha256");
  let location = new URL(startUrl);
  try {
    using f = await Deno.open(file, { read: true });
    const chunkSize = Math.max(1, options.chunkSize);
    let offset = 0;
    while (offset < size) {
      const len = Math.min(chunkSize, size - offset);
      const buf = new Uint8Array(len);
      readExactly(f, buf, file);
      hash.update(buf);
      const headers = new Headers(options.headers);
      headers.set("content-type", options.contentType ?? "application/octet-stream");
      headers.set("content-range", `${offset}-${offset + len - 1}`);
      headers.set("content-length", String(len));
      const res = await http.request(location, {
        method: options.method ?? "PATCH",
        headers,
        body: buf,
        signal: options.signal,
        accept: options.accept,
        auth: options.auth,
      });
      await res.body?.cancel();
      const loc = res.headers.get("location");
      if (loc) location = new URL(loc, location);
      offset += len;
      progress.total.add(len);
    }
  } catch (e) {
    throw toInterrupted(options.signal, e);
  } finally {
    progress.done();
  }
  return { location: location.href, size, digest: `sha256:${hash.digest("hex")}` };
}

/**
 * Multipart upload helper (S3 style): splits the file into `partSize` parts and calls `uploadPart`
 * for each, `concurrency` at a time, fail-fast. Returns the parts' ETags in order.
 */
export async function multipartUpload(
  file: string,
  options: {
    partSize: number;
    concurrency: number;
    uploadPart: (
      part: { index: number; offset: number; size: number; body: Uint8Array },
    ) => Promise<string>;
    signal?: AbortSignal;
  },
): Promise<string[]> {
  const size = (await Deno.stat(file)).size;
  const partSize = Math.max(1, options.partSize);
  const count = Math.max(1, Math.ceil(size / partSize));
  const indexes = Array.from({ length: count }, (_, i) => i);
  return await pool(indexes, options.concurrency, async (index) => {
    const offset = index * partSize;
    const len = Math.min(partSize, size - offset);
    const body = new Uint8Array(len);
    {
      // One handle per part: parts are read concurrently at different offsets.
      using f = await Deno.open(file, { read: true });
      await f.seek(offset, Deno.SeekMode.Start);
      readExactly(f, body, file);
    }
    return await options.uploadPart({ index, offset, size: len, body });
  }, options.signal);
}
