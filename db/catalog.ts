/**
 * The local catalog: sregistry-cli's SQLite database (`<databaseDir>/sregistry.db`) over node:sqlite
 * plus the storage tree of image files.
 *
 * Several sregistry processes may write at once (parallel pulls in CI): the database runs in WAL mode
 * with a busy timeout, every write is one `BEGIN IMMEDIATE` transaction, and file renames happen inside
 * that transaction and are undone if it fails, so a failure leaves neither a row without its file nor
 * a file without its row. Files are only ever renamed into their final name once complete.
 *
 * Fixes over sregistry-cli: caller metadata is kept, no pseudo-URL is invented, a name without a tag
 * matches any tag, and not-found is an error (exit 3) for every command.
 *
 * This file holds the queries and writes; the row shape is in rows.ts, file placement in
 * placement.ts, the metadata shape (labels, environment) in metadata_shape.ts and the schema in
 * schema.ts.
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { basename, dirname, join, relative, resolve } from "node:path";
import {
  AuthError,
  InterruptedError,
  NotFoundError,
  SregistryError,
  UsageError,
} from "../core/errors.ts";
import { assertNoLinkInside, exists, isDirectory } from "../core/fs.ts";
import type { Logger } from "../core/log.ts";
import { parseImageName, removeUri, storagePath } from "../core/names.ts";
import { hostPlatform } from "../core/platform.ts";
import { detectStoredFormat, extensionFor, extensionOf } from "../core/stored_format.ts";
import { metadataLabels } from "./metadata_shape.ts";
import { inside, pruneEmpty, stage, tempNameNear, unstage } from "./placement.ts";
import {
  collectionName,
  escapeLike,
  LISTED_PROTO,
  listedRow,
  type ListingTuple,
  parseMetrics,
  type RawRow,
  SELECT_LIST,
  SELECT_LISTING,
  SELECT_ROWS,
  sqlTimestamp,
  toRow,
} from "./rows.ts";
import { migrate, needsMigration } from "./schema.ts";
import { stripUserinfo, stripUserinfoDeep } from "./_userinfo.ts";
import { sweepStale } from "./sweep.ts";
import type { AddOptions, AddResult, Catalog, ContainerRow, LabelHit, Metadata } from "./types.ts";

export { collectionName, parseMetrics, rowToJson, sqlTimestamp } from "./rows.ts";
export { metadataLabels } from "./metadata_shape.ts";

/** Options of {@link openCatalog}. */
export interface CatalogOptions {
  /** The folder holding `sregistry.db` (created when missing). */
  databaseDir: string;
  /** The storage root for image files. */
  storage: string;
  /** Reads an image file's own metadata; failures are warned about and the add goes on. */
  readMetadata?: (file: string) => Promise<Metadata>;
  /** Where warnings go. */
  log?: Logger;
  /** The clock for `created_at` (tests inject one). */
  clock?: () => Date;
  /** How long a writer waits for another one's lock, in ms (default 10 s). */
  busyTimeoutMs?: number;
  /** Remove stale staging and temp files from storage on open (default true; see sweep.ts). */
  sweep?: boolean;
}

/** The file in the database folder whose mtime is the last sweep of stale files (sweep.ts). */
export const SWEEP_MARKER = ".sregistry-last-sweep";

/** The database file name inside the database folder, as in sregistry-cli. */
export const DATABASE_FILE = "sregistry.db";

/** The sha256 (hex) of a file, streamed so large images do not fill memory. */
export async function sha256File(path: string): Promise<string> {
  // Loaded on use: node:crypto alone costs more start-up time than listing 10,000 images.
  const { hashFile } = await import("../core/hasher.ts");
  return (await hashFile(path)).digest.slice("sha256:".length);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Why a database cannot be written: SQLite's and the OS's words for a read-only or full disk. */
const NOT_WRITABLE =
  /unable to open database file|readonly database|read-only file system|database or disk is full|disk I\/O error|permission denied|no space left/i;

function openReadOnly(path: string): DatabaseSync {
  try {
    const db = new DatabaseSync(path, { readOnly: true });
    // An older schema (sregistry-cli's) cannot be migrated in place: the copy below can.
    if (!needsMigration(db)) return db;
    db.close();
    throw new Error("needs migration");
  } catch {
    // A WAL database in a folder that cannot hold its -shm file cannot be opened in place (an
    // `immutable=1` URI would, but Deno's permission layer reads URIs as paths): read a private
    // copy instead, unlinked at once (the open handle keeps it readable, nothing is left behind).
    const tmp = Deno.makeTempDirSync({ prefix: "sregistry-ro-" });
    try {
      const copy = join(tmp, DATABASE_FILE);
      Deno.copyFileSync(path, copy);
      if (exists(`${path}-wal`)) Deno.copyFileSync(`${path}-wal`, `${copy}-wal`);
      const db = new DatabaseSync(copy);
      db.exec("PRAGMA journal_mode = DELETE");
      migrate(db);
      return db;
    } finally {
      Deno.removeSync(tmp, { recursive: true });
    }
  }
}

function openWritable(path: string, databaseDir: string, options: CatalogOptions): DatabaseSync {
  Deno.mkdirSync(databaseDir, { recursive: true });
  const db = new DatabaseSync(path);
  try {
    db.exec(`PRAGMA busy_timeout = ${options.busyTimeoutMs ?? 10_000}`);
    db.exec("PRAGMA journal_mode = WAL");
    const applied = migrate(db);
    if (applied.length) {
      options.log?.debug(`Catalog ${path}: applied migrations ${applied.join(", ")}`);
    }
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** An interrupt before the commit: the add is rolled back, and the message says so. */
function stopIfInterrupted(opts: AddOptions, uri: string): void {
  if (opts.signal?.aborted) {
    throw new InterruptedError(
      `Interrupted: ${JSON.stringify(uri)} was not added, the catalog and the file are unchanged`,
    );
  }
}

/** The error for a catalog that cannot be written, naming its path (exit 4 for permissions). */
function notWritable(path: string, reason: string): SregistryError {
  const full = /full|no space|I\/O/i.test(reason);
  const text = `Cannot write the catalog ${JSON.stringify(path)}: ${reason}; ${
    full ? "free some space on its disk (or make it writable)" : "make it and its folder writable"
  }, or set SREGISTRY_DATABASE to another folder`;
  return full ? new SregistryError(text) : new AuthError(text);
}

/**
 * Open (creating when needed) the catalog. The database folder is created, the original tables are
 * created when missing and pending migrations are applied. When the database cannot be written (a
 * read-only folder or file system, a full disk) it is opened read-only: reading commands work and
 * every write fails with an error naming the database.
 */
export function openCatalog(options: CatalogOptions): Catalog {
  const { databaseDir, log } = options;
  const storage = resolve(options.storage);
  const clock = options.clock ?? (() => new Date());
  const path = join(databaseDir, DATABASE_FILE);
  let db: DatabaseSync;
  let readOnlyReason: string | undefined;
  try {
    db = openWritable(path, databaseDir, options);
  } catch (e) {
    const reason = message(e).replace(/: \/.*$/, "");
    if (!(NOT_WRITABLE.test(reason) || e instanceof Deno.errors.PermissionDenied)) throw e;
    if (!exists(path)) throw notWritable(path, reason);
    try {
      db = openReadOnly(path);
    } catch {
      throw notWritable(path, reason);
    }
    readOnlyReason = reason;
    log?.debug(`Catalog ${path} is read-only (${reason})`);
  }
  if (!readOnlyReason && options.sweep !== false) {
    try {
      const swept = sweepStale(storage, { marker: join(databaseDir, SWEEP_MARKER) });
      if (swept.removed.length) {
        log?.debug(`Removed ${swept.removed.length} stale temp files (${swept.bytes} bytes)`);
      }
    } catch (e) {
      log?.debug(`Cannot sweep stale files in ${storage}: ${message(e)}`);
    }
  }
  const writable = () => {
    if (readOnlyReason) throw notWritable(path, readOnlyReason);
  };
  const readMetadata = options.readMetadata;

  function transaction<T>(fn: () => T): T {
    writable();
    db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      db.exec("COMMIT");
      return result;
    } catch (e) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw e;
    }
  }

  function loadMetrics(id: number): string | null {
    const r = db.prepare("SELECT metrics FROM container WHERE id = ?").get(id) as
      | { metrics: string | null }
      | undefined;
    return r?.metrics ?? null;
  }

  function byId(id: number): ContainerRow {
    const r = db.prepare(`${SELECT_ROWS} WHERE c.id = ?`).get(id) as RawRow | undefined;
    if (!r) throw new NotFoundError(`Image with id ${id} vanished from the catalog`);
    return toRow(r);
  }

  function collectionId(name: string): number {
    // INSERT OR IGNORE + SELECT: two processes creating one collection both end with its one id.
    db.prepare("INSERT OR IGNORE INTO collection (name, token, created_at) VALUES (?, ?, ?)")
      .run(name, crypto.randomUUID(), sqlTimestamp(clock()));
    const row = db.prepare("SELECT id FROM collection WHERE name = ?").get(name) as { id: number };
    return Number(row.id);
  }

  function findForWrite(
    collId: number,
    name: string,
    tag: string,
    version: string,
  ): RawRow | undefined {
    if (version) {
      return db.prepare(
        `${SELECT_ROWS} WHERE c.collection_id = ? AND c.name = ? AND c.tag = ? AND c.version = ?
         ORDER BY c.id LIMIT 1`,
      ).get(collId, name, tag, version) as RawRow | undefined;
    }
    // Without a version (a record), update the version-less row first, else the newest one, as the
    // original's falsy-version lookup did ("record after pull keeps the image").
    return db.prepare(
      `${SELECT_ROWS} WHERE c.collection_id = ? AND c.name = ? AND c.tag = ?
       ORDER BY (c.version IS NULL OR c.version = '') DESC, c.created_at DESC, c.id DESC LIMIT 1`,
    ).get(collId, name, tag) as RawRow | undefined;
  }

  /** A version that may be the start of a hash: 4 to 63 hex characters, `sha256:` allowed. */
  const HASH_PREFIX = /^(sha256:)?[0-9a-fA-F]{4,63}$/;

  function mustGet(query: string): ContainerRow {
    const row = catalog.get(query);
    if (!row) {
      throw new NotFoundError(
        `Image ${JSON.stringify(query)} is not in the catalog: see "sregistry images" for what is`,
      );
    }
    return row;
  }

  const insideStorage = (p: string) => inside(storage, p);

  async function addImpl(opts: AddOptions, withFile: boolean): Promise<AddResult> {
    writable();
    if (withFile && !opts.file) {
      throw new UsageError(
        `Missing image file for ${JSON.stringify(opts.uri)}: give the path of an image file`,
      );
    }
    let file = withFile && opts.file ? resolve(opts.file) : undefined;
    let copy = opts.copy ?? false;
    let stat: Deno.FileInfo | undefined;
    if (file && exists(file) && Deno.lstatSync(file).isSymlink) {
      // The user's link stays where it is, and so does its target (other things may use it): the
      // catalog stores a copy of the target's content.
      try {
        file = Deno.realPathSync(file);
      } catch {
        throw new NotFoundError(
          `${JSON.stringify(opts.file)} is a symbolic link to a missing file: check the link`,
        );
      }
      copy = true;
      log?.verbose(`${JSON.stringify(opts.file)} is a link: storing a copy of ${file}`);
    }
    if (file) {
      try {
        stat = await Deno.stat(file);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          throw new NotFoundError(`Cannot find ${JSON.stringify(opts.file)}: check the path`);
        }
        throw e;
      }
      if (!stat.isFile) {
        throw new UsageError(`${JSON.stringify(opts.file)} is not a file: give an image file`);
      }
    }
    const bare = removeUri(opts.uri);
    let names = parseImageName(bare);
    const owner = file && !copy ? rowOwning(file) : undefined;
    const url = opts.url === undefined ? undefined : stripUserinfo(opts.url);

    if (file) {
      // Loaded here: listing commands open the catalog and must not pay for the SIF reader.
      const { checkSifComplete } = await import("../core/sif.ts");
      await checkSifComplete(file);
    }
    let imageMeta: Metadata = {};
    if (file && readMetadata) {
      try {
        imageMeta = await readMetadata(file);
      } catch (e) {
        log?.warning(
          `Cannot read the metadata of ${JSON.stringify(file)} (${message(e)}); adding it without`,
        );
      }
    }
    const sha = file ? (opts.sha256?.toLowerCase() ?? await sha256File(file)) : undefined;
    const version = names.version ?? sha ?? "";
    if (version && !names.version) names = parseImageName(bare, { version });

    const metadata: Metadata = {
      collection: names.collection,
      image: names.image,
      tag: names.tag,
      version,
      uri: names.uri,
      ...(names.registry ? { registry: names.registry } : {}),
      type: "container",
      ...imageMeta,
      ...(opts.metadata ?? {}),
    };

    // The extension follows the real format: an OCI archive is stored as .oci.tar, never .sif.
    const ext = file ? (opts.ext ?? extensionFor(await detectStoredFormat(file))) : undefined;
    const dest = file
      ? (opts.dest ? resolve(opts.dest) : storagePath(names, storage, ext))
      : undefined;
    const sameFile = file !== undefined && dest === file;
    if (owner && !sameFile) {
      throw new UsageError(
        `${JSON.stringify(opts.file)} is the stored file of ${
          JSON.stringify(owner)
        }: moving it would leave that entry without a file; use --copy, or "sregistry rename"`,
      );
    }
    if (dest) assertNoLinkInside(storage, dest, "write");
    if (file && dest && !sameFile && exists(dest) && !opts.force) {
      const old = await Deno.stat(dest);
      const same = old.isFile && old.size === stat!.size && await sha256File(dest) === sha;
      if (!same) {
        throw new UsageError(
          `${JSON.stringify(dest)} already exists with other content: use --force to replace it`,
        );
      }
    }
    stopIfInterrupted(opts, names.uri);
    const staged = file && dest && !sameFile ? await stage(file, dest, copy) : undefined;

    const coll = collectionName(names);
    let backup: string | undefined;
    let placed = false;
    try {
      // The last moment an interrupt rolls the add back; once committed, the add has happened.
      stopIfInterrupted(opts, names.uri);
      const result = transaction(() => {
        const collId = collectionId(coll);
        const existing = findForWrite(collId, names.image, names.tag, version);
        let id: number;
        if (existing) {
          const merged = stripUserinfoDeep({ ...parseMetrics(existing.metrics), ...metadata });
          db.prepare(
            `UPDATE container SET metrics = ?, url = COALESCE(?, url), client = ?,
             image = COALESCE(?, image), size = COALESCE(?, size), digest = COALESCE(?, digest),
             platform = COALESCE(?, platform), uri = ? WHERE id = ?`,
          ).run(
            JSON.stringify(merged),
            url ?? null,
            opts.client,
            dest ?? null,
            stat ? stat.size : null,
            sha ? `sha256:${sha}` : null,
            opts.platform ?? null,
            names.uri,
            existing.id,
          );
          id = Number(existing.id);
        } else {
          const res = db.prepare(
            `INSERT INTO container (created_at, metrics, name, tag, image, url, uri, client, version,
             collection_id, size, digest, platform) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(
            sqlTimestamp(clock()),
            JSON.stringify(stripUserinfoDeep(metadata)),
            names.image,
            names.tag,
            dest ?? null,
            url ?? null,
            names.uri,
            opts.client,
            version,
            collId,
            stat ? stat.size : null,
            sha ? `sha256:${sha}` : null,
            opts.platform ?? null,
          );
          id = Number(res.lastInsertRowid);
        }
        if (staged && dest) {
          if (exists(dest)) {
            backup = tempNameNear(dest, "old");
            Deno.renameSync(dest, backup);
          }
          Deno.renameSync(staged.tmp, dest);
          placed = true;
        }
        return { container: byId(id), created: !existing };
      });
      if (backup) await Deno.remove(backup).catch(() => {});
      if (staged?.removeSourceAfter && file) {
        await Deno.remove(file).catch((e) =>
          log?.warning(`Copied ${JSON.stringify(file)} but cannot remove it: ${message(e)}`)
        );
      }
      return result;
    } catch (e) {
      if (staged && dest && file) {
        try {
          if (placed) Deno.renameSync(dest, staged.tmp);
          if (backup) Deno.renameSync(backup, dest);
        } catch {
          // Best effort; the original error matters more.
        }
        unstage(staged, file);
      }
      throw e;
    }
  }

  /**
   * The uri of the row whose stored file `file` is, if any, however the path is spelled (the
   * storage root may be reached through a link).
   */
  function rowOwning(file: string): string | undefined {
    const spellings = new Set([file]);
    try {
      const real = Deno.realPathSync(file);
      spellings.add(real);
      const realStorage = Deno.realPathSync(storage);
      if (inside(realStorage, real)) spellings.add(join(storage, relative(realStorage, real)));
    } catch {
      // No storage yet: only the given spelling can be in a row.
    }
    for (const p of spellings) {
      const r = db.prepare(`${SELECT_ROWS} WHERE c.image = ? ORDER BY c.id LIMIT 1`).get(p) as
        | RawRow
        | undefined;
      if (r) return toRow(r).uri;
    }
    return undefined;
  }

  /** Move a row's file to `target` and update the row, as one transaction. */
  async function relocate(
    row: ContainerRow,
    target: string,
    update: (image: string | null) => void,
  ): Promise<void> {
    const src = row.image;
    if (!src || src === target) {
      transaction(() => update(src && target));
      return;
    }
    writable();
    assertNoLinkInside(storage, src, "move");
    assertNoLinkInside(storage, target, "write");
    if (exists(target)) {
      throw new UsageError(
        `${JSON.stringify(target)} already exists: remove it or choose another path`,
      );
    }
    const staged = await stage(src, target, false);
    let placed = false;
    try {
      transaction(() => {
        update(target);
        Deno.renameSync(staged.tmp, target);
        placed = true;
      });
    } catch (e) {
      try {
        if (placed) Deno.renameSync(target, staged.tmp);
      } catch {
        // Best effort.
      }
      unstage(staged, src);
      throw e;
    }
    if (staged.removeSourceAfter) await Deno.remove(src).catch(() => {});
    if (insideStorage(src)) pruneEmpty(storage, dirname(src));
  }

  function requireFile(row: ContainerRow, what: string): string {
    if (!row.image) {
      throw new NotFoundError(
        `Image ${
          JSON.stringify(row.uri)
        } is a record without a file: pull it before you ${what} it`,
      );
    }
    if (!exists(row.image)) {
      throw new NotFoundError(
        `The file of ${
          JSON.stringify(row.uri)
        } is missing (${row.image}): pull it again, then ${what} it`,
      );
    }
    return row.image;
  }

  const catalog: Catalog = {
    path,
    storage,

    add(opts) {
      return addImpl(opts, true);
    },

    record(opts) {
      return addImpl(opts, false);
    },

    get(query, options = {}) {
      const n = parseImageName(removeUri(query), { defaults: false });
      const where = ["k.name = ?", "c.name = ?"];
      const params: string[] = [collectionName(n), n.image];
      if (n.tag) {
        where.push("c.tag = ?");
        params.push(n.tag);
      }
      // A hash version as `images` shows it (its first 12 hex characters) finds its image, as
      // docker's short ids do; an exact version always wins over a prefix.
      const prefix = n.version && HASH_PREFIX.test(n.version) ? n.version.toLowerCase() : undefined;
      if (prefix) {
        where.push("(c.version = ? OR c.version LIKE ? ESCAPE '\\')");
        params.push(n.version!, `${prefix}%`);
      } else if (n.version) {
        where.push("c.version = ?");
        params.push(n.version);
      }
      // No tag given: any tag, `latest` first (the original only looked at `latest`); then, among
      // platform variants of one name, this machine's (or one of unknown platform); then newest.
      const platform = options.platform ?? hostPlatform();
      const rows = db.prepare(
        `${SELECT_ROWS} WHERE ${where.join(" AND ")}
         ORDER BY ${prefix ? "(c.version = ?) DESC, " : ""}(c.tag = 'latest') DESC,
           (c.platform IS NULL OR c.platform = ? OR c.platform LIKE ? ESCAPE '\\') DESC,
           c.created_at DESC, c.id DESC LIMIT ${prefix ? 2 : 1}`,
      ).all(
        ...params,
        ...(prefix ? [n.version!] : []),
        platform,
        `${platform.replace(/[\\%_]/g, (c) => `\\${c}`)}/%`,
      ) as unknown as RawRow[];
      const [r, other] = rows;
      if (prefix && r && other && r.version !== n.version && other.version !== r.version) {
        throw new UsageError(
          `Version ${JSON.stringify(n.version)} of ${
            JSON.stringify(removeUri(query).split("@")[0])
          } is the start of more than one version: give more of it (sregistry images --no-trunc)`,
        );
      }
      return r ? toRow(r) : undefined;
    },

    images(queries = []) {
      const qs = queries.length ? queries : ["*"];
      const all = qs.some((q) => q === "" || q === "*");
      const params: string[] = [];
      let where = "";
      if (!all) {
        where = " WHERE " + qs.map((q) => {
          const like = escapeLike(q);
          params.push(q, like, like, like, like);
          return `(c.name = ? OR c.tag LIKE ? ESCAPE '\\' OR c.uri LIKE ? ESCAPE '\\'
            OR c.name LIKE ? ESCAPE '\\' OR k.name LIKE ? ESCAPE '\\')`;
        }).join(" OR ");
      }
      // Only what the listing shows, as arrays: the rest of each row loads, for all rows at once,
      // the first time any row is asked for more (--json).
      // A full scan gains nothing from SQLite's 2 MiB page cache, which would only add to the peak
      // memory of the listing; the process runs one command, so the smaller cache can stay.
      db.exec("PRAGMA cache_size = -256");
      const stmt = db.prepare(`${SELECT_LISTING}${where} ORDER BY c.id`);
      // Missing from Deno's node:sqlite types, present at run time.
      (stmt as unknown as { setReturnArrays(on: boolean): void }).setReturnArrays(true);
      // all(), not iterate(): iterating costs twice the time cold and saves no memory.
      const tuples = stmt.all(...params) as unknown as ListingTuple[];
      let full: Map<number, ContainerRow> | undefined;
      const rest = (id: number): ContainerRow => {
        if (!full) {
          full = new Map();
          const all = db.prepare(`${SELECT_LIST}${where} ORDER BY c.id`).all(
            ...params,
          ) as unknown as RawRow[];
          for (const r of all) full.set(Number(r.id), toRow(r, loadMetrics));
        }
        return full.get(id) ?? toRow(mustRaw(id), loadMetrics);
      };
      const mustRaw = (id: number): RawRow =>
        db.prepare(`${SELECT_LIST} WHERE c.id = ?`).get(id) as unknown as RawRow;
      const out = new Array<ContainerRow>(tuples.length);
      const proto = Object.create(LISTED_PROTO, { rest: { value: rest } });
      for (let i = 0; i < tuples.length; i++) out[i] = listedRow(tuples[i], proto);
      return out;
    },

    async mv(query, path) {
      if (path.trim() === "") {
        throw new UsageError(
          `Missing destination for ${JSON.stringify(query)}: give a folder or a file path`,
        );
      }
      writable();
      const row = mustGet(query);
      const src = requireFile(row, "move");
      let target = resolve(path);
      // "dir/" names a folder: when it is missing, say so (not its parent).
      const folder = isDirectory(target) || /\/$/.test(path) ? target : dirname(target);
      if (!isDirectory(folder)) {
        throw new NotFoundError(`Folder ${JSON.stringify(folder)} does not exist: create it first`);
      }
      if (folder === target) target = join(target, basename(src));
      await relocate(row, target, (image) => {
        db.prepare("UPDATE container SET image = ? WHERE id = ?").run(image, row.id);
      });
      return byId(row.id);
    },

    async rename(query, newName) {
      const row = mustGet(query);
      const bare = removeUri(newName);
      const names = parseImageName(bare, row.version ? { version: row.version } : {});
      if (row.image && !exists(row.image)) requireFile(row, "rename");
      // The file keeps an extension that says what it is (.oci.tar stays .oci.tar).
      let ext: string | undefined;
      if (row.image) {
        const format = await detectStoredFormat(row.image);
        ext = format === "unknown" ? (extensionOf(row.image) ?? "sif") : extensionFor(format);
      }
      const target = row.image ? storagePath(names, storage, ext) : null;
      const coll = collectionName(names);
      try {
        await relocate(row, target ?? "", (image) => {
          const collId = collectionId(coll);
          // The names kept in the metadata follow the new name; everything else stays.
          const metrics = JSON.stringify({
            ...row.metadata,
            collection: names.collection,
            image: names.image,
            tag: names.tag,
            uri: names.uri,
          });
          db.prepare(
            `UPDATE container SET name = ?, tag = ?, collection_id = ?, uri = ?, image = ?, metrics = ?
             WHERE id = ?`,
          ).run(names.image, names.tag, collId, names.uri, image, metrics, row.id);
        });
      } catch (e) {
        if (e instanceof Error && /UNIQUE constraint/.test(e.message)) {
          throw new UsageError(
            `An image named ${
              JSON.stringify(names.uri)
            } is already in the catalog: remove it first or choose another name`,
          );
        }
        throw e;
      }
      return byId(row.id);
    },

    async rm(query) {
      writable();
      const row = mustGet(query);
      const file = row.image;
      if (file) assertNoLinkInside(storage, file, "delete");
      let trash: string | undefined;
      if (file && !exists(file)) {
        log?.warning(`Image file ${JSON.stringify(file)} does not exist; removing the record only`);
      }
      try {
        transaction(() => {
          db.prepare("DELETE FROM container WHERE id = ?").run(row.id);
          if (file && exists(file)) {
            // Renamed aside (not deleted) inside the transaction so a failed commit can put it back.
            trash = tempNameNear(file, "rm");
            Deno.renameSync(file, trash);
          }
        });
      } catch (e) {
        if (trash && file) {
          try {
            Deno.renameSync(trash, file);
          } catch {
            // Best effort.
          }
        }
        throw e;
      }
      if (trash) await Deno.remove(trash);
      if (file && insideStorage(file)) pruneEmpty(storage, dirname(file));
      return trash && file ? { container: row, removedFile: file } : { container: row };
    },

    labels({ key, value }) {
      const k = key?.toLowerCase();
      const v = value?.toLowerCase();
      const rows = db.prepare(`${SELECT_ROWS} ORDER BY c.id`).all() as unknown as RawRow[];
      const hits: LabelHit[] = [];
      for (const r of rows) {
        const row = toRow(r);
        for (const [lk, lv] of metadataLabels(row.metadata)) {
          if (k !== undefined && !lk.toLowerCase().includes(k)) continue;
          if (v !== undefined && !lv.toLowerCase().includes(v)) continue;
          hits.push({ key: lk, value: lv, container: row });
        }
      }
      return hits;
    },

    storagePath(names, ext) {
      return storagePath(names, storage, ext);
    },

    close() {
      if (db.isOpen) db.close();
    },
  };
  return catalog;
}
