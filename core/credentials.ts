/**
 * The credential store: the original's credential cache, one JSON file per client at
 * `$SREGISTRY_CREDENTIALS_CACHE/.sregistry/<client>` (default `~/.singularity/.sregistry/<client>`),
 * for tokens a client obtained itself (OAuth refresh tokens, session tokens). Written atomically at
 * mode 0600 in a 0700 folder. SREGISTRY_DISABLE_CREDENTIAL_CACHE (or the original's per-client
 * SREGISTRY_DISABLE_CREDENTIAL_<CLIENT>) turns it off: reads find nothing and writes are dropped.
 * A store is bound to one client's file; no key reaches another client's.
 * @module
 */

import { joinPath as join } from "./path.ts";
import { ConfigError, FormatError } from "./errors.ts";
import { readPrivateFile, writeFileAtomic } from "./secrets.ts";
import type { Env } from "./settings.ts";

/** One client's credential store (`ctx.credentials`). */
export interface CredentialStore {
  /** The file, or undefined when the cache is disabled. */
  readonly path: string | undefined;
  /** The stored value of `key`, or undefined (always undefined when disabled). */
  get<T = unknown>(key: string): T | undefined;
  /** Store a JSON value under `key` (does nothing when disabled). */
  set(key: string, value: unknown): void;
  /** Remove `key` (does nothing when disabled or absent). */
  delete(key: string): void;
}

/** Options of {@link openCredentialStore}. */
export interface CredentialStoreOptions {
  /** The cache root, `<SREGISTRY_CREDENTIALS_CACHE>/.sregistry` (Settings.credentialCacheRoot). */
  root: string;
  /** The client (its scheme). */
  client: string;
  /** SREGISTRY_DISABLE_CREDENTIAL_CACHE (Settings.disableCredentialCache). */
  disabled: boolean;
  /** For the per-client switch. */
  env: Env;
  /** Says once, at debug level, that the cache is off. */
  debug?: (message: string) => void;
  /** Where the one warning about a too-open file goes (default: `WARNING ...` on stderr). */
  warn?: (message: string) => void;
}

const CLIENT_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * The per-client credential cache path `<root>/<client>`, or undefined when disabled by
 * SREGISTRY_DISABLE_CREDENTIAL_CACHE or SREGISTRY_DISABLE_CREDENTIAL_<CLIENT> (set to anything, as
 * in the original). Unlike the original it follows the client actually chosen. Nothing is created.
 */
export function credentialCachePath(
  options: { root: string; disabled: boolean; client: string; env: Env },
): string | undefined {
  const { root, disabled, client, env } = options;
  if (!CLIENT_NAME.test(client)) {
    throw new ConfigError(
      `Client name ${JSON.stringify(client)} cannot name a credential cache file`,
    );
  }
  const upper = client.toUpperCase();
  if (
    disabled || env.get(`SREGISTRY_DISABLE_CREDENTIAL_${upper}`) !== undefined ||
    env.get(`SREGISTRY_DISABLE_CREDENTIAL_${upper.replaceAll("-", "_")}`) !== undefined
  ) return undefined;
  return join(root, client);
}

/** Open one client's credential store (nothing is read or created until asked). */
export function openCredentialStore(options: CredentialStoreOptions): CredentialStore {
  const path = credentialCachePath(options);
  let said = false;
  const off = (what: string) => {
    if (said) return;
    said = true;
    options.debug?.(
      `The credential cache is disabled (SREGISTRY_DISABLE_CREDENTIAL_CACHE): ${what} ${options.client} credentials are not kept`,
    );
  };
  const read = (file: string): Record<string, unknown> => {
    const text = readPrivateFile(file, "Credential cache", options.warn);
    if (text === undefined || text.trim() === "") return {};
    try {
      const data = JSON.parse(text);
      if (data !== null && typeof data === "object" && !Array.isArray(data)) return data;
    } catch {
      // reported below
    }
    throw new FormatError(
      `Credential cache ${file} is not a JSON object; remove it and log in again`,
    );
  };
  const write = (file: string, data: Record<string, unknown>) => {
    Deno.mkdirSync(options.root, { recursive: true, mode: 0o700 });
    // A folder made by an older tool may be world-readable.
    Deno.chmodSync(options.root, 0o700);
    writeFileAtomic(file, JSON.stringify(data, null, 2) + "\n", 0o600);
  };
  return {
    path,
    get<T>(key: string): T | undefined {
      if (!path) {
        off("stored");
        return undefined;
      }
      return read(path)[key] as T | undefined;
    },
    set(key, value) {
      if (!path) return off("new");
      write(path, { ...read(path), [key]: value });
    },
    delete(key) {
      if (!path) return off("stored");
      const data = read(path);
      if (!(key in data)) return;
      delete data[key];
      write(path, data);
    },
  };
}
