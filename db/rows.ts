/**
 * Rows of the `container` table: the columns read, the conversion to {@link ContainerRow}, the JSON
 * shape commands print, and the small SQL helpers the queries share.
 * @module
 */

import { stripUserinfo, stripUserinfoDeep } from "./_userinfo.ts";
import type { ParsedName } from "../core/names.ts";
import type { ContainerRow, Metadata } from "./types.ts";
import { withEnvironment } from "./metadata_shape.ts";

/** A row as node:sqlite returns it. */
export interface RawRow {
  /** Row id. */
  id: number;
  /** `created_at`. */
  created_at: string | null;
  /** `metrics` (only when selected). */
  metrics?: string | null;
  /** `name`. */
  name: string;
  /** `tag`. */
  tag: string;
  /** `image`. */
  image: string | null;
  /** `url`. */
  url: string | null;
  /** `uri`. */
  uri: string | null;
  /** `client`. */
  client: string;
  /** `version`. */
  version: string | null;
  /** `collection_id`. */
  collection_id: number;
  /** `size` (migration 1). */
  size: number | null;
  /** `digest` (migration 1). */
  digest: string | null;
  /** `platform` (migration 3). */
  platform: string | null;
  /** The joined collection name. */
  collection: string | null;
}

const COLUMNS = `c.id, c.created_at, c.name, c.tag, c.image, c.url, c.uri, c.client, c.version,
  c.collection_id, c.size, c.digest, c.platform, k.name AS collection`;
const FROM = "FROM container c LEFT JOIN collection k ON k.id = c.collection_id";
/** Every column, metrics included. */
export const SELECT_ROWS = `SELECT c.metrics, ${COLUMNS} ${FROM}`;
/** Every column but metrics, which is the bulk of a row: listings load it only when asked. */
export const SELECT_LIST = `SELECT ${COLUMNS} ${FROM}`;

/** The columns `images` prints (id, date, client, uri, platform), the uri built as toRow builds it. */
export const SELECT_LISTING = `SELECT c.id, c.created_at, c.client,
  COALESCE(k.name, '') || '/' || c.name || ':' || c.tag ||
  CASE WHEN c.version IS NOT NULL AND c.version != '' THEN '@' || c.version ELSE '' END,
  c.platform ${FROM}`;

/** One listing row as node:sqlite returns it with arrays on. */
export type ListingTuple = [
  id: number,
  createdAt: string | null,
  client: string,
  uri: string,
  platform: string | null,
];

const LAZY_FIELDS = [
  "collection",
  "collectionId",
  "name",
  "tag",
  "version",
  "image",
  "url",
  "metadata",
  "size",
  "digest",
] as const;

/** The prototype of listing rows: the fields `images` does not print come from `rest(id)`. */
export const LISTED_PROTO: object = Object.create(
  Object.prototype,
  Object.fromEntries(LAZY_FIELDS.map((k) => [k, {
    enumerable: true,
    get(this: { id: number; rest: (id: number) => ContainerRow }) {
      return this.rest(this.id)[k];
    },
  }])),
);

/** A listing row: the printed fields now, the others from `rest(id)` when first asked. */
export function listedRow(t: ListingTuple, proto: object): ContainerRow {
  const row = Object.create(proto);
  row.id = Number(t[0]);
  row.createdAt = t[1] ?? "";
  row.client = t[2];
  row.uri = t[3];
  row.platform = t[4] ?? null;
  return row;
}

/**
 * The collection name a parsed name is catalogued under: the collection, prefixed by the registry
 * when there is one, so `docker.io/library/ubuntu` and `library/ubuntu` stay different images
 * (the original dropped the registry and mixed them up).
 */
export function collectionName(names: ParsedName): string {
  const collection = names.collection || "library";
  return names.registry ? `${names.registry}/${collection}` : collection;
}

/** `created_at` as SQLAlchemy's `func.now()` writes it in SQLite: UTC `YYYY-MM-DD HH:MM:SS`. */
export function sqlTimestamp(date: Date): string {
  return date.toISOString().slice(0, 19).replace("T", " ");
}

/** Parse a stored `metrics` value; rows from other writers may hold anything. */
export function parseMetrics(text: string | null | undefined): Metadata {
  if (!text) return {};
  try {
    const v = JSON.parse(text);
    return v && typeof v === "object" && !Array.isArray(v) ? v : { value: v };
  } catch {
    return { raw: text };
  }
}

/** A `LIKE` pattern matching `q` as a literal substring. */
export function escapeLike(q: string): string {
  return `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A raw row as a {@link ContainerRow}; metrics are parsed (or loaded) on first use. */
export function toRow(r: RawRow, loadMetrics?: (id: number) => string | null): ContainerRow {
  const version = r.version ?? "";
  const collection = r.collection ?? "";
  let metadata: Metadata | undefined;
  const metrics = r.metrics;
  return {
    id: Number(r.id),
    collection,
    collectionId: Number(r.collection_id),
    name: r.name,
    tag: r.tag,
    version,
    image: r.image,
    // Rows written by sregistry-cli may hold `user:PASS@` in URLs: never shown.
    url: r.url === null ? null : stripUserinfo(r.url),
    // Rebuilt like the original's Container.get_uri(): the stored column may lack the version.
    uri: `${collection}/${r.name}:${r.tag}${version ? `@${version}` : ""}`,
    client: r.client,
    createdAt: r.created_at ?? "",
    // Parsed on first use: listing 10,000 images should not parse 10,000 JSON documents.
    get metadata(): Metadata {
      return metadata ??= stripUserinfoDeep(parseMetrics(
        metrics === undefined ? loadMetrics?.(Number(r.id)) : metrics,
      ));
    },
    size: r.size === null || r.size === undefined ? null : Number(r.size),
    digest: r.digest,
    platform: r.platform ?? null,
  };
}

/**
 * The JSON shape of a row: sregistry-cli's `inspect` field names plus `size`, `digest` and
 * `platform`. Metrics written with the older `env` list also show it as `environment`.
 */
export function rowToJson(row: ContainerRow, withMetrics = true): Record<string, unknown> {
  const out: Record<string, unknown> = {
    client: row.client,
    collection: row.collection,
    collection_id: row.collectionId,
    created_at: row.createdAt,
    digest: row.digest,
    id: row.id,
    image: row.image,
  };
  if (withMetrics) out.metrics = withEnvironment(row.metadata);
  Object.assign(out, {
    name: row.name,
    platform: row.platform,
    size: row.size,
    tag: row.tag,
    uri: row.uri,
    url: row.url,
    version: row.version,
  });
  return out;
}
