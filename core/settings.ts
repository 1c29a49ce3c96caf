/**
 * Settings from the environment, with sregistry-cli's variable names, defaults and meanings, read once
 * into one typed object. Unlike the original, `$HOME` is honoured, numbers in MESSAGELEVEL work, and a
 * bad value falls back to its default with a warning instead of crashing.
 * @module
 */

import { ConfigError } from "./errors.ts";
import { Level, parseLevel } from "./log.ts";
import { joinPath } from "./path.ts";

export { dirnamePath, joinPath } from "./path.ts";

/** Read access to environment variables (injected so tests need not touch the real environment). */
export interface Env {
  /** The value of a variable, or undefined. */
  get(name: string): string | undefined;
}

/** The process environment; variables the permission set does not allow read as unset. */
export const processEnv: Env = {
  get(name: string) {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  },
};

/** An {@link Env} over a plain object, for tests and sub-commands. */
export function envFrom(vars: Record<string, string | undefined>): Env {
  return { get: (name) => vars[name] };
}

const TRUE = ["yes", "true", "t", "1", "y"];
const FALSE = ["no", "false", "f", "0", "n", ""];

/** Truthy strings, as sregistry-cli's `convert2boolean`: yes, true, t, 1, y (any case). */
export function parseBoolean(value: string | undefined): boolean {
  return value !== undefined && TRUE.includes(value.trim().toLowerCase());
}

/**
 * Read a boolean variable: true for yes/true/t/1/y, false for no/false/f/0/n or unset/empty (any
 * case). Anything else is false too, with a warning pushed to `warnings` naming the variable and the
 * accepted values.
 */
export function readBoolean(env: Env, name: string, warnings: string[]): boolean {
  const raw = env.get(name);
  if (raw === undefined) return false;
  const v = raw.trim().toLowerCase();
  if (TRUE.includes(v)) return true;
  if (!FALSE.includes(v)) {
    warnings.push(
      `${name}=${JSON.stringify(raw)} is not a boolean: use one of ${TRUE.join(", ")} for true or ${
        FALSE.filter(Boolean).join(", ")
      } for false; using false`,
    );
  }
  return false;
}

/** Every global setting. Client-specific `SREGISTRY_<CLIENT>_<VAR>` settings live in secrets. */
export interface Settings {
  /** The user's home folder ($HOME). */
  home: string;
  /** SREGISTRY_CLIENT from the environment (the secrets file's value is consulted later). */
  client?: string;
  /** SREGISTRY_CLIENT_SECRETS: the JSON settings file (default ~/.sregistry). */
  secretsPath: string;
  /** SREGISTRY_DATABASE: the folder of sregistry.db (default ~/.singularity). */
  databaseDir: string;
  /** The database file, `<databaseDir>/sregistry.db`. */
  databasePath: string;
  /** SREGISTRY_STORAGE: the image tree root (default ~/.singularity/shub). */
  storage: string;
  /** SREGISTRY_DISABLE or SINGULARITY_DISABLE_CACHE: no catalog and no storage. */
  disableDatabase: boolean;
  /** SREGISTRY_DISABLE_CREDENTIAL_CACHE. */
  disableCredentialCache: boolean;
  /** The credential cache root, `<SREGISTRY_CREDENTIALS_CACHE>/.sregistry`. */
  credentialCacheRoot: string;
  /** SINGULARITY_CACHEDIR (default ~/.singularity, as sregistry-cli): layer and blob caches. */
  cacheDir: string;
  /**
   * Where OCI pulls keep blobs between pulls: `$SINGULARITY_CACHEDIR/sregistry/blobs`, default
   * `~/.singularity/cache/sregistry/blobs`. `sregistry cache` lists and prunes it.
   */
  blobCacheDir: string;
  /** SREGISTRY_TMPDIR (default TMPDIR or /tmp). */
  tmpDir: string;
  /** SREGISTRY_WORKERS, else SREGISTRY_PYTHON_THREADS (default 9): parallel transfers. */
  workers: number;
  /** SREGISTRY_THUMBNAIL. */
  thumbnail?: string;
  /** SREGISTRY_HTTPS_NOVERIFY: skip TLS verification (with a warning). */
  httpsNoVerify: boolean;
  /** SREGISTRY_CA_FILE, else SSL_CERT_FILE: extra trusted CA bundle. */
  caFile?: string;
  /** SREGISTRY_SHELL. */
  shell?: string;
  /** MESSAGELEVEL, parsed. */
  messageLevel: number;
  /** SINGULARITY_COLORIZE: forced colours on (true) or off (false); undefined = auto. */
  colorize?: boolean;
  /** NO_COLOR is set. */
  noColor: boolean;
  /** SINGULARITY_VERSION. */
  singularityVersion?: string;
  /** Problems found while reading; printed as warnings by the CLI. */
  warnings: string[];
}

/** A whole number from 1 to 256, or undefined. */
function positiveInt(raw: string): number | undefined {
  const t = raw.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return n >= 1 && n <= 256 ? n : undefined;
}

/**
 * Read every setting from `env`.
 * @throws {ConfigError} when no home folder can be found ($HOME unset and no SREGISTRY_* paths).
 */
export function readSettings(env: Env = processEnv): Settings {
  const warnings: string[] = [];
  const home = env.get("HOME");
  const need = (v: string | undefined, name: string) => {
    if (v) return v;
    if (!home) {
      throw new ConfigError(`Cannot find a home folder for ${name}: set HOME or ${name}`);
    }
    return undefined;
  };
  const h = (v: string | undefined, name: string, ...rest: string[]) =>
    need(v, name) ?? joinPath(home!, ...rest);

  const cacheRaw = env.get("SINGULARITY_CACHEDIR") || undefined;
  const cacheDir = h(cacheRaw, "SINGULARITY_CACHEDIR", ".singularity");
  const databaseDir = h(env.get("SREGISTRY_DATABASE"), "SREGISTRY_DATABASE", ".singularity");
  let workers = 9;
  const workersRaw = env.get("SREGISTRY_WORKERS") ?? env.get("SREGISTRY_PYTHON_THREADS");
  if (workersRaw !== undefined) {
    const parsed = positiveInt(workersRaw);
    if (parsed !== undefined) workers = parsed;
    else {
      const name = env.get("SREGISTRY_WORKERS") !== undefined
        ? "SREGISTRY_WORKERS"
        : "SREGISTRY_PYTHON_THREADS";
      warnings.push(
        `${name}=${JSON.stringify(workersRaw)} is not a whole number from 1 to 256; using 9`,
      );
    }
  }
  let messageLevel: number = Level.INFO;
  try {
    messageLevel = parseLevel(env.get("MESSAGELEVEL"));
  } catch (e) {
    warnings.push(`${(e as Error).message}; using INFO`);
  }
  const colorRaw = env.get("SINGULARITY_COLORIZE");
  const flag = (name: string) => readBoolean(env, name, warnings);
  // Both are read (not short-circuited) so a bad value of either is reported.
  const disable = flag("SREGISTRY_DISABLE");
  const disableCache = flag("SINGULARITY_DISABLE_CACHE");
  return {
    home: home ?? "",
    client: env.get("SREGISTRY_CLIENT") || undefined,
    secretsPath: h(env.get("SREGISTRY_CLIENT_SECRETS"), "SREGISTRY_CLIENT_SECRETS", ".sregistry"),
    databaseDir,
    databasePath: joinPath(databaseDir, "sregistry.db"),
    storage: h(env.get("SREGISTRY_STORAGE"), "SREGISTRY_STORAGE", ".singularity", "shub"),
    disableDatabase: disable || disableCache,
    disableCredentialCache: flag("SREGISTRY_DISABLE_CREDENTIAL_CACHE"),
    credentialCacheRoot: joinPath(
      h(env.get("SREGISTRY_CREDENTIALS_CACHE"), "SREGISTRY_CREDENTIALS_CACHE", ".singularity"),
      ".sregistry",
    ),
    cacheDir,
    // Unset, it sits in Singularity's own cache folder rather than beside the database.
    blobCacheDir: joinPath(cacheRaw ?? joinPath(cacheDir, "cache"), "sregistry", "blobs"),
    tmpDir: env.get("SREGISTRY_TMPDIR") || env.get("TMPDIR") || "/tmp",
    workers,
    thumbnail: env.get("SREGISTRY_THUMBNAIL") || undefined,
    httpsNoVerify: flag("SREGISTRY_HTTPS_NOVERIFY"),
    caFile: env.get("SREGISTRY_CA_FILE") || env.get("SSL_CERT_FILE") || undefined,
    shell: env.get("SREGISTRY_SHELL") || undefined,
    messageLevel,
    colorize: colorRaw === undefined || colorRaw === "" ? undefined : flag("SINGULARITY_COLORIZE"),
    noColor: (env.get("NO_COLOR") ?? "") !== "",
    singularityVersion: env.get("SINGULARITY_VERSION") || undefined,
    warnings,
  };
}
