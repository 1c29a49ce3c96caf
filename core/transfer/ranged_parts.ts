/**
 * Parallel download of a large object in ranged parts.
 *
 * Many parts, fetched in order by a few streams: the bytes on disk then grow from the front almost
 * as a single stream's would, so the hash can follow the download instead of reading the whole file
 * again at the end, and a slow connection holds up one small part, not a quarter of the file. Each
 * part's progress (bytes written, not received) is saved in `<dest>.partial.json`, so a killed
 * download resumes per part.
 * @module
 */

import { IntegrityError, NetworkError } from "../errors.ts";
import { startBackgroundSync } from "../background_sync.ts";
import { createHasher, type Hasher, hashFrom } from "../hasher.ts";
import { createHashingWriter } from "../hashing_writer.ts";
import { pool } from "../pool.ts";
import { NO_PROGRESS } from "../progress_events.ts";
import { finish } from "./_finish.ts";
import { track } from "./_progress.ts";
import { pump } from "./_pump.ts";
import { RestartSignal, toInterrupted } from "./_util.ts";
import type { Attempt, DownloadResult } from "./download.ts";
import { parseContentRange } from "./headers.ts";
import { ifRange, type Part, type PartialMeta, writeMeta } from "./resume_state.ts";

/** The smallest part of a parallel download (the larger of this and 1/256 of the object). */
export const PART_SIZE = 16 * 1024 * 1024;
/** Objects at least this large may be fetched with parallel ranged streams. */
export const PARALLEL_THRESHOLD = 256 * 1024 * 1024;
/** The most parallel ranged streams per object (peers use 3 to 8). */
export const MAX_STREAMS = 4;

/** Cut `total` bytes into parts of `partSize` (default: {@link PART_SIZE} or 1/256 of the object). */
export function splitParts(total: number, partSize?: number): Part[] {
  const size = Math.max(1, partSize ?? Math.max(PART_SIZE, Math.ceil(total / 256)));
  return Array.from({ length: Math.ceil(total / size) }, (_, i) => {
    const start = i * size;
    return { start, end: Math.min(total, start + size), pos: start };
  });
}

/** Fetch the parts of `meta` with `streams` ranged requests at a time, then verify and rename. */
export async function parallelDownload(
  a: Attempt,
  meta: PartialMeta,
  streams: number,
): Promise<DownloadResult> {
  const { job, href, partial, metaPath, tracker, budget } = a;
  const { http, signal } = job;
  const total = meta.size!;
  a.total = total;
  const parts = meta.parts!;
  const resumedFrom = parts.reduce((n, p) => n + (p.pos - p.start), 0);
  {
    using f = await Deno.open(partial, { create: true, write: true });
    // A sparse file of the final size: each stream writes its own range in place.
    if ((await f.stat()).size !== total) await f.truncate(total);
  }
  await using background = await startBackgroundSync(partial);
  tracker.setTotal(total);
  tracker.at(resumedFrom);
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
      const bar = track(
        job.progress ?? NO_PROGRESS,
        `part ${i + 1}/${parts.length}`,
        part.end - part.start,
        tracker.id,
      );
      bar.at(part.pos - part.start);
      using f = await Deno.open(partial, { write: true });
      // The saved resume point is what reached the file, not what arrived.
      const writer = await createHashingWriter(f, {
        onWrite: (n) => {
          part.pos += n;
          background.wrote(n);
          grew.tick();
        },
      });
      try {
        while (part.pos < part.end) {
          const headers = new Headers(job.headers);
          headers.set("range", `bytes=${part.pos}-${part.end - 1}`);
          if (validator) headers.set("if-range", validator);
          budget.attempt();
          const res = await http.request(href, {
            headers,
            signal: poolSignal,
            auth: job.auth,
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
            await pump(
              res.body!,
              http.stallTimeoutMs,
              part.end - part.pos,
              writer,
              (n) => bar.add(n),
              poolSignal,
            );
            if (part.pos < part.end) {
              throw new NetworkError(`The connection closed at byte ${part.pos}`);
            }
          } catch (e) {
            if (poolSignal.aborted || !(e instanceof NetworkError || e instanceof TypeError)) {
              throw e;
            }
            // A part never starts over, so everything it moved is new ground.
            if (!budget.failed(part.pos - before)) {
              throw new NetworkError(
                `Download of ${href} failed after ${budget.attempts} attempts, at byte ${part.pos}: ${
                  (e as Error).message
                }; run the command again to resume`,
              );
            }
            // The retry starts at what reached the file; a part's position moves its parent too.
            bar.at(part.pos - part.start);
            await http.backoff(Math.max(1, budget.spent), undefined, poolSignal);
          }
        }
      } finally {
        bar.end();
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
  await finish({
    partial,
    metaPath,
    dest: job.dest,
    href,
    size,
    total,
    expectedSize: job.expectedSize,
    digest,
    expected: meta.digest,
  });
  return {
    path: job.dest,
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
