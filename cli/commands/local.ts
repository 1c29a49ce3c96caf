/**
 * The local commands: `images`, `inspect`, `get`, `add`, `mv`, `rename`, `rm`, `record` and `labels`.
 * They work on the catalog only (no network). Same names, arguments and output as sregistry-cli,
 * with its bugs fixed: not-found is exit 3 everywhere (the original returned 0 for `mv`/`rename`),
 * `rm` of a file-less record succeeds, `get` without a tag finds other tags, `labels` works, and
 * every command that returns data prints JSON with `--json`.
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import type { App, RunWithApp } from "../app.ts";
import { NotFoundError, UsageError } from "../../core/errors.ts";
import { getUri } from "../../core/names.ts";
import { rowToJson } from "../../db/catalog.ts";
import { recordImage } from "../operations/record.ts";
import { inspectFile, inspectObjects } from "./inspect_file.ts";
import type { ContainerRow, Metadata } from "../../db/types.ts";

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

/** Lay rows out in aligned columns (two spaces apart, the last one unpadded) as one string. */
export function formatTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    for (let i = 0; i < row.length - 1; i++) widths[i] = Math.max(widths[i] ?? 0, row[i].length);
  }
  return rows.map((row) =>
    row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join("  ")
  ).join("\n");
}

/**
 * The `images` table: `Containers:`, a header, then one numbered row per image. Built as one string
 * so 10,000 rows are one write, not 10,000.
 */
export function formatImages(rows: ContainerRow[]): string {
  // The platform column appears only when a row has one, so the original's layout stays otherwise.
  const platforms = rows.some((r) => r.platform);
  const table: string[][] = [[
    "",
    "[date]",
    "[client]",
    ...(platforms ? ["[platform]"] : []),
    "[uri]",
  ]];
  rows.forEach((r, i) =>
    table.push([
      String(i + 1),
      formatDate(r.createdAt),
      `[${r.client}]`,
      ...(platforms ? [r.platform ?? ""] : []),
      r.uri,
    ])
  );
  return `Containers:\n${formatTable(table)}`;
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
    return await (opts.objects ? inspectObjects(app, opts.file) : inspectFile(app, opts.file));
  }
  if (query === undefined) {
    throw new UsageError("Missing image: give a catalog name, or --file <path> for an image file");
  }
  const row = app.catalog().get(query);
  if (!row) throw notFoundError(query);
  if (opts.objects) {
    if (!row.image) throw new NotFoundError(`${row.uri} has no stored file to list objects of`);
    return await inspectObjects(app, row.image);
  }
  app.out.json(rowToJson(row));
}

/**
 * The row `get` prints: one with a file. A record without a file is exit 3 (not an empty line with
 * exit 0), naming its url when it has one.
 * @throws {NotFoundError} when nothing matches or the match has no file.
 */
export function getFile(app: App, query: string): ContainerRow {
  const row = app.catalog().get(query);
  if (!row) throw notFoundError(query);
  if (!row.image) {
    throw new NotFoundError(
      `Image ${JSON.stringify(row.uri)} is a record without a file${
        row.url ? ` (its url is ${row.url})` : ""
      }: pull it to get a file`,
    );
  }
  return row;
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

/** Register the local commands on the program. */
export function registerLocalCommands(program: Command, run: RunWithApp): void {
  program
    .command("images")
    .description("list images in the local catalog (all, or those matching a query)")
    .argument("[query...]", "match name, tag, uri or collection (substring); '*' for all")
    .addHelpText(
      "after",
      `
Examples:
  sregistry images
  sregistry images vsoch          # every image whose name, tag or uri contains "vsoch"
  sregistry images --json | jq '.[].uri'`,
    )
    .action((queries) =>
      run((app) => {
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
      })
    );

  program
    .command("inspect")
    .description("print an image's catalog entry and metadata as JSON, or read any SIF file")
    .argument("[query]", "image name: collection/image[:tag][@version]")
    .option("--file <path>", "read this image file directly (no catalog, no Singularity needed)")
    .option("--objects", "list the SIF header and data objects, like siftool")
    .addHelpText(
      "after",
      `
Examples:
  sregistry inspect vsoch/hello-world
  sregistry inspect vsoch/hello-world:latest@<version> | jq .metrics
  sregistry inspect --file ./hello.sif | jq .labels
  sregistry inspect --file ./hello.sif --objects`,
    )
    .action((query, opts) => run((app) => inspectCommand(app, query, opts)));

  program
    .command("get")
    .description("print the path of an image's file (exit 3 for a record without a file)")
    .argument("<query>", "image name; without a tag any tag matches (latest first, then newest)")
    .addHelpText(
      "after",
      `
Examples:
  singularity run $(sregistry get vsoch/hello-world)
  sregistry get vsoch/hello-world:v1 --json`,
    )
    .action((query) =>
      run((app) => {
        const row = getFile(app, query);
        if (app.json) app.out.json(rowToJson(row));
        else app.out.line(row.image!);
        return Promise.resolve();
      })
    );

  program
    .command("add")
    .description("add an image file to the catalog (moved into storage, or copied with --copy)")
    .argument("<image>", "path of the image file")
    .option("--name <uri>", "the image's name: collection/image[:tag][@version]")
    .option("--copy", "copy the file instead of moving it")
    .option("-f, --force", "replace a different file already stored under this name")
    .option("--metadata <json>", "extra metadata: a JSON object or @file.json")
    .addHelpText(
      "after",
      `
Without @version the version is the file's sha256.

Examples:
  sregistry add hello.sif --name vsoch/hello-world:latest
  sregistry add --copy hello.sif --name vsoch/hello-world:v1 --metadata '{"maintainer": "me"}'`,
    )
    .action((image, opts) =>
      run(async (app) => {
        if (!opts.name) {
          throw new UsageError(
            `Missing --name for ${
              JSON.stringify(image)
            }: give the image a name, like --name vsoch/hello-world:latest`,
          );
        }
        const metadata = await parseMetadataOption(opts.metadata);
        const { container, created } = await app.catalog().add({
          uri: opts.name,
          file: image,
          copy: opts.copy ?? false,
          force: opts.force ?? false,
          metadata,
          client: clientFor(opts.name),
          signal: app.signal,
        });
        app.log.info(`[container][${created ? "new" : "update"}] ${container.uri}`);
        // Interrupted after the commit: the add happened, and the exit code (0) says so.
        if (app.signal.aborted) app.log.info("Interrupted, but the add had already completed");
        printRow(app, container, container.image ?? container.uri);
      })
    );

  program
    .command("mv")
    .description("move an image's file to a folder or a path (the catalog follows)")
    .argument("<name>", "image name")
    .argument("<path>", "an existing folder (the file keeps its name) or a new file path")
    .addHelpText(
      "after",
      `
Examples:
  sregistry mv vsoch/hello-world:latest /data/images/
  sregistry mv vsoch/hello-world:latest /data/images/hello.sif`,
    )
    .action((name, path) =>
      run(async (app) => {
        const before = app.catalog().get(name);
        const row = await app.catalog().mv(name, path);
        app.log.info(`[move] ${before?.image ?? name} => ${row.image}`);
        printRow(app, row, row.image ?? row.uri);
      })
    );

  program
    .command("rename")
    .description("give an image a new name; its file moves within storage, the version is kept")
    .argument("<name>", "image name")
    .argument("<newname>", "the new name: collection/image[:tag]")
    .addHelpText(
      "after",
      `
Examples:
  sregistry rename vsoch/hello-world:latest vsoch/hello:v1`,
    )
    .action((name, newName) =>
      run(async (app) => {
        const before = app.catalog().get(name);
        const row = await app.catalog().rename(name, newName);
        app.log.info(`[rename] ${before?.uri ?? name} => ${row.uri}`);
        printRow(app, row, row.image ?? row.uri);
      })
    );

  program
    .command("rm")
    .description("remove an image from the catalog and delete its file")
    .argument("<image>", "image name; without @version the newest version of the tag")
    .addHelpText(
      "after",
      `
Examples:
  sregistry rm vsoch/hello-world:latest`,
    )
    .action((image) =>
      run(async (app) => {
        const { container, removedFile } = await app.catalog().rm(image);
        app.log.info(`[rm] ${container.uri}`);
        if (app.json) app.out.json({ ...rowToJson(container), removed_file: removedFile ?? null });
        else app.out.line(removedFile ?? container.uri);
      })
    );

  program
    .command("record")
    .description("record an image's metadata (and url) in the catalog without a file")
    .argument("<name>", "image name; a URI scheme (docker://) names the client")
    .option("--url <url>", "where the image can be fetched from")
    .option("--metadata <json>", "metadata: a JSON object or @file.json")
    .addHelpText(
      "after",
      `
Examples:
  sregistry record docker://alpine:3.20          # metadata from the registry, no download
  sregistry record vsoch/hello-world:v1 --url https://example.org/hello.sif
  sregistry record docker://alpine:3.20 --metadata @alpine.json`,
    )
    .action((name, opts) =>
      run(async (app) => {
        const metadata = await parseMetadataOption(opts.metadata);
        const { container, created } = await recordImage(app, name, { url: opts.url, metadata });
        app.log.info(`[container][${created ? "new" : "update"}] ${container.uri}`);
        printRow(app, container, container.uri);
      })
    );

  program
    .command("labels")
    .description("search the labels stored in the catalog by key and/or value")
    .option("-k, --key <key>", "label key contains this (case-insensitive)")
    .option("-v, --value <value>", "label value contains this (case-insensitive)")
    .addHelpText(
      "after",
      `
Examples:
  sregistry labels --key maintainer
  sregistry labels -k org.label-schema -v 1.0 --json`,
    )
    .action((opts) =>
      run((app) => {
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
        return Promise.resolve();
      })
    );
}
