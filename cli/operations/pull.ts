/**
 * `sregistry pull`: choose the client, check it can pull, give it a staging path, then hand what it
 * fetched to the one store step (store.ts). The staging file is unique to this process and is
 * removed when anything fails, so an interrupted pull leaves no final file and no row.
 *
 * Two pulls of one source (same image and platform: they share the resumable download) or of one
 * `--name` wait for each other on lock files in the staging folder (core/lock.ts: stale when the
 * owner is gone, safe on NFS); the second then proceeds, resuming or replacing what the first left.
 * @module
 */

import { createHash } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import type { PulledImage, PullTarget } from "../../clients/types.ts";
import { assertNoLinkInside, exists } from "../../core/fs.ts";
import { acquireLock, type Lock } from "../../core/lock.ts";
import { parseImageName, removeUri } from "../../core/names.ts";
import type { App } from "../app.ts";
import { capability } from "./capability.ts";
import { alreadyExists, type StoreOptions, storePulled } from "./store.ts";

/** Options of `sregistry pull`. */
export interface PullCommandOptions {
  /** --name. */
  name?: string;
  /** --file. */
  file?: string;
  /** --force. */
  force?: boolean;
  /** commander's `--no-cache` (false when given). */
  cache?: boolean;
  /** --platform. */
  platform?: string;
}

/** A single path segment naming an image in staging file names (never a path, never hidden dots). */
function stagingSegment(image: string): string {
  return removeUri(image).replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "").slice(0, 60) ||
    "image";
}

/**
 * The staging target of a pull: `<dir>/.<image>.<pid>-<random>.partial-pull`, where `dir` is
 * `<storage>/.staging` (catalog) or the --no-cache destination's folder, so the final rename stays
 * on one filesystem. `resumable` is stable for the image, platform and folder.
 */
export function pullTarget(dir: string, image: string, platform?: string): PullTarget {
  const seg = stagingSegment(image);
  const key = createHash("sha256").update(`${image}\0${platform ?? ""}`).digest("hex").slice(0, 16);
  return {
    path: join(dir, `.${seg}.${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.partial-pull`),
    resumable: join(dir, `.${seg}.${key}.resumable`),
    ...(platform ? { platform } : {}),
  };
}

/** The lock files a pull takes, sorted so that two pulls never wait for each other in a circle. */
export function pullLocks(dir: string, into: PullTarget, name?: string): string[] {
  const paths = new Set([`${into.resumable}.lock`]);
  if (name !== undefined) {
    const n = parseImageName(removeUri(name));
    const key = createHash("sha256").update(`${n.url}:${n.tag}`).digest("hex").slice(0, 16);
    paths.add(join(dir, `.name-${key}.lock`));
  }
  return [...paths].sort();
}

async function removeStaging(path: string): Promise<void> {
  for (const p of [path, `${path}.partial`, `${path}.partial.json`]) {
    await Deno.remove(p, { recursive: true }).catch(() => {});
  }
}

/** `sregistry pull`. */
export async function pullCommand(
  app: App,
  image: string,
  opts: PullCommandOptions,
): Promise<void> {
  const { client } = app.getClient(image);
  const pull = capability(client, "pull");
  const store: StoreOptions = {
    name: opts.name,
    file: opts.file,
    force: opts.force,
    noCache: opts.cache === false,
  };
  // A bad --name is a usage error before anything is downloaded.
  if (store.name !== undefined) parseImageName(removeUri(store.name));
  const catalog = store.noCache ? undefined : app.maybeCatalog();
  // Refuse before downloading when the destination is already known to exist.
  if (store.file !== undefined && exists(resolve(store.file)) && !store.force) {
    throw alreadyExists(resolve(store.file));
  }
  const dir = catalog
    ? join(catalog.storage, ".staging")
    : store.file !== undefined
    ? dirname(resolve(store.file))
    : Deno.cwd();
  if (catalog) assertNoLinkInside(catalog.storage, join(dir, "x"));
  await Deno.mkdir(dir, { recursive: true });
  const into = pullTarget(dir, image, opts.platform);
  const locks: Lock[] = [];
  let pulled: PulledImage;
  try {
    for (const path of pullLocks(dir, into, store.name)) {
      locks.push(
        await acquireLock(path, {
          signal: app.signal,
          onWait: (owner) =>
            app.log.info(
              `Waiting for another pull of ${JSON.stringify(store.name ?? image)}${
                owner ? ` (process ${owner.pid} on ${owner.host})` : ""
              } to finish`,
            ),
        }),
      );
    }
    pulled = await pull(image, into);
    const stored = await storePulled(app, client.name, { ...pulled, file: into.path }, store);
    if (stored.format === "oci-archive") {
      app.log.info(
        `No singularity or apptainer on PATH: kept the image as an OCI archive. To get a SIF, run: singularity build image.sif oci-archive:${stored.path}`,
      );
    }
    if (app.json) {
      // The catalog row's metadata (the client's merged over the file's own); without the
      // catalog, what the client gave, else what the file says about itself.
      const metadata = stored.container?.metadata ?? stored.metadata ??
        await app.readMetadata(stored.path).catch(() => ({}));
      app.out.json({
        path: stored.path,
        uri: stored.container?.uri ?? stored.name,
        url: stored.url ?? null,
        digest: pulled.digest,
        size: pulled.size,
        format: stored.format,
        platform: pulled.platform ?? null,
        client: client.name,
        ...(stored.copiedTo ? { copied_to: stored.copiedTo } : {}),
        metadata,
      });
    } else app.out.line(stored.copiedTo ?? stored.path);
  } finally {
    await removeStaging(into.path);
    for (const lock of locks.reverse()) await lock.release();
  }
}
