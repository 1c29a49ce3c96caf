/**
 * The secrets file (`~/.sregistry`, or SREGISTRY_CLIENT_SECRETS): one JSON object keyed by client
 * name, plus a top-level `SREGISTRY_CLIENT` naming the active backend. Same format as sregistry-cli,
 * readable and writable by both. Unlike the original it is written atomically with mode 0600 (an
 * existing 0644 file is tightened on its next write), a malformed file is reported with its position
 * and never overwritten, and reading never writes.
 * @module
 */

import { ConfigError, FormatError } from "./errors.ts";
// Not node:path: the first node: import costs more start-up time than the whole of `version`.
import { dirnamePath as dirname, type Env, joinPath as join } from "./settings.ts";

/** The file's content: client sections plus the active client. */
export type SecretsData = Record<string, unknown> & { SREGISTRY_CLIENT?: string };

/** What sregistry-cli wrote when the file was missing. */
export const DEFAULT_SECRETS: SecretsData = { hub: { base: "https://singularity-hub.org/api" } };

/** The secrets file. */
export interface Secrets {
  /** The file's path. */
  readonly path: string;
  /** Whether the file exists. */
  exists(): boolean;
  /** The content (the default content when the file is missing). */
  read(): SecretsData;
  /** Replace the content, atomically, mode 0600. */
  write(data: SecretsData): void;
}

/** Open the secrets file at `path` (nothing is read until asked). */
export function openSecrets(path: string): Secrets {
  return {
    path,
    exists() {
      try {
        return Deno.statSync(path).isFile;
      } catch {
        return false;
      }
    },
    read() {
      let text: string;
      try {
        text = Deno.readTextFileSync(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return structuredClone(DEFAULT_SECRETS);
        throw e;
      }
      if (text.trim() === "") return {};
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch (e) {
        throw new FormatError(
          `Secrets file ${path} is not valid JSON: ${(e as Error).message}; fix or remove it`,
        );
      }
      if (data === null || typeof data !== "object" || Array.isArray(data)) {
        throw new FormatError(
          `Secrets file ${path} must hold a JSON object keyed by client name; fix or remove it`,
        );
      }
      return data as SecretsData;
    },
    write(data) {
      writeFileAtomic(path, JSON.stringify(data, null, 4) + "\n", 0o600);
    },
  };
}

/**
 * Write a file so that readers see the old or the new content, never a mix: a temporary file in the
 * same folder, fsync, chmod, rename.
 */
export function writeFileAtomic(path: string, content: string, mode = 0o600): void {
  const dir = dirname(path);
  Deno.mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${path.split("/").pop()}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  const file = Deno.openSync(tmp, { write: true, createNew: true, mode });
  try {
    const bytes = new TextEncoder().encode(content);
    let off = 0;
    while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
    file.syncSync();
  } catch (e) {
    file.close();
    Deno.removeSync(tmp);
    throw e;
  }
  file.close();
  Deno.chmodSync(tmp, mode);
  Deno.renameSync(tmp, path);
}

function section(data: SecretsData, client: string): Record<string, unknown> {
  const s = data[client];
  return s !== null && typeof s === "object" && !Array.isArray(s)
    ? s as Record<string, unknown>
    : {};
}

/** The file content (the original's `read_client_secrets`, without its write-on-read). */
export function readClientSecrets(secrets: Secrets): SecretsData {
  return secrets.read();
}

/**
 * Merge `updates` into a client's section and save (the original's `update_client_secrets`). Unlike
 * the original, the file is created when missing, so a first `backend add` is not lost.
 */
export function updateClientSecrets(
  secrets: Secrets,
  client: string,
  updates: Record<string, unknown>,
): SecretsData {
  const data = secrets.read();
  data[client] = { ...section(data, client), ...updates };
  secrets.write(data);
  return data;
}

/** The whole file, or one client's section when it exists (the original's `_get_settings`). */
export function getSettings(secrets: Secrets, client?: string): Record<string, unknown> {
  const data = secrets.read();
  if (client !== undefined && client in data) return section(data, client);
  return data;
}

/** One client's view of its settings: environment first, then its section of the secrets file. */
export interface ClientSettings {
  /** The client's name. */
  readonly client: string;
  /** `SREGISTRY_<CLIENT>_` for this client. */
  readonly prefix: string;
  /** Environment `name`, then the file's `client.name`, then `fallback`. */
  get(name: string, fallback?: string): string | undefined;
  /** Like {@link get}, and a found value is saved to the file (the original's behaviour). */
  getAndUpdate(name: string, fallback?: string): string | undefined;
  /** Like {@link getAndUpdate}; throws a ConfigError naming the variable when it is unset. */
  require(name: string): string;
  /** Save a value in the client's section (undefined does nothing). */
  update(name: string, value: string | undefined): void;
  /** Throw unless the file has this client's section and, if given, these keys in it. */
  requireSecrets(params?: string | string[]): Record<string, unknown>;
  /** The client's section. */
  all(): Record<string, unknown>;
}

/** Settings scoped to `client`. */
export function clientSettings(secrets: Secrets, client: string, env: Env): ClientSettings {
  const prefix = `SREGISTRY_${client.toUpperCase().replaceAll("-", "_")}_`;
  const fromFile = (name: string) => {
    const v = section(secrets.read(), client)[name];
    return v === undefined || v === null ? undefined : String(v);
  };
  const cs: ClientSettings = {
    client,
    prefix,
    get: (name, fallback) => env.get(name) ?? fromFile(name) ?? fallback,
    getAndUpdate(name, fallback) {
      const value = cs.get(name, fallback);
      if (value !== undefined && fromFile(name) !== value) cs.update(name, value);
      return value;
    },
    require(name) {
      const value = cs.getAndUpdate(name);
      if (value === undefined || value === "") {
        throw new ConfigError(
          `The ${client} client needs ${name}: export it, or run "sregistry backend add ${client} ${name} <value>"`,
        );
      }
      return value;
    },
    update(name, value) {
      if (value !== undefined) updateClientSecrets(secrets, client, { [name]: value });
    },
    requireSecrets(params) {
      const data = secrets.read();
      if (!secrets.exists() || !(client in data)) {
        throw new ConfigError(
          `The ${client} client requires client secrets in ${secrets.path}; add them with "sregistry backend add ${client} <var> <value>"`,
        );
      }
      const sec = section(data, client);
      for (const p of typeof params === "string" ? [params] : params ?? []) {
        if (!(p in sec)) {
          throw new ConfigError(`Missing ${p} in client secrets for ${client} in ${secrets.path}`);
        }
        if (sec[p] === null || sec[p] === undefined || sec[p] === "") {
          throw new ConfigError(`Undefined param ${p} in client secrets for ${client}`);
        }
      }
      return sec;
    },
    all: () => section(secrets.read(), client),
  };
  return cs;
}

/** The original's `_get_setting`. */
export function getSetting(
  cs: ClientSettings,
  name: string,
  fallback?: string,
): string | undefined {
  return cs.get(name, fallback);
}

/** The original's `_get_and_update_setting`. */
export function getAndUpdateSetting(
  cs: ClientSettings,
  name: string,
  fallback?: string,
): string | undefined {
  return cs.getAndUpdate(name, fallback);
}

/** The original's `_update_setting`. */
export function updateSetting(cs: ClientSettings, name: string, value: string | undefined): void {
  cs.update(name, value);
}

/** The original's `require_secrets`. */
export function requireSecrets(
  cs: ClientSettings,
  params?: string | string[],
): Record<string, unknown> {
  return cs.requireSecrets(params);
}

/**
 * The per-client credential cache path `<root>/<client>` (the client decides whether it is a file or
 * a folder), or undefined when disabled by SREGISTRY_DISABLE_CREDENTIAL_CACHE or
 * SREGISTRY_DISABLE_CREDENTIAL_<CLIENT>. Unlike the original it follows the client actually chosen,
 * and the root is created with mode 0700.
 */
export function credentialCachePath(
  options: { root: string; disabled: boolean; client: string; env: Env },
): string | undefined {
  const { root, disabled, client, env } = options;
  const upper = client.toUpperCase();
  if (
    disabled || env.get(`SREGISTRY_DISABLE_CREDENTIAL_${upper}`) !== undefined ||
    env.get(`SREGISTRY_DISABLE_CREDENTIAL_${upper.replaceAll("-", "_")}`) !== undefined
  ) return undefined;
  Deno.mkdirSync(root, { recursive: true, mode: 0o700 });
  return join(root, client);
}

/** Terminal IO for {@link authFlow}. */
export interface PromptIO {
  /** Show text (stderr). */
  write(text: string): void;
  /** Read one line from the user; undefined at end of input. */
  readLine(): Promise<string | undefined>;
}

/** Print a login URL and read back the code the user pastes (the original's `_auth_flow`). */
export async function authFlow(url: string, io: PromptIO): Promise<string> {
  io.write(`Please go to this URL and login: ${url}\n`);
  io.write("Please enter the code you get after login here: ");
  const line = await io.readLine();
  if (line === undefined || line.trim() === "") {
    throw new ConfigError("No login code was entered; run the command again and paste the code");
  }
  return line.trim();
}
