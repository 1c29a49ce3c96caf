/**
 * The shape of a client (a backend): a factory registered under a URI scheme that builds a plain
 * object with optional capabilities. A capability exists when its method does.
 * @module
 */

import type { Http } from "../core/http.ts";
import type { Logger, Output } from "../core/log.ts";
import type { ProgressSink } from "../core/progress_events.ts";
import type { ClientSettings, Secrets } from "../core/secrets.ts";
import type { Env, Settings } from "../core/settings.ts";
import type { Catalog, ContainerRow, Metadata } from "../db/types.ts";

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

/** Options of {@link Client.pull}. */
export interface PullOptions {
  /** Catalog name (`collection/image:tag`) or, with noCache, the output file. */
  name?: string;
  /** Output file (with noCache) instead of the current folder. */
  file?: string;
  /** Replace an existing file. */
  force?: boolean;
  /** Do not store in the catalog: write to the current folder (or `file`) only. */
  noCache?: boolean;
  /** Platform for multi-platform images, `os/arch[/variant]`. */
  platform?: string;
}

/** The outcome of a pull. */
export interface PullResult {
  /** Where the image is on disk. */
  path: string;
  /** The catalog row, when the image was stored in the catalog. */
  container?: ContainerRow;
  /** The remote URL it came from. */
  url?: string;
  /** `sha256:<hex>` of the file. */
  digest?: string;
  /** Size in bytes. */
  size?: number;
  /** Anything else worth reporting with --json. */
  details?: Metadata;
}

/** Options of {@link Client.push}. */
export interface PushOptions {
  /** The remote name (`collection/image:tag`, URI prefix removed). */
  name: string;
  /** Overrides the tag of `name`. */
  tag?: string;
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
  /** Download an image (into the catalog unless `noCache`). */
  pull?(image: string, options: PullOptions): Promise<PullResult>;
  /** Upload a local file. */
  push?(path: string, options: PushOptions): Promise<PushResult>;
  /** List remote images matching a query (all when undefined). */
  search?(query: string | undefined): Promise<SearchHit[]>;
  /** Record a remote image's metadata in the catalog without downloading it. */
  record?(image: string, options: { name?: string }): Promise<ContainerRow>;
  /** Delete a remote image. */
  delete?(image: string, options: { force?: boolean }): Promise<void>;
  /** Share a remote image with someone. */
  share?(image: string, options: { shareTo?: string }): Promise<string>;
  /** Build an image remotely. */
  build?(recipe: string, options: { name: string; extra: string[] }): Promise<Metadata>;
  /** Remote label search. */
  labels?(options: { key?: string; value?: string }): Promise<Metadata[]>;
  /** Called by core/http on a 401; refresh credentials and return true to retry. */
  updateToken?(response: Response): Promise<boolean>;
}

/** Everything a client needs, injected so tests drive the real code paths. */
export interface Context {
  /** The client's name (its scheme). */
  readonly name: string;
  /** The HTTP client (the only way to the network). */
  readonly http: Http;
  /** Global settings. */
  readonly settings: Settings;
  /** The client's own settings: environment first, then its section of the secrets file. */
  readonly clientSettings: ClientSettings;
  /** The whole secrets file. */
  readonly secrets: Secrets;
  /** The catalog, unless the database is disabled. */
  readonly catalog?: Catalog;
  /** Messages (stderr). */
  readonly log: Logger;
  /** Data (stdout). */
  readonly out: Output;
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
