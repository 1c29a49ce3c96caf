/**
 * What a command runs with: settings, secrets, output, the catalog (opened on first use) and the
 * client registry. Built once per process by main.ts; tests build their own with injected IO.
 * @module
 */

import type { Client, ClientFactory, Context } from "../clients/types.ts";
import type * as ClientRegistry from "../clients/mod.ts";
import type { CatalogOptions } from "../db/catalog.ts";
import type { Catalog, Metadata } from "../db/types.ts";
import { ConfigError } from "../core/errors.ts";
import type { Http, HttpOptions } from "../core/http.ts";
import {
  createLogger,
  createOutput,
  Level,
  type Logger,
  type Output,
  streamSink,
  type TextSink,
} from "../core/log.ts";
import { openSecrets, type Secrets } from "../core/secrets.ts";
import { NO_PROGRESS } from "../core/progress_events.ts";
import { createProgressRenderer } from "./render/progress.ts";
import { type Env, processEnv, readSettings, type Settings } from "../core/settings.ts";
import type { Prompt } from "../clients/types.ts";
import { createPrompt, type PromptInput } from "./prompt.ts";
import type { ClientContextParts } from "./client_context.ts";

/** Options of {@link createApp}. */
export interface AppOptions {
  /** Environment (default: the process's). */
  env?: Env;
  /** --debug. */
  debug?: boolean;
  /** --quiet: no progress bars and only warnings and errors. */
  quiet?: boolean;
  /** --json: data as JSON on stdout, errors as JSON on stderr. */
  json?: boolean;
  /** --ca-file: read as SREGISTRY_CA_FILE, over the environment's. */
  caFile?: string;
  /** --insecure: read as SREGISTRY_HTTPS_NOVERIFY=true (same warning). */
  insecure?: boolean;
  /** --plain-http: every `SREGISTRY_<CLIENT>_NOHTTPS` reads true, over the environment and secrets. */
  plainHttp?: boolean;
  /** Where data goes (default stdout). */
  stdout?: TextSink;
  /** Where messages go (default stderr). */
  stderr?: TextSink;
  /** The fetch used by every client (tests inject one). */
  fetch?: typeof fetch;
  /** Aborted on Ctrl-C. */
  signal?: AbortSignal;
  /** The registered clients (default: clients/mod.ts); tests add their own. */
  factories?: readonly ClientFactory[];
  /** How an image file's own metadata is read (native SIF reader by default). */
  readMetadata?: (file: string) => Promise<Metadata>;
  /** Where prompts read answers (default Deno.stdin). */
  stdin?: PromptInput;
  /**
   * Opens the catalog (db/catalog.ts `openCatalog`). Injected so that commands without a catalog
   * never load db/: the program imports it only for commands that use it; mod.ts always passes it.
   */
  openCatalog?: (options: CatalogOptions) => Catalog;
  /** The client registry (clients/mod.ts), injected for the same reason. */
  clients?: Pick<typeof ClientRegistry, "FACTORIES" | "findFactory" | "resolveClientName">;
  /** core/http.ts `createHttp`, injected so commands without clients never load the http stack. */
  createHttp?: (options: HttpOptions) => Http;
  /** cli/client_context.ts `createClientContext`, injected for the same reason. */
  createContext?: (parts: ClientContextParts) => Context;
}

/** A chosen client with its context. */
export interface ClientHandle {
  /** The client. */
  client: Client;
  /** Its context. */
  ctx: Context;
  /** Its factory (description, settings). */
  factory: ClientFactory;
}

/** Everything a command needs. */
export interface App {
  /** Global settings. */
  readonly settings: Settings;
  /** Environment. */
  readonly env: Env;
  /** Messages. */
  readonly log: Logger;
  /** Data. */
  readonly out: Output;
  /** --json was given. */
  readonly json: boolean;
  /** --quiet was given. */
  readonly quiet: boolean;
  /** Progress bars may be drawn. */
  readonly progress: boolean;
  /** The secrets file. */
  readonly secrets: Secrets;
  /** Aborted on Ctrl-C. */
  readonly signal: AbortSignal;
  /** Questions to the user (stderr, the injected stdin). */
  readonly prompt: Prompt;
  /** The catalog; throws a ConfigError when the database is disabled. */
  catalog(): Catalog;
  /** The catalog, or undefined when the database is disabled. */
  maybeCatalog(): Catalog | undefined;
  /** Pick the client for an image or URI (scheme, SREGISTRY_CLIENT, secrets, hub) and build it. */
  getClient(image?: string): ClientHandle;
  /** Build the client of `factory` with its context (no network I/O: `create` does none). */
  buildClient(factory: ClientFactory): ClientHandle;
  /**
   * The width tables should fit: the terminal's columns when stdout is one, else `COLUMNS` when
   * set; undefined means no limit (a pipe without COLUMNS).
   */
  columns(): number | undefined;
  /** Read an image file's metadata for the catalog. */
  readMetadata(file: string): Promise<Metadata>;
  /** The registered clients. */
  readonly factories: readonly ClientFactory[];
  /** Close what was opened. */
  close(): void;
}

/**
 * The environment as the global TLS flags make it: `--ca-file`, `--insecure` and `--plain-http`
 * read as the settings they stand for, so every path that honours those settings (the http stack,
 * each client's NOHTTPS) honours the flags, and the flags win over the environment as flags do.
 */
export function flagEnv(
  env: Env,
  flags: Pick<AppOptions, "caFile" | "insecure" | "plainHttp">,
): Env {
  const { caFile, insecure, plainHttp } = flags;
  if (caFile === undefined && !insecure && !plainHttp) return env;
  return {
    get(name) {
      if (caFile !== undefined && name === "SREGISTRY_CA_FILE") return caFile;
      if (insecure && name === "SREGISTRY_HTTPS_NOVERIFY") return "true";
      if (plainHttp && /^SREGISTRY_[A-Z0-9_]+_NOHTTPS$/.test(name)) return "true";
      return env.get(name);
    },
  };
}

/** Build the app. */
export function createApp(options: AppOptions = {}): App {
  const env = flagEnv(options.env ?? processEnv, options);
  const settings = readSettings(env);
  const stderr = options.stderr ?? streamSink(Deno.stderr);
  const stdout = options.stdout ?? streamSink(Deno.stdout);
  let level = settings.messageLevel;
  if (options.quiet) level = Math.min(level, Level.WARNING);
  if (options.debug) level = Level.DEBUG;
  const color = settings.noColor ? false : settings.colorize ?? stderr.isTerminal;
  // Messages go through the progress renderer, which clears the bars around them.
  const renderer = stderr.isTerminal && !options.quiet && !options.json
    ? createProgressRenderer({ sink: stderr })
    : undefined;
  const log = createLogger({ level, sink: renderer?.sink ?? stderr, color });
  for (const w of settings.warnings) log.warning(w);
  const out = createOutput(stdout);
  const secrets = openSecrets(settings.secretsPath, { warn: (m) => log.warning(m) });
  const signal = options.signal ?? new AbortController().signal;
  let catalog: Catalog | undefined;
  const readMetadata = options.readMetadata ?? defaultReadMetadata;
  const prompt = createPrompt({ stdin: options.stdin, stderr, signal });
  const registry = () => {
    if (!options.clients) throw new Error("This command was not given the client registry");
    return options.clients;
  };

  const app: App = {
    settings,
    env,
    log,
    out,
    json: options.json ?? false,
    quiet: options.quiet ?? false,
    progress: renderer !== undefined,
    secrets,
    signal,
    prompt,
    get factories() {
      return options.factories ?? registry().FACTORIES;
    },
    catalog() {
      const c = app.maybeCatalog();
      if (!c) {
        throw new ConfigError(
          "The local catalog is disabled (SREGISTRY_DISABLE or SINGULARITY_DISABLE_CACHE is set); unset it to use this command",
        );
      }
      return c;
    },
    maybeCatalog() {
      if (settings.disableDatabase) return undefined;
      if (!options.openCatalog) throw new Error("This command was not given the catalog code");
      catalog ??= options.openCatalog({
        databaseDir: settings.databaseDir,
        storage: settings.storage,
        readMetadata,
        log,
      });
      return catalog;
    },
    getClient(image) {
      const { findFactory, resolveClientName } = registry();
      const factories = app.factories;
      const name = resolveClientName(image, { env: settings.client, secrets, log, factories });
      return app.buildClient(findFactory(name, factories));
    },
    buildClient(factory) {
      if (!options.createHttp) throw new Error("This command was not given the http stack");
      const http: Http = options.createHttp({
        log,
        fetch: options.fetch,
        insecure: settings.httpsNoVerify,
        caFile: settings.caFile,
        caFileSetting: options.caFile !== undefined
          ? "--ca-file"
          : env.get("SREGISTRY_CA_FILE")
          ? "SREGISTRY_CA_FILE"
          : "SSL_CERT_FILE",
      });
      if (!options.createContext) throw new Error("This command was not given the client context");
      const ctx: Context = options.createContext({
        factory,
        http,
        secrets,
        settings,
        env,
        log,
        progress: renderer ?? NO_PROGRESS,
        drawSpinner: app.progress,
        prompt,
        signal,
        readMetadata,
        catalog: () => app.maybeCatalog(),
      });
      const client = factory.create(ctx);
      return { client, ctx, factory };
    },
    columns() {
      if (stdout.isTerminal) return stdout.columns?.();
      const raw = env.get("COLUMNS")?.trim();
      return raw && /^\d+$/.test(raw) && Number(raw) > 0 ? Number(raw) : undefined;
    },
    readMetadata,
    close() {
      catalog?.close();
      catalog = undefined;
    },
  };
  return app;
}

async function defaultReadMetadata(file: string): Promise<Metadata> {
  // Loaded lazily so commands that never read an image do not pay for the SIF reader.
  const { detectImageFormat } = await import("../core/image_format.ts");
  // Other stored files (OCI archives) carry their metadata from the client that pulled them.
  const { format } = await detectImageFormat(file);
  if (format === "unknown" || format === "oci-archive") return {};
  const { readImageMetadata } = await import("../core/metadata.ts");
  const { flattenForCatalog } = await import("../core/catalog_metadata.ts");
  const meta = await readImageMetadata(file);
  // Labels also in a `labels` object: the catalog's one metadata shape (db/metadata_shape.ts).
  return { ...flattenForCatalog(meta), labels: { ...meta.labels } };
}

/** Runs a command's action with the app, mapping errors to exit codes (main.ts supplies it). */
export type RunWithApp = (action: (app: App) => Promise<void>) => Promise<void>;
