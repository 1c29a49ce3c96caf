/**
 * `sregistry cache ls|prune`: the blob cache OCI pulls keep between pulls
 * (`$SINGULARITY_CACHEDIR/sregistry/blobs`), and unfinished downloads left in storage. Stored OCI
 * archives and SIFs carry their own copy of every blob, so the cache only saves downloads; `prune`
 * empties it (sparing a pull in progress) and removes unfinished downloads older than a day.
 * @module
 */

import { join } from "node:path";
import type { App } from "../app.ts";
import { UsageError } from "../../core/errors.ts";
import {
  type CacheEntry,
  listBlobCache,
  pruneBlobCache,
  type PruneOptions,
} from "../../clients/oci/blob_cache.ts";
import { formatTable } from "../render/table.ts";
import { sweepStale } from "../../db/sweep.ts";

const DAY_MS = 24 * 3600_000;
const STORAGE_PARTIAL = /\.(partial|partial\.json|tmp)$/;

/** A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`. */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) [v, u] = [v / 1024, u + 1];
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Unfinished downloads (`.partial`, `.partial.json`, `.tmp`) in the storage tree. */
async function storagePartials(root: string): Promise<CacheEntry[]> {
  // The legacy blob folder is listed by listBlobCache; skip it here so nothing counts twice.
  const skip = join(root, ".blobs");
  const out: CacheEntry[] = [];
  const walk = async (dir: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory && depth < 6 && path !== skip) await walk(path, depth + 1);
      else if (e.isFile && STORAGE_PARTIAL.test(e.name)) {
        try {
          const st = await Deno.stat(path);
          out.push({ path, kind: "partial", size: st.size, mtime: st.mtime ?? new Date(0) });
        } catch {
          // removed meanwhile
        }
      }
    }
  };
  await walk(root, 0);
  return out;
}

function entryJson(e: CacheEntry) {
  return {
    path: e.path,
    kind: e.kind,
    digest: e.digest ?? null,
    size: e.size,
    mtime: e.mtime.toISOString(),
  };
}

/** Options of {@link cacheCommand}. */
export interface CacheCommandOptions extends Pick<PruneOptions, "now" | "blobAgeMs"> {
  /** With prune: list, do not remove. */
  dryRun?: boolean;
}

/** Run `cache ls` or `cache prune`. */
export async function cacheCommand(
  app: App,
  action: string | undefined,
  opts: CacheCommandOptions = {},
): Promise<void> {
  const root = app.settings.blobCacheDir;
  // Where sregistry 0.3.0 kept blobs; listed and pruned the same way until it is gone.
  const legacy = join(app.settings.storage, ".blobs");
  if (action === "ls" || action === "list") {
    const entries = [
      ...await listBlobCache(root),
      ...await listBlobCache(legacy),
      ...await storagePartials(app.settings.storage),
    ];
    const total = entries.reduce((a, e) => a + e.size, 0);
    if (app.json) {
      app.out.json({ root, entries: entries.map(entryJson), totalBytes: total });
      return;
    }
    if (entries.length === 0) {
      app.log.info(`The blob cache ${root} is empty`);
      return;
    }
    app.out.line(formatTable(
      entries.map((e) => [
        e.kind,
        formatSize(e.size),
        e.mtime.toISOString().slice(0, 19).replace("T", " "),
        e.digest && e.kind === "blob" ? e.digest : e.path,
      ]),
      ["[kind]", "[size]", "[modified]", "[blob]"],
    ));
    app.out.line(`${entries.length} files, ${formatSize(total)} in ${root}`);
    return;
  }
  if (action === "prune") {
    const now = opts.now ?? new Date();
    const prune = { dryRun: opts.dryRun, now, blobAgeMs: opts.blobAgeMs };
    const gone = [...await pruneBlobCache(root, prune), ...await pruneBlobCache(legacy, prune)];
    for (const e of await storagePartials(app.settings.storage)) {
      if (now.getTime() - e.mtime.getTime() <= DAY_MS) continue;
      if (!opts.dryRun) await Deno.remove(e.path).catch(() => {});
      gone.push(e);
    }
    // Stale staging files, locks and `add` temp files with no live owner: the sweep every run does
    // at most once an hour, forced here. Listed first, so sizes can be shown.
    const seen = new Set(gone.map((e) => e.path));
    const stale = sweepStale(app.settings.storage, {
      force: true,
      dryRun: true,
      now: now.getTime(),
    })
      .removed.filter((p) => !seen.has(p));
    for (const path of stale) {
      const st = await Deno.stat(path).catch(() => undefined);
      gone.push({ path, kind: "partial", size: st?.size ?? 0, mtime: st?.mtime ?? now });
    }
    if (!opts.dryRun && stale.length) {
      sweepStale(app.settings.storage, { force: true, now: now.getTime() });
    }
    const bytes = gone.reduce((a, e) => a + e.size, 0);
    if (app.json) {
      app.out.json({ dryRun: opts.dryRun ?? false, removed: gone.map(entryJson), bytes });
      return;
    }
    const verb = opts.dryRun ? "would remove" : "removed";
    for (const e of gone) app.out.line(`[prune] ${verb} ${e.path} (${formatSize(e.size)})`);
    app.log.info(
      `${opts.dryRun ? "Would remove" : "Removed"} ${gone.length} files, ${formatSize(bytes)}`,
    );
    return;
  }
  throw new UsageError(
    action === undefined
      ? 'Missing action: use "sregistry cache ls" or "sregistry cache prune [--dry-run]"'
      : `${JSON.stringify(action)} is not a cache action: use ls or prune`,
  );
}
