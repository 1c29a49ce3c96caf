/**
 * The secrets file (`~/.sregistry`, or SREGISTRY_CLIENT_SECRETS): one JSON object keyed by client
 * name, plus a top-level `SREGISTRY_CLIENT` naming the active backend. Same format as sregistry-cli,
 * readable and writable by both. Unlike the original it is written atomically with mode 0600 (an
 * existing 0644 file is tightened on its next write), a malformed file is reported with its position
 * and never overwritten, and reading never writes.
 * @module
 */

import { FormatError } from "./errors.ts";
// Not node:path: the first node: import costs more start-up time than the whole of `version`.
import { dirnamePath as dirname, joinPath as join } from "./path.ts";

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

/** A client's section of the file ({} when missing or not an object). */
export function section(data: SecretsData, client: string): Record<string, unknown> {
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
