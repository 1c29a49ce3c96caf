/**
 * The local commands: `images`, `inspect`, `get`, `add`, `mv`, `rename`, `rm`, `record` and `labels`.
 * They work on the catalog only (no network). Same names, arguments and output as sregistry-cli,
 * with its bugs fixed: not-found is exit 3 everywhere (the original returned 0 for `mv`/`rename`),
 * `rm` of a file-less record succeeds, `get` without a tag finds other tags, `labels` works, and
 * every command that returns data prints JSON with `--json`.
 * @module
 */

import type { App } from "../app.ts";
import { NotFoundError, SregistryError, UsageError } from "../../core/errors.ts";
import type { Client } from "../../clients/types.ts";
import { getUri } from "../../core/names.ts";
import { rowToJson } from "../../db/catalog.ts";
import type { ContainerRow, Metadata } from "../../db/types.ts";
import { cut, fitWidths, formatTable } from "../render/table.ts";
import { parseTemplate } from "../render/template.ts";

export { formatTable };

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/** `YYYY-MM-DD HH:MM:SS` as the original's `%B %d, %Y` (`November 21, 2026`); "" when unknown. */
export function formatDate(createdAt: string): string {
  const m = Number(createdAt.slice(5, 7));
  if (!createdAt || !(m >= 1 && m <= 12)) return createdAt;
  return `${MONTHS[m - 1]} ${createdAt.slice(8, 10)}, ${createdAt.slice(0, 4)}`;
}

/** A version or digest that is a long hex hash (sha256), which short listings cut. */
const LONG_HEX = /^(sha256:)?[0-9a-f]{13,}$/;

/** The short form of a version or digest: 12 hex characters, as docker shows image ids. */
export function shortVersion(version: string): string {
  if (!LONG_HEX.test(version)) return version;
  return version.startsWith("sha256:") ? `sha256:${version.slice(7, 19)}` : version.slice(0, 12);
}

/**
 * A uri with its version cut to 12 hex characters when it is a hash (others are kept). It reads the
 * uri alone: listing rows load their other fields, for every row at once, on first use (db/).
 */
export function shortUri(uri: string): string {
  const at = uri.lastIndexOf("@");
  if (at < 0 || uri.length - at - 1 <= 12) return uri;
  const start = uri.startsWith("sha256:", at + 1) ? at + 8 : at + 1;
  // One slice of the uri and no copies: this runs for each of 10,000 rows in a listing.
  HEX_TAIL.lastIndex = start;
  return HEX_TAIL.test(uri) ? uri.slice(0, start + 12) : uri;
}

/** 13 or more hex characters up to the end, matched from `lastIndex`. */
const HEX_TAIL = /[0-9a-f]{13,}$/y;

/** A hash version at the end of a line, its first 12 hex characters captured (with `sha256:`). */
const HASH_AT_END = /@((?:sha256:)?[0-9a-f]{12})[0-9a-f]+$/gm;

/** Options of {@link formatImages}. */
export interface ImagesTableOptions {
  /** Cut hash versions to 12 characters (default false: full uris). */
  trunc?: boolean;
  /** Fit lines to this many columns, cutting the widest column with `…` (default: no limit). */
  width?: number;
}

/**
 * The `images` table: `Containers:`, a header, then one numbered row per image. Built as one string
 * so 10,000 rows are one write, not 10,000; widths come from a first pass, so no row is copied.
 */
export function formatImages(
  rows: readonly ContainerRow[],
  options: ImagesTableOptions = {},
): string {
  const n = rows.length;
  // Dates and clients repeat: format and pad each distinct value once, and share the strings.
  const byDay = new Map<string, string>();
  const byClient = new Map<string, string>();
  let dateW = "[date]".length;
  let clientW = "[client]".length;
  let uriW = "[uri]".length;
  // Uris are measured (and cut one by one) only to fit a width; else hashes are cut in one pass.
  const uris = options.width === undefined ? undefined : new Array<string>(n);
  // The platform column appears only when a row has one, so the original's layout stays otherwise.
  let platformW = 0;
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    if (uris) {
      const uri = options.trunc ? shortUri(r.uri) : r.uri;
      uris[i] = uri;
      if (uri.length > uriW) uriW = uri.length;
    }
    if (r.platform && r.platform.length > platformW) platformW = r.platform.length;
    const day = r.createdAt.slice(0, 10);
    if (!byDay.has(day)) {
      const d = formatDate(r.createdAt);
      byDay.set(day, d);
      if (d.length > dateW) dateW = d.length;
    }
    if (!byClient.has(r.client)) {
      const c = `[${r.client}]`;
      byClient.set(r.client, c);
      if (c.length > clientW) clientW = c.length;
    }
  }
  const numW = String(n).length;
  if (platformW) platformW = Math.max(platformW, "[platform]".length);
  // Columns: number, date, client, [platform,] uri; the widest is cut to fit the width.
  const widths = platformW ? [numW, dateW, clientW, platformW, uriW] : [numW, dateW, clientW, uriW];
  const fitted = fitWidths(widths, options.width);
  const cutAt = fitted.findIndex((w, i) => w < widths[i]);
  const last = widths.length - 1;
  const fit = (col: number, text: string) => col === cutAt ? cut(text, fitted[col]) : text;
  const cell = (col: number, text: string) => fit(col, text).padEnd(fitted[col]);
  for (const [k, v] of byDay) byDay.set(k, cell(1, v));
  for (const [k, v] of byClient) byClient.set(k, cell(2, v));
  // Pieces joined once: neither a rope grown with += (slow to flatten) nor one concatenated
  // string per line (20,000 short-lived strings on the way to the one that is written).
  const parts = new Array<string>(1 + n * 10);
  parts[0] = `Containers:\n${cell(0, "")}  ${cell(1, "[date]")}  ${cell(2, "[client]")}  ${
    platformW ? `${cell(3, "[platform]")}  ` : ""
  }${fit(last, "[uri]")}`;
  let p = 1;
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    parts[p++] = "\n";
    parts[p++] = cell(0, String(i + 1));
    parts[p++] = "  ";
    parts[p++] = byDay.get(r.createdAt.slice(0, 10))!;
    parts[p++] = "  ";
    parts[p++] = byClient.get(r.client)!;
    parts[p++] = "  ";
    if (platformW) {
      parts[p++] = cell(3, r.platform ?? "");
      parts[p++] = "  ";
    }
    parts[p++] = !uris ? r.uri : cutAt === last ? cut(uris[i], fitted[last]) : uris[i];
  }
  parts.length = p;
  const text = parts.join("");
  // The uri is the last column: one native replace over the text beats 10,000 calls of shortUri.
  return options.trunc && !uris ? text.replace(HASH_AT_END, "@$1") : text;
}

/** Sizes as docker prints them: decimal units, three significant digits (`7.8MB`, `11B`). */
export function humanSize(bytes: number | null): string {
  if (bytes === null || !Number.isFinite(bytes)) return "";
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${Number(v.toPrecision(3))}${units[u]}`;
}

/** The fields `images --format` knows, in the order help lists them. */
export const IMAGE_FIELDS = [
  "Name",
  "Collection",
  "Tag",
  "Version",
  "Digest",
  "Uri",
  "Size",
  "Bytes",
  "Created",
  "Client",
  "Platform",
  "Path",
  "Url",
  "ID",
] as const;

/** The body of `--format table` with nothing after it. */
const DEFAULT_FORMAT = "{{.Name}}\t{{.Tag}}\t{{.Version}}\t{{.Size}}\t{{.Created}}\t{{.Client}}";

/** One `images --format` field of a row; hashes cut to 12 characters when `trunc`. */
export function imageField(r: ContainerRow, field: string, trunc: boolean): string {
  const short = (v: string) => trunc ? shortVersion(v) : v;
  switch (field) {
    case "Name":
      return `${r.collection}/${r.name}`;
    case "Collection":
      return r.collection;
    case "Tag":
      return r.tag;
    case "Version":
      return short(r.version);
    case "Digest":
      return r.digest ? short(r.digest) : "";
    case "Uri":
      return trunc ? shortUri(r.uri) : r.uri;
    case "Size":
      return humanSize(r.size);
    case "Bytes":
      return r.size === null ? "" : String(r.size);
    case "Created":
      return r.createdAt;
    case "Client":
      return r.client;
    case "Platform":
      return r.platform ?? "";
    case "Path":
      return r.image ?? "";
    case "Url":
      return r.url ?? "";
    case "ID":
      return String(r.id);
    default:
      return "";
  }
}

/**
 * Parse `--metadata`: inline JSON, or `@file` with JSON in it. Must be an object.
 * @throws {UsageError} for unreadable files, bad JSON or non-objects, quoting the value.
 */
export async function parseMetadataOption(
  value: string | undefined,
): Promise<Metadata | undefined> {
  if (value === undefined) return undefined;
  let text = value;
  if (value.startsWith("@")) {
    try {
      text = await Deno.readTextFile(value.slice(1));
    } catch (e) {
      throw new UsageError(
        `Cannot read the metadata file ${JSON.stringify(value.slice(1))}: ${(e as Error).message}`,
      );
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(
      `--metadata ${
        JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)
      } is not JSON: give a JSON object or @file.json`,
    );
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new UsageError(`--metadata must be a JSON object, like '{"maintainer": "me"}'`);
  }
  return parsed as Metadata;
}

/** The client recorded for a name given on the command line: its URI scheme, else `local`. */
export function clientFor(name: string): string {
  return getUri(name) ?? "local";
}

/** Options of {@link inspectCommand}. */
export interface InspectOptions {
  /** Read this image file directly instead of a catalog entry. */
  file?: string;
  /** List the SIF's header and data objects instead of the metadata. */
  objects?: boolean;
}

/**
 * `inspect <query>`: the row as JSON (sregistry-cli's field names plus size and digest). Unlike the
 * original it does not print the path line first, so the output is valid JSON.
 * @throws {NotFoundError} when nothing matches.
 */
export async function inspectCommand(
  app: App,
  query: string | undefined,
  opts: InspectOptions = {},
): Promise<void> {
  if (opts.file !== undefined) {
    // The SIF reader loads only when an image file is read.
    const { inspectFile, inspectObjects } = await import("./inspect_file.ts");
    return await (opts.objects ? inspectObjects(app, opts.file) : inspectFile(app, opts.file));
  }
  if (query === undefined) {
    throw new UsageError("Missing image: give a catalog name, or --file <path> for an image file");
  }
  const row = app.catalog().get(query);
  if (!row) throw notFoundError(query);
  if (opts.objects) {
    if (!row.image) throw new NotFoundError(`${row.uri} has no stored file to list objects of`);
    const { inspectObjects } = await import("./inspect_file.ts");
    return await inspectObjects(app, row.image);
  }
  app.out.json(rowToJson(row));
}

function notFoundError(query: string): NotFoundError {
  return new NotFoundError(
    `Image ${JSON.stringify(query)} is not in the catalog: see "sregistry images" for what is`,
  );
}

function printRow(app: App, row: ContainerRow, text: string): void {
  if (app.json) app.out.json(rowToJson(row));
  else app.out.line(text);
}

/** Options of {@link imagesCommand}. */
export interface ImagesOptions {
  /** `--no-trunc`: full versions and digests, no column cut to the width (default: 12 characters). */
  noTrunc?: boolean;
  /** `--format`: a template of fields (`{{.Name}}:{{.Tag}}`, `table ...`, `{{json .}}`). */
  format?: string;
}

/** `images [query...]`: the catalog listing, as one write. */
export function imagesCommand(
  app: App,
  queries: string[],
  opts: ImagesOptions = {},
): Promise<void> {
  const trunc = !opts.noTrunc;
  // --no-trunc cuts nothing, as docker's: not the hashes, nor a column to fit the width.
  const width = trunc ? app.columns() : undefined;
  // A bad template is a usage error before the catalog is opened.
  const template = opts.format !== undefined && !app.json
    ? parseTemplate(opts.format, IMAGE_FIELDS, DEFAULT_FORMAT)
    : undefined;
  const rows = app.catalog().images(queries);
  if (app.json) {
    app.out.json(rows.map((r) => rowToJson(r, false)));
  } else if (template) {
    if (rows.length || template.table) {
      app.out.line(template.render(
        rows,
        (r, f) => imageField(r, f, trunc),
        (r) => rowToJson(r, false),
        { maxWidth: width },
      ));
    }
  } else if (rows.length) {
    app.out.line(formatImages(rows, { trunc, width }));
  } else {
    app.log.info(
      queries.length ? `No images match ${queries.join(", ")}` : "No images in the catalog",
    );
  }
  return Promise.resolve();
}

/**
 * `get <query>`: the path of the image's file. A record without a file is exit 3 (not an empty line
 * with exit 0), naming its url when it has one.
 * @throws {NotFoundError} when nothing matches or the match has no file.
 */
export function getCommand(app: App, query: string): Promise<void> {
  const row = app.catalog().get(query);
  if (!row) throw notFoundError(query);
  if (!row.image) {
    throw new NotFoundError(
      `Image ${JSON.stringify(row.uri)} is a record without a file${
        row.url ? ` (its url is ${row.url})` : ""
      }: pull it to get a file`,
    );
  }
  if (app.json) app.out.json(rowToJson(row));
  else app.out.line(row.image);
  return Promise.resolve();
}

/** `add <image> --name <uri>`: move (or copy) a file into storage and the catalog. */
export async function addCommand(
  app: App,
  image: string,
  opts: { name?: string; copy?: boolean; force?: boolean; metadata?: string },
): Promise<void> {
  if (!opts.name) {
    throw new UsageError(
      `Missing --name for ${
        JSON.stringify(image)
      }: give the image a name, like --name vsoch/hello-world:latest`,
    );
  }
  const metadata = await parseMetadataOption(opts.metadata);
  const name = opts.name;
  const { container, created } = await app.catalog().add({
    uri: name,
    file: image,
    copy: opts.copy ?? false,
    force: opts.force ?? false,
    metadata,
    client: clientFor(name),
    signal: app.signal,
  }).catch((e) => {
    // Interrupted before the commit: the catalog rolled the add back (and put the file back).
    if (app.signal.aborted) {
      app.log.info(`Interrupted: ${name} was not added; the catalog and ${image} are unchanged`);
    }
    throw e;
  });
  app.log.info(`[container][${created ? "new" : "update"}] ${container.uri}`);
  // Interrupted after the commit: the add happened, and the exit code (0) says so.
  if (app.signal.aborted) app.log.info("Interrupted, but the add had already completed");
  printRow(app, container, container.image ?? container.uri);
}

/** `mv <name> <path>`: move an image's file; the catalog follows. */
export async function mvCommand(app: App, name: string, path: string): Promise<void> {
  const before = app.catalog().get(name);
  const row = await app.catalog().mv(name, path);
  app.log.info(`[move] ${before?.image ?? name} => ${row.image}`);
  printRow(app, row, row.image ?? row.uri);
}

/** `rename <name> <newname>`. */
export async function renameCommand(app: App, name: string, newName: string): Promise<void> {
  const before = app.catalog().get(name);
  const row = await app.catalog().rename(name, newName);
  app.log.info(`[rename] ${before?.uri ?? name} => ${row.uri}`);
  printRow(app, row, row.image ?? row.uri);
}

/** `rm <image>`: remove the row and its file. */
export async function rmCommand(app: App, image: string): Promise<void> {
  const { container, removedFile } = await app.catalog().rm(image);
  app.log.info(`[rm] ${container.uri}`);
  if (app.json) app.out.json({ ...rowToJson(container), removed_file: removedFile ?? null });
  else app.out.line(removedFile ?? container.uri);
}

/** `record <name> [--url] [--metadata]`: a row without a file. */
export async function recordCommand(
  app: App,
  name: string,
  opts: { url?: string; metadata?: string; platform?: string },
): Promise<void> {
  const metadata = await parseMetadataOption(opts.metadata);
  // Loaded here: the client side of record (and the store step) is not needed by images or get.
  const { recordImage } = await import("../operations/record.ts");
  const { container, created } = await recordImage(app, name, {
    url: opts.url,
    metadata,
    platform: opts.platform,
  });
  app.log.info(`[container][${created ? "new" : "update"}] ${container.uri}`);
  printRow(app, container, container.uri);
}

/** `labels [-k key] [-v value]`. */
export async function labelsCommand(
  app: App,
  opts: { key?: string; value?: string },
): Promise<void> {
  // With a client that searches labels server-side active (registry), ask it instead.
  let remote: { client: { name: string; labels?: unknown } } | undefined;
  try {
    remote = app.getClient();
  } catch (e) {
    // An app built without the client registry (library use, tests) searches the catalog.
    if (e instanceof SregistryError) throw e;
  }
  if (remote && typeof remote.client.labels === "function") {
    const found = await (remote.client as Required<Pick<Client, "labels">>).labels({
      key: opts.key,
      value: opts.value,
    });
    const rows = found.flatMap((h) => {
      const uris = Array.isArray(h.containers) ? h.containers.map(String) : [""];
      return uris.map((uri) => ({ key: String(h.key ?? ""), value: String(h.value ?? ""), uri }));
    });
    if (app.json) app.out.json(rows.map((r) => ({ ...r, client: remote.client.name })));
    else if (rows.length) {
      app.out.line(
        formatTable([["[key]", "[value]", "[uri]"], ...rows.map((r) => [r.key, r.value, r.uri])]),
      );
    } else app.log.info("No labels match");
    return;
  }
  const hits = app.catalog().labels({ key: opts.key, value: opts.value });
  if (app.json) {
    app.out.json(
      hits.map((h) => ({
        key: h.key,
        value: h.value,
        uri: h.container.uri,
        id: h.container.id,
      })),
    );
  } else if (hits.length) {
    app.out.line(
      formatTable([
        ["[key]", "[value]", "[uri]"],
        ...hits.map((h) => [h.key, h.value, h.container.uri]),
      ]),
    );
  } else {
    app.log.info("No labels match");
  }
}
