/**
 * The one store step: what happens to a pulled file, identically for every client.
 *
 * - The name is `--name`, else the client's suggested name; it is validated like every name.
 * - With the catalog: the file is renamed into `<storage>/.../<tag>@<version>.<ext>` and the row
 *   written in one transaction (db/catalog.ts). The version is the name's `@version` (a pull by
 *   digest carries the manifest digest), else the file's sha256. The extension follows the real
 *   format (`.oci.tar` for an OCI archive, `.sif`, `.simg`, `.img`). Missing metadata is read from
 *   the file (the native SIF reader first) by the catalog's `readMetadata`.
 * - `--file` with the catalog: stored as above AND copied to that path.
 * - `--no-cache` (or a disabled catalog): moved to `--file`, else to `<image>_<tag>.<ext>` in the
 *   current folder; nothing is recorded.
 * - URLs lose their userinfo (`http://user:PASS@host/x` -> `http://host/x`) before they are
 *   stored or shown: the password is for the request only.
 * - A destination that exists is replaced only with `--force`; otherwise "already exists" is a
 *   UsageError, exit 2, for every client.
 * @module
 */

import { dirname, join, resolve } from "node:path";
import type { PulledImage, RemoteRecord } from "../../clients/types.ts";
import { UsageError } from "../../core/errors.ts";
import { exists } from "../../core/fs.ts";
import { stripUserinfo } from "../../core/url.ts";
import { type ParsedName, parseImageName, removeUri } from "../../core/names.ts";
import { detectStoredFormat, extensionFor, type StoredFormat } from "../../core/stored_format.ts";
import type { ContainerRow } from "../../db/types.ts";
import type { App } from "../app.ts";

/** The pull options the store step honours. */
export interface StoreOptions {
  /** Catalog name (`collection/image:tag[@version]`) instead of the client's suggestion. */
  name?: string;
  /** With --no-cache: the output file; with the catalog: a copy is also written there. */
  file?: string;
  /** Replace an existing destination. */
  force?: boolean;
  /** Do not store in the catalog. */
  noCache?: boolean;
}

/** Where a pull ended up. */
export interface Stored {
  /** The file on disk (in storage, or the --no-cache destination). */
  path: string;
  /** The catalog name. */
  name: string;
  /** The real format, as stored. */
  format: StoredFormat;
  /** The catalog row, when stored in the catalog. */
  container?: ContainerRow;
  /** The --file copy, when one was written besides the catalog's file. */
  copiedTo?: string;
  /** The source URL without userinfo, when the client gave one. */
  url?: string;
  /** The client's metadata, URLs without userinfo. */
  metadata?: PulledImage["metadata"];
}

/** Metadata with the userinfo of every http(s) URL in it removed (core/url.ts's stripUserinfo). */
function stripDeep(value: unknown): unknown {
  if (typeof value === "string") {
    return /^(?:https?|ftps?):\/\/[^/?#]*@/i.test(value) ? stripUserinfo(value) : value;
  }
  if (Array.isArray(value)) return value.map(stripDeep);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, stripDeep(v)]));
  }
  return value;
}

/** The error every client's pull gives when its destination exists without --force (exit 2). */
export function alreadyExists(path: string): UsageError {
  return new UsageError(`${JSON.stringify(path)} already exists: use --force to replace it`);
}

/** The single-segment file name a --no-cache pull is written to: `<image>_<tag>.<ext>`. */
export function localFileName(names: ParsedName, ext: string): string {
  // Both parts passed the name charset (letters, digits, . _ -), so this is one segment; checked
  // again here because a --force write through a bad name would replace any file (~/.bashrc).
  const file = `${names.image}_${names.tag || "latest"}.${ext}`;
  if (!/^[A-Za-z0-9._-]+$/.test(file) || file === "." || file === ".." || file.length > 255) {
    throw new UsageError(
      `Cannot derive a safe file name from ${JSON.stringify(names.original)}: give one with --file`,
    );
  }
  return file;
}

/** The name a pull is stored under, validated (exit 2 for a bad one). */
export function storeName(record: RemoteRecord, name: string | undefined): ParsedName {
  return parseImageName(removeUri(name ?? record.suggestedName));
}

/** Where a --no-cache pull goes (the file the staging path must sit next to). */
export function localDestination(names: ParsedName, ext: string, file?: string): string {
  if (file !== undefined) return resolve(file);
  const cwd = Deno.cwd();
  const dest = join(cwd, localFileName(names, ext));
  if (dirname(dest) !== resolve(cwd)) {
    throw new UsageError(`${JSON.stringify(dest)} is outside the current folder: use --file`);
  }
  return dest;
}

async function copyInto(src: string, dest: string): Promise<void> {
  const tmp = join(dirname(dest), `.${crypto.randomUUID().slice(0, 8)}.copy-partial`);
  try {
    await Deno.copyFile(src, tmp);
    await Deno.rename(tmp, dest);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Place a pulled file: catalog (plus --file copy), or --no-cache destination. */
export async function storePulled(
  app: App,
  client: string,
  pulled: PulledImage,
  options: StoreOptions,
): Promise<Stored> {
  const names = storeName(pulled, options.name);
  // Loaded here: `record` and `images` reach this module and need no SIF reader.
  const { checkSifComplete } = await import("../../core/sif.ts");
  await checkSifComplete(pulled.file);
  const url = pulled.url === undefined ? undefined : stripUserinfo(pulled.url);
  const metadata = pulled.metadata === undefined
    ? undefined
    : stripDeep(pulled.metadata) as typeof pulled.metadata;
  const format = pulled.format === "unknown"
    ? await detectStoredFormat(pulled.file)
    : pulled.format;
  const ext = extensionFor(format);
  const catalog = options.noCache ? undefined : app.maybeCatalog();
  if (!catalog) {
    if (!options.noCache) {
      app.log.verbose("The catalog is disabled: writing to the current folder only");
    }
    const dest = localDestination(names, ext, options.file);
    if (exists(dest) && !options.force) throw alreadyExists(dest);
    await Deno.rename(pulled.file, dest);
    return { path: dest, name: names.uri, format, ...(url ? { url } : {}), metadata };
  }
  const copyTo = options.file === undefined ? undefined : resolve(options.file);
  if (copyTo && exists(copyTo) && !options.force) throw alreadyExists(copyTo);
  const sha = /^sha256:[0-9a-f]{64}$/.test(pulled.digest) ? pulled.digest.slice(7) : undefined;
  const { container } = await catalog.add({
    file: pulled.file,
    uri: names.uri,
    url,
    client,
    metadata,
    sha256: sha,
    force: options.force,
    platform: pulled.platform,
    ext,
  });
  const path = container.image ?? pulled.file;
  if (copyTo) await copyInto(path, copyTo);
  return {
    path,
    name: container.uri,
    format,
    container,
    ...(copyTo ? { copiedTo: copyTo } : {}),
    ...(url ? { url } : {}),
    metadata,
  };
}
