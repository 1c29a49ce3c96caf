/**
 * Settings from the environment, with sregistry-cli's variable names, defaults and meanings, read once
 * into one typed object. Unlike the original, `$HOME` is honoured, numbers in MESSAGELEVEL work, and a
 * bad value falls back to its default with a warning instead of crashing.
 * @module
 */

import { join } from "node:path";
import { z } from "zod";
import { ConfigError } from "./errors.ts";
import { Level, parseLevel } from "./log.ts";

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

/** Truthy strings, as sregistry-cli's `convert2boolean`: yes, true, t, 1, y (any case). */
export function parseBoolean(value: string | undefined): boolean {
  return value !== undefined && ["yes", "true", "t", "1", "y"].includes(value.trim().toLowerCase());
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
  /** SINGULARITY_CACHEDIR (default ~/.singularity): layer and blob caches. */
  cacheDir: string;
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

const positiveInt = z.coerce.number().int().min(1).max(256);

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
    need(v, name) ?? join(home!, ...rest);

  const databaseDir = h(env.get("SREGISTRY_DATABASE"), "SREGISTRY_DATABASE", ".singularity");
  let workers = 9;
  const workersRaw = env.get("SREGISTRY_WORKERS") ?? env.get("SREGISTRY_PYTHON_THREADS");
  if (workersRaw !== undefined) {
    const parsed = positiveInt.safeParse(workersRaw);
    if (parsed.success) workers = parsed.data;
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
  return {
    home: home ?? "",
    client: env.get("SREGISTRY_CLIENT") || undefined,
    secretsPath: h(env.get("SREGISTRY_CLIENT_SECRETS"), "SREGISTRY_CLIENT_SECRETS", ".sregistry"),
    databaseDir,
    databasePath: join(databaseDir, "sregistry.db"),
    storage: h(env.get("SREGISTRY_STORAGE"), "SREGISTRY_STORAGE", ".singularity", "shub"),
    disableDatabase: parseBoolean(env.get("SREGISTRY_DISABLE")) ||
      parseBoolean(env.get("SINGULARITY_DISABLE_CACHE")),
    disableCredentialCache: parseBoolean(env.get("SREGISTRY_DISABLE_CREDENTIAL_CACHE")),
    credentialCacheRoot: join(
      h(env.get("SREGISTRY_CREDENTIALS_CACHE"), "SREGISTRY_CREDENTIALS_CACHE", ".singularity"),
      ".sregistry",
    ),
    cacheDir: h(env.get("SINGULARITY_CACHEDIR"), "SINGULARITY_CACHEDIR", ".singularity"),
    tmpDir: env.get("SREGISTRY_TMPDIR") || env.get("TMPDIR") || "/tmp",
    workers,
    thumbnail: env.get("SREGISTRY_THUMBNAIL") || undefined,
    httpsNoVerify: parseBoolean(env.get("SREGISTRY_HTTPS_NOVERIFY")),
    caFile: env.get("SREGISTRY_CA_FILE") || env.get("SSL_CERT_FILE") || undefined,
    shell: env.get("SREGISTRY_SHELL") || undefined,
    messageLevel,
    colorize: colorRaw === undefined || colorRaw === "" ? undefined : parseBoolean(colorRaw),
    noColor: (env.get("NO_COLOR") ?? "") !== "",
    singularityVersion: env.get("SINGULARITY_VERSION") || undefined,
    warnings,
  };
}
