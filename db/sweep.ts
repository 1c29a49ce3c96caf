/**
 * Stale staging and temp files: what an interrupted run (kill -9, a full disk, a power cut) leaves in
 * storage, found and removed by a later run. A file is stale when it is older than a day (by mtime;
 * a live download touches its file all the time) and no live process owns it: staging names carry
 * their owner's pid, lock files their owner (core/lock.ts).
 *
 * Swept: everything in `<storage>/.staging` (`.x.<pid>-<id>.partial-pull*`, `.x.<key>.resumable*`,
 * `.partial.json.tmp`, locks), and the hidden temp files the catalog writes next to stored files
 * (`.<file>.<8 hex>.tmp|old|rm`, up to an image's size each). Symbolic links are never followed.
 * The catalog sweeps on open at most once an hour (a marker file in the database folder); `cache
 * prune` calls
 * {@link sweepStale} with `force`.
 * @module
 */

import { join } from "node:path";
import { processAlive } from "../core/fs.ts";
import { lockIsStale } from "../core/lock.ts";

/** Options of {@link sweepStale}. */
export interface SweepOptions {
  /** Older than this (ms) a file without a live owner is stale (default one day). */
  maxAgeMs?: number;
  /** Sweep even when the last sweep was less than `intervalMs` ago. */
  force?: boolean;
  /** How often a sweep runs at most, per storage folder (default one hour). */
  intervalMs?: number;
  /** The clock (tests inject one). */
  now?: number;
  /** List what would be removed, remove nothing (`cache prune --dry-run`). */
  dryRun?: boolean;
  /** The file whose mtime says when the last sweep ran (default `<storage>/.staging/.last-sweep`). */
  marker?: string;
}

/** What a sweep removed. */
export interface SweepResult {
  /** Absolute paths removed. */
  removed: string[];
  /** Their total size in bytes. */
  bytes: number;
  /** The sweep did not run (the last one was recent). */
  skipped: boolean;
}

/** The staging folder of a storage root. */
export const STAGING_DIR = ".staging";
const MARKER = ".last-sweep";
const DAY = 86_400_000;
const CATALOG_TEMP = /^\..+\.[0-9a-f]{8}\.(tmp|old|rm|stale|copy-partial)$/;
const STAGING_PID = /\.(\d+)-[0-9a-f]{8}\.partial-pull/;

function sizeOf(path: string): number {
  try {
    const info = Deno.lstatSync(path);
    if (!info.isDirectory) return info.size;
    let total = 0;
    for (const e of Deno.readDirSync(path)) total += sizeOf(join(path, e.name));
    return total;
  } catch {
    return 0;
  }
}

/**
 * Remove stale staging and temp files under `storage` (see the module doc).
 * Errors on single files are ignored: a sweep never makes a command fail.
 */
export function sweepStale(storage: string, options: SweepOptions = {}): SweepResult {
  const now = options.now ?? Date.now();
  const maxAge = options.maxAgeMs ?? DAY;
  const result: SweepResult = { removed: [], bytes: 0, skipped: false };
  const staging = join(storage, STAGING_DIR);
  const marker = options.marker ?? join(staging, MARKER);
  let stagingInfo: Deno.FileInfo | undefined;
  try {
    stagingInfo = Deno.lstatSync(staging);
  } catch {
    // No staging folder yet.
  }
  if (!options.force) {
    try {
      const last = Deno.statSync(marker).mtime?.getTime() ?? 0;
      if (now - last < (options.intervalMs ?? 3_600_000)) return { ...result, skipped: true };
    } catch {
      // Never swept.
    }
  }

  const old = (info: Deno.FileInfo) => now - (info.mtime?.getTime() ?? now) > maxAge;
  const remove = (path: string) => {
    const bytes = sizeOf(path);
    try {
      if (!options.dryRun) Deno.removeSync(path, { recursive: true });
      result.removed.push(path);
      result.bytes += bytes;
    } catch {
      // Gone already, or not ours to remove.
    }
  };

  if (stagingInfo?.isDirectory) {
    for (const e of Deno.readDirSync(staging)) {
      if (e.name === MARKER) continue;
      const path = join(staging, e.name);
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(path);
      } catch {
        continue;
      }
      if (e.name.endsWith(".lock")) {
        if (lockIsStale(path, Math.min(maxAge, 120_000), now)) remove(path);
        continue;
      }
      if (!old(info)) continue;
      const pid = e.name.match(STAGING_PID)?.[1];
      // Kept only when its owner is known to be alive; unknown (no /proc) leaves the age to decide.
      if (pid !== undefined && processAlive(Number(pid)) === true) continue;
      remove(path);
    }
  }

  const walk = (dir: string, depth: number) => {
    if (depth > 32) return;
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isSymlink) continue;
      const path = join(dir, e.name);
      if (e.isDirectory) {
        if (depth === 0 && e.name === STAGING_DIR) continue;
        walk(path, depth + 1);
      } else if (e.isFile && CATALOG_TEMP.test(e.name)) {
        try {
          if (old(Deno.lstatSync(path))) remove(path);
        } catch {
          // Gone meanwhile.
        }
      }
    }
  };
  try {
    if (Deno.statSync(storage).isDirectory) walk(storage, 0);
  } catch {
    // No storage yet.
  }
  try {
    if (!options.dryRun) Deno.writeTextFileSync(marker, "");
  } catch {
    // A read-only folder: sweep again next time.
  }
  return result;
}
