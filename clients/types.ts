/**
 * The shape of a client (a backend): a factory registered under a URI scheme that builds a plain
 * object with optional capabilities. A capability exists when its method does.
 * @module
 */

import type { Http } from "../core/http.ts";
import type { Logger } from "../core/log.ts";
import type { ClientSettings } from "../core/client_settings.ts";
import type { CredentialStore } from "../core/credentials.ts";
import type { Exec } from "../core/exec.ts";
import type { Poll } from "../core/poll.ts";
import type { ProgressSink } from "../core/progress_events.ts";
import type { Env, Settings } from "../core/settings.ts";
import type { Thumbnail } from "../core/thumbnail.ts";
import type { Catalog, Metadata } from "../db/types.ts";

export type { ClientSettings, CredentialStore, Exec, Poll, Thumbnail };

/** A setting a client reads (documented in `sregistry backend ls <client>` and docs/). */
export interface SettingDoc {
  /** Full variable name, e.g. `SREGISTRY_S3_BASE`. */
  name: string;
  /** What it does. */
  description: string;
  /** Default value, if any. */
  default?: string;
  /** Whether it is a credential (never printed). */
  secret?: boolean;
  /** Whether the client cannot work without it. */
  required?: boolean;
}

/**
 * Where a client writes a pull, chosen by the core (cli/operations/pull.ts). The client writes the
 * finished file exactly at `path` and nowhere else; it never decides file names, never touches the
 * catalog and never checks `--force`. The core removes `path` when the pull fails.
 */
export interface PullTarget {
  /**
   * The staging file, unique to this process (`<storage>/.staging/<name>.<pid>-<random>.partial-pull`,
   * or next to the `--no-cache` destination), on the filesystem of the final place so the store
   * step's rename is atomic.
   */
  path: string;
  /**
   * A path that stays the same across runs for this image (inside the same folder as `path`). A
   * client whose transfer resumes (core/transfer keeps `<dest>.partial`) may download here and then
   * rename the result to `path`, so an interrupted pull continues where it stopped. It is kept on
   * failure for that reason; a client that does not resume ignores it.
   */
  resumable: string;
  /** Platform wanted for multi-platform images, `os/arch[/variant]` (default: this machine's). */
  platform?: string;
}

/** What a file a client fetched is. */
export type PulledFormat = "sif" | "oci-archive" | "squashfs" | "ext3" | "unknown";

/** What a client knows about a remote image without downloading it ({@link Client.record}). */
export interface RemoteRecord {
  /** The remote URL it can be fetched from (a manifest or file URL). */
  url?: string;
  /** `sha256:<hex>` of the file, when the remote tells it. */
  digest?: string;
  /** Size in bytes, when known. */
  size?: number;
  /** Metadata for the catalog (labels in a `labels` object, environment as `environment`). */
  metadata?: Metadata;
  /**
   * The catalog name the client suggests: `[registry/]collection/image:tag[@version]`. A pull by
   * digest carries it as the version (`library/alpine:digest@<hex>`).
   */
  suggestedName: string;
  /** The platform of the image, `os/arch[/variant]`, when the remote says. */
  platform?: string;
  /** The format of the file the remote holds, when known. */
  format?: PulledFormat;
}

/** The outcome of {@link Client.pull}: the file at {@link PullTarget.path} and what it is. */
export interface PulledImage extends RemoteRecord {
  /** The file written (always the target's `path`). */
  file: string;
  /** What the file is; the store step detects it again when "unknown". */
  format: PulledFormat;
  /** `sha256:<hex>` of the file. */
  digest: string;
  /** Size in bytes of the file. */
  size: number;
}

/** Options of {@link Client.push}. */
export interface PushOptions {
  /** The remote name (`collection/image:tag`, URI prefix removed). */
  name: string;
  /** Overrides the tag of `name`. */
  tag?: string;
  /** `--force`: create what the remote lacks (a bucket) without asking. */
  force?: boolean;
  /**
   * `--platform` (or `--arch`), `os/arch[/variant]`: the platform a remote that records one (library
   * tags, an OCI index) files the image under. Unset: the image's own, else this machine's.
   */
  platform?: string;
}

/** Options of {@link Client.record}. */
export interface RecordOptions {
  /**
   * `--platform` (or `--arch`), `os/arch[/variant]`: which image of a multi-platform name
   * (default: this machine's).
   */
  platform?: string;
}

/** Options of {@link Client.delete}. */
export interface DeleteOptions {
  /** `--force`: the user confirmed nothing; do not ask, name what else goes in a warning. */
  force?: boolean;
  /** `--platform` (or `--arch`): which image of a multi-platform name (default: this machine's). */
  platform?: string;
}

/** The outcome of a push. */
export interface PushResult {
  /** Where the image now lives remotely. */
  url: string;
  /** `sha256:<hex>` of what was uploaded. */
  digest?: string;
  /** Size in bytes. */
  size?: number;
}

/** Options of {@link Client.search}. */
export interface SearchOptions {
  /** `search --endpoint`: the server (registry) or endpoint (globus) to search instead of the default. */
  endpoint?: string;
}

/** One search hit. */
export interface SearchHit {
  /** The name to pull it by (with URI). */
  uri: string;
  /** Extra columns (tag, size, date...). */
  details?: Record<string, string | number | undefined>;
}

/** A backend. Only `name` is required; every capability is optional. */
export interface Client {
  /** The client's name (its scheme). */
  readonly name: string;
  /** Download an image to `into.path` and say what it is; the core stores it. */
  pull?(image: string, into: PullTarget): Promise<PulledImage>;
  /** Upload a local file. */
  push?(path: string, options: PushOptions): Promise<PushResult>;
  /** List remote images matching a query (all when undefined). */
  search?(query: string | undefined, options?: SearchOptions): Promise<SearchHit[]>;
  /** A remote image's metadata, without downloading it; the core stores a file-less row. */
  record?(image: string, options?: RecordOptions): Promise<RemoteRecord>;
  /**
   * Delete a remote image. The CLI has confirmed the deletion (or got --force); ask `ctx.prompt`
   * again before removing more than `image` names (other tags), unless `force`.
   */
  delete?(image: string, options: DeleteOptions): Promise<DeleteResult | void>;
  /** Share a remote image with someone. */
  share?(image: string, options: { shareTo?: string }): Promise<string>;
  /**
   * Build an image remotely. With `preview`, return what would be built without building; with
   * `watch`, resume watching the build of that id. A result's `built` (a {@link BuiltImage}) is
   * recorded in the catalog by the CLI.
   */
  build?(recipe: string, options: BuildOptions): Promise<Metadata>;
  /** Remote label search. */
  labels?(options: { key?: string; value?: string }): Promise<Metadata[]>;
}

/**
 * The optional methods of a {@link Client}, each run by the command of the same name, in the order
 * help and the README's table list them. A capability exists when its method does.
 */
export const CAPABILITIES = [
  "pull",
  "push",
  "search",
  "record",
  "delete",
  "share",
  "build",
  "labels",
] as const;

/** One optional method of a {@link Client}. */
export type Capability = typeof CAPABILITIES[number];

/** The capabilities `client` has, in {@link CAPABILITIES} order. */
export function capabilitiesOf(client: Client): Capability[] {
  return CAPABILITIES.filter((c) => typeof client[c] === "function");
}

/** Options of {@link Client.build}. */
export interface BuildOptions {
  /** The image name (`--name`, URI removed). */
  name: string;
  /** Builder-specific arguments after the recipe. */
  extra: string[];
  /** `--preview`: show the build configuration, do not build. */
  preview?: boolean;
  /** `--watch <id>`: resume watching a build that was left running. */
  watch?: string;
}

/** What a build made, for the catalog (a build result's `built`). */
export interface BuiltImage {
  /** The image name (`collection/image:tag`). */
  uri: string;
  /** Where the image lives remotely. */
  url: string;
  /** `sha256:<hex>`, when known. */
  digest?: string;
  /** Size in bytes, when known. */
  size?: number;
  /** Metadata to record. */
  metadata?: Metadata;
}

/** The outcome of a delete. */
export interface DeleteResult {
  /** What was removed (URIs); empty when the user declined, and the CLI says "Nothing deleted". */
  deleted: string[];
}

/** Questions to the user (cli/prompt.ts, on stderr, answers from an injected stdin). */
export interface Prompt {
  /**
   * Ask yes or no (`Delete x? [y/N]`). Without a terminal the answer is `default` (no) unless stdin
   * holds a line. Ctrl-C rejects with an InterruptedError (exit 130).
   */
  confirm(question: string, options?: { default?: boolean }): Promise<boolean>;
  /**
   * Show a login URL and read back the code the user pastes (the original's `_auth_flow`).
   * @throws {ConfigError} when no code is entered.
   */
  readCode(url: string, message?: string): Promise<string>;
}

/** The catalog as a client may see it: lookups only (the store step in cli/ writes). */
export type ReadonlyCatalog = Pick<Catalog, "get" | "images" | "labels">;

/** Everything a client needs, injected so tests drive the real code paths. */
export interface Context {
  /** The client's name (its scheme). */
  readonly name: string;
  /** The HTTP client (the only way to the network). */
  readonly http: Http;
  /**
   * The client's own settings: environment first, then its section of the secrets file. Values of
   * settings the factory marks `secret` are redacted from every message automatically.
   */
  readonly settings: ClientSettings;
  /** Old name of {@link settings}, kept while branches merge. */
  readonly clientSettings: ClientSettings;
  /** Global settings (workers, tmpDir, home...), read-only. */
  readonly globals: Readonly<Settings>;
  /** The client's credential cache (its own file only; off with SREGISTRY_DISABLE_CREDENTIAL_CACHE). */
  readonly credentials: CredentialStore;
  /** Questions to the user: confirm, read a login code. */
  readonly prompt: Prompt;
  /** Runs programs (singularity, apptainer, helpers); aborted with the command. */
  readonly exec: Exec;
  /** Waits for a remote job with backoff and a spinner; aborted with the command. */
  readonly poll: Poll;
  /** Read an image file's metadata the way the catalog does (native SIF reader first). */
  metadata(file: string): Promise<Metadata>;
  /** The thumbnail to upload beside images: SREGISTRY_THUMBNAIL, else the built-in robot. */
  thumbnail(): Promise<Thumbnail>;
  /** The catalog, unless the database is disabled. */
  readonly catalog?: ReadonlyCatalog;
  /** Messages (stderr). */
  readonly log: Logger;
  /** Where transfers report progress (drawn by cli/ on a TTY, not with --quiet or --json). */
  readonly progress: ProgressSink;
  /** Aborted on Ctrl-C. */
  readonly signal: AbortSignal;
  /** Environment access. */
  readonly env: Env;
}

/** How a backend registers itself in clients/mod.ts. */
export interface ClientFactory {
  /** The URI scheme (`docker`), also the client's name. */
  scheme: string;
  /** Other schemes that select it (`shub` for hub). */
  aliases?: string[];
  /** One line for help and `backend ls`. */
  description: string;
  /** The settings it reads. */
  settings: SettingDoc[];
  /** Build the client; no network I/O may happen here. */
  create(ctx: Context): Client;
}
