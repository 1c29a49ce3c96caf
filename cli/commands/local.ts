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
import { formatTable } from "../render/table.ts";

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

/**
 * The `images` table: `Containers:`, a header, then one numbered row per image. Built as one string
 * so 10,000 rows are one write, not 10,000; widths come from a first pass, so no row is copied.
 */
export function formatImages(rows: readonly ContainerRow[]): string {
  const n = rows.length;
  // Dates and clients repeat: format and pad each distinct value once, and share the strings.
  const byDay = new Map<string, string>();
  const byClient = new Map<string, string>();
  let dateW = "[date]".length;
  let clientW = "[client]".length;
  // The platform column appears only when a row has one, so the original's layout stays otherwise.
  let platformW = 0;
  for (let i = 0; i < n; i++) {
    const r = rows[i];
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
  for (const [k, v] of byDay) byDay.set(k, v.padEnd(dateW));
  for (const [k, v] of byClient) byClient.set(k, v.padEnd(clientW));
  const numW = String(n).length;
  // Pieces joined once: neither a rope grown with += (slow to flatten) nor one concatenated
  // string per line (20,000 short-lived strings on the way to the one that is written).
  if (platformW) platformW = Math.max(platformW, "[platform]".length);
  const parts = new Array<string>(1 + n * 10);
  parts[0] = `Containers:\n${"".padEnd(numW)}  ${"[date]".padEnd(dateW)}  ${
    "[client]".padEnd(clientW)
  }  ${platformW ? `${"[platform]".padEnd(platformW)}  ` : ""}[uri]`;
  let p = 1;
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    parts[p++] = "\n";
    parts[p++] = String(i + 1).padEnd(numW);
    parts[p++] = "  ";
    parts[p++] = byDay.get(r.createdAt.slice(0, 10))!;
    parts[p++] = "  ";
    parts[p++] = byClient.get(r.client)!;
    parts[p++] = "  ";
    if (platformW) {
      parts[p++] = (r.platform ?? "").padEnd(platformW);
      parts[p++] = "  ";
    }
    parts[p++] = r.uri;
  }
  parts.length = p;
  return parts.join("");
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

/** `images [query...]`: the catalog listing, as one write. */
export function imagesCommand(app: App, queries: string[]): Promise<void> {
  const rows = app.catalog().images(queries);
  if (app.json) {
    app.out.json(rows.map((r) => rowToJson(r, false)));
  } else if (rows.length) {
    app.out.line(formatImages(rows));
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
  opts: { url?: string; metadata?: string },
): Promise<void> {
  const metadata = await parseMetadataOption(opts.metadata);
  // Loaded here: the client side of record (and the store step) is not needed by images or get.
  const { recordImage } = await import("../operations/record.ts");
  const { container, created } = await recordImage(app, name, { url: opts.url, metadata });
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
