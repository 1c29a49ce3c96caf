/**
 * The catalog's public types: the contract between the catalog (db/) and the commands and clients.
 * @module
 */

import type { ParsedName } from "../core/names.ts";

/** Image metadata as stored in the `metrics` column (a JSON object). */
export type Metadata = Record<string, unknown>;

/** One row of the `container` table, with its collection name joined in. */
export interface ContainerRow {
  /** Row id. */
  id: number;
  /** The collection's name. */
  collection: string;
  /** The collection's row id. */
  collectionId: number;
  /** Image name. */
  name: string;
  /** Tag. */
  tag: string;
  /** Version (sha256 of the file, or the remote's version); "" when unknown. */
  version: string;
  /** Absolute path of the stored file, or null for a record without a file. */
  image: string | null;
  /** The remote URL the image came from, or null. */
  url: string | null;
  /** `collection/name:tag[@version]`. */
  uri: string;
  /** The client that added the image. */
  client: string;
  /** `YYYY-MM-DD HH:MM:SS` (UTC). */
  createdAt: string;
  /** The stored metadata. */
  metadata: Metadata;
  /** File size in bytes, when known (migration 1). */
  size: number | null;
  /** `sha256:<hex>` of the file, when known (migration 1). */
  digest: string | null;
  /** `os/arch[/variant]` of a pulled image, when known (migration 3). */
  platform: string | null;
}

/** Options of {@link Catalog.add}. */
export interface AddOptions {
  /** The image name (`collection/image:tag[@version]`, a URI prefix is removed). */
  uri: string;
  /** The file to store; omit for a record without a file. */
  file?: string;
  /** Copy instead of move. */
  copy?: boolean;
  /** A custom destination path instead of the storage tree. */
  dest?: string;
  /** The remote URL (none is invented when missing). */
  url?: string;
  /** Metadata from the caller (kept, unlike the original); merged over the image's own metadata. */
  metadata?: Metadata;
  /** The client name recorded in the row. */
  client: string;
  /** An interrupt before the commit rolls the add back (InterruptedError); after it, it is done. */
  signal?: AbortSignal;
  /** sha256 hex of the file when the caller already computed it (transfers do). */
  sha256?: string;
  /** Replace an existing stored file. */
  force?: boolean;
  /** `os/arch[/variant]` of the image, when known. */
  platform?: string;
  /** Extension of the stored file (`oci.tar`); by default it follows the file's detected format. */
  ext?: string;
}

/** The result of {@link Catalog.add}. */
export interface AddResult {
  /** The row after the change. */
  container: ContainerRow;
  /** True for a new row, false for an update. */
  created: boolean;
}

/** One hit of {@link Catalog.labels}. */
export interface LabelHit {
  /** The label key. */
  key: string;
  /** The label value as text. */
  value: string;
  /** The image carrying it. */
  container: ContainerRow;
}

/** The local catalog: the SQLite database plus the storage tree. */
export interface Catalog {
  /** The database file. */
  readonly path: string;
  /** The storage root. */
  readonly storage: string;
  /** Add (or update) an image, moving or copying its file into storage in one transaction. */
  add(options: AddOptions): Promise<AddResult>;
  /** Add a metadata-only record (no file). */
  record(options: Omit<AddOptions, "file" | "copy" | "dest" | "ext">): Promise<AddResult>;
  /**
   * The best match for a name (without a tag: any tag, `latest` first; among platform variants:
   * `platform`, default this machine's; then the newest), or undefined.
   */
  get(query: string, options?: { platform?: string }): ContainerRow | undefined;
  /** Rows matching any query (`""` or `"*"` is all), with the original's match rules. */
  images(queries?: string[]): ContainerRow[];
  /** Move an image's file to a path (a folder keeps the file name). */
  mv(query: string, path: string): Promise<ContainerRow>;
  /** Rename an image (a new name, not a path); its file moves within storage. */
  rename(query: string, newName: string): Promise<ContainerRow>;
  /** Remove an image's row and file; returns the row and the removed file, if there was one. */
  rm(query: string): Promise<{ container: ContainerRow; removedFile?: string }>;
  /** Search stored labels by key and/or value (substring, case-insensitive). */
  labels(options: { key?: string; value?: string }): LabelHit[];
  /** Where an image with these names is stored (extension `sif` unless given). */
  storagePath(names: ParsedName, ext?: string): string;
  /** Close the database. */
  close(): void;
}
