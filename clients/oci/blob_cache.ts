/**
 * A content-addressed blob cache (`<root>/sha256/<hex>`) shared by every pull. Only verified blobs
 * are ever named by their digest (the transfer engine downloads to `.partial` and renames after the
 * digest check), so a file present is a file correct.
 *
 * Two processes pulling the same blob cooperate through a lock file next to it (created with
 * O_EXCL): one downloads, the others wait and reuse. The holder touches the lock every few seconds,
 * and a lock not touched for `staleMs` is taken over (a crashed holder), which also resumes its
 * `.partial`.
 * @module
 */

import { join } from "node:path";
import { UsageError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { sleep } from "../../core/sleep.ts";

/** Options of {@link openBlobCache}. */
export interface BlobCacheOptions {
  /** Logger for waits and takeovers. */
  log?: Logger;
  /** A lock untouched this long is stale (default 30 s). */
  staleMs?: number;
  /** How often a waiter looks again (default 100 ms). */
  pollMs?: number;
  /** How often the holder touches its lock (default 2 s). */
  heartbeatMs?: number;
}

/** The outcome of {@link BlobCache.ensure}. */
export interface EnsureResult {
  /** The blob's path. */
  path: string;
  /** `hit`: already there; `waited`: another process fetched it; `fetched`: this one did. */
  source: "hit" | "waited" | "fetched";
}

/** The cache. */
export interface BlobCache {
  /** The root folder. */
  readonly root: string;
  /** Where a digest's blob lives (whether present or not). */
  path(digest: string): string;
  /** Whether a blob is present (with the given size, when known). */
  has(digest: string, size?: number): boolean;
  /**
   * Make sure a blob is present: return it, wait for a peer fetching it, or call `fetch(dest)`, which
   * must leave a verified file at `dest`.
   */
  ensure(
    digest: string,
    size: number | undefined,
    fetch: (dest: string) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<EnsureResult>;
}

const DIGEST = /^sha256:([a-f0-9]{64})$/;

/** Open (and create) a blob cache under `root`. */
export function openBlobCache(root: string, options: BlobCacheOptions = {}): BlobCache {
  const staleMs = options.staleMs ?? 30_000;
  const pollMs = options.pollMs ?? 100;
  const heartbeatMs = options.heartbeatMs ?? 2_000;
  const dir = join(root, "sha256");

  const path = (digest: string) => {
    const m = DIGEST.exec(digest);
    if (!m) throw new UsageError(`Digest ${JSON.stringify(digest)} is not sha256:<64 hex digits>`);
    return join(dir, m[1]);
  };
  const has = (digest: string, size?: number) => {
    try {
      const st = Deno.statSync(path(digest));
      return st.isFile && (size === undefined || size < 0 || st.size === size);
    } catch {
      return false;
    }
  };

  return {
    root,
    path,
    has,
    async ensure(digest, size, fetch, signal) {
      const dest = path(digest);
      const lock = `${dest}.lock`;
      let waited = false;
      await Deno.mkdir(dir, { recursive: true });
      for (;;) {
        if (has(digest, size)) return { path: dest, source: waited ? "waited" : "hit" };
        let file: Deno.FsFile | undefined;
        try {
          file = await Deno.open(lock, { write: true, createNew: true, mode: 0o644 });
        } catch (e) {
          if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        }
        if (file) {
          try {
            await file.write(
              new TextEncoder().encode(
                JSON.stringify({ pid: Deno.pid, time: new Date().toISOString() }) + "\n",
              ),
            );
          } finally {
            file.close();
          }
          const beat = setInterval(() => {
            const now = new Date();
            Deno.utime(lock, now, now).catch(() => {});
          }, heartbeatMs);
          try {
            // A peer may have finished between our check and our lock.
            if (!has(digest, size)) await fetch(dest);
          } finally {
            clearInterval(beat);
            await Deno.remove(lock).catch(() => {});
          }
          return { path: dest, source: "fetched" };
        }
        if (!waited) options.log?.verbose(`Waiting for another process downloading ${digest}`);
        waited = true;
        for (;;) {
          await sleep(pollMs, signal);
          if (has(digest, size)) return { path: dest, source: "waited" };
          let st: Deno.FileInfo;
          try {
            st = await Deno.stat(lock);
          } catch {
            break; // the holder finished (or failed): look again
          }
          const age = Date.now() - (st.mtime?.getTime() ?? 0);
          if (age > staleMs) {
            options.log?.warning(
              `Lock ${lock} is stale (untouched for ${Math.round(age / 1000)} s); taking over`,
            );
            await Deno.remove(lock).catch(() => {});
            break;
          }
        }
      }
    },
  };
}

/** One file in the cache folder, as {@link listBlobCache} sees it. */
export interface CacheEntry {
  /** Absolute path. */
  path: string;
  /**
   * `blob`: a complete, verified blob; `partial`: an unfinished download, its resume state or a
   * temp file; `lock`: a download in progress (or a crashed one).
   */
  kind: "blob" | "partial" | "lock";
  /** The blob's digest (`sha256:<hex>`), for blobs, partials and locks of a blob. */
  digest?: string;
  /** Size in bytes. */
  size: number;
  /** Last modification. */
  mtime: Date;
}

/** Every file in the cache under `root` (none when the folder does not exist). */
export async function listBlobCache(root: string): Promise<CacheEntry[]> {
  const dir = join(root, "sha256");
  const out: CacheEntry[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return out;
    throw e;
  }
  for (const e of entries) {
    if (!e.isFile) continue;
    const path = join(dir, e.name);
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(path);
    } catch {
      continue; // removed meanwhile
    }
    const hex = e.name.match(/^[a-f0-9]{64}/)?.[0];
    const kind = /^[a-f0-9]{64}$/.test(e.name)
      ? "blob"
      : e.name.endsWith(".lock")
      ? "lock"
      : "partial";
    out.push({
      path,
      kind,
      digest: hex ? `sha256:${hex}` : undefined,
      size: st.size,
      mtime: st.mtime ?? new Date(0),
    });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** Options of {@link pruneBlobCache}. */
export interface PruneOptions {
  /** Say what would go, remove nothing. */
  dryRun?: boolean;
  /** Now (tests inject a clock). */
  now?: Date;
  /**
   * Complete blobs untouched this long go (default 10 minutes). Stored OCI archives and SIFs carry
   * their own copy of every blob, so once a pull has finished nothing needs them; the delay only
   * spares a pull that is writing its archive right now.
   */
  blobAgeMs?: number;
  /** Unfinished downloads and stale locks untouched this long go (default one day). */
  partialAgeMs?: number;
  /** Blobs to keep whatever their age. */
  keep?: ReadonlySet<string>;
}

/** Remove what {@link PruneOptions} says may go; returns the entries removed (or to remove). */
export async function pruneBlobCache(
  root: string,
  options: PruneOptions = {},
): Promise<CacheEntry[]> {
  const now = (options.now ?? new Date()).getTime();
  const blobAge = options.blobAgeMs ?? 10 * 60_000;
  const partialAge = options.partialAgeMs ?? 24 * 3600_000;
  const entries = await listBlobCache(root);
  const locked = new Set(
    entries.filter((e) => e.kind === "lock" && now - e.mtime.getTime() <= partialAge)
      .map((e) => e.digest),
  );
  const gone = entries.filter((e) => {
    const age = now - e.mtime.getTime();
    if (e.kind === "blob") {
      return age > blobAge && !locked.has(e.digest) && !options.keep?.has(e.digest!);
    }
    return age > partialAge;
  });
  if (!options.dryRun) {
    for (const e of gone) await Deno.remove(e.path).catch(() => {});
  }
  return gone;
}
