/**
 * The secrets file (`~/.sregistry`, or SREGISTRY_CLIENT_SECRETS): one JSON object keyed by client
 * name, plus a top-level `SREGISTRY_CLIENT` naming the active backend. Same format as sregistry-cli,
 * readable and writable by both. Unlike the original it is written atomically with mode 0600 (an
 * existing 0644 file is tightened on its next write, and warned about once when read, as ssh does), a
 * malformed file is reported with its position and never overwritten, and reading never writes. A
 * symlinked file is written through to its target (the link stays), and anything but a regular file
 * (a FIFO, a device, a folder) is refused before it is opened, so it can never hang a command.
 * @module
 */

import { ConfigError, FormatError } from "./errors.ts";
// Not node:path: the first node: import costs more start-up time than the whole of `version`.
import { dirnamePath as dirname, joinPath as join, resolvePath as resolve } from "./path.ts";

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

/**
 * Open the secrets file at `path` (nothing is read until asked). `options.warn` receives the one
 * warning about a file others may read (default: `WARNING ...` on stderr; the CLI passes its log).
 */
export function openSecrets(
  path: string,
  options: { warn?: (message: string) => void } = {},
): Secrets {
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
      const text = readPrivateFile(path, "Secrets file", options.warn);
      if (text === undefined) return structuredClone(DEFAULT_SECRETS);
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

const warned = new Set<string>();

function stderrWarning(message: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`WARNING ${message}\n`));
}

function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a folder";
  if (info.isFifo) return "a FIFO";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

/**
 * The text of a private file (the secrets file, a credential cache file), or undefined when it
 * does not exist. Anything but a regular file (followed through symlinks) is refused before it is
 * opened: opening a FIFO blocks until a writer comes, and a device may never end. A file that
 * others may read or write (mode 0644, 0666) is read, with one warning per path and process saying
 * how to fix it.
 * @throws {ConfigError} when the path is not a regular file.
 */
export function readPrivateFile(
  path: string,
  what: string,
  warn: (message: string) => void = stderrWarning,
): string | undefined {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      // A dangling symlink: reading finds nothing, and a write says where the link points.
      return undefined;
    }
    throw e;
  }
  if (!info.isFile) {
    throw new ConfigError(
      `${what} ${JSON.stringify(path)} is ${kindOf(info)}: it must be a regular file; ` +
        `remove it, or point to another file`,
    );
  }
  const mode = (info.mode ?? 0) & 0o777;
  if (info.mode !== null && (mode & 0o077) !== 0 && !warned.has(path)) {
    warned.add(path);
    warn(
      `${what} ${JSON.stringify(path)} is accessible by others (mode 0${
        mode.toString(8).padStart(3, "0")
      }); it holds credentials: run "chmod 600 ${path}"`,
    );
  }
  return Deno.readTextFileSync(path);
}

/**
 * The file a write to `path` must replace: `path` itself, or the final target when it is a
 * symlink (replacing the link with a regular file would leave its target with the old content).
 * @throws {ConfigError} when the link dangles or the target is not a regular file.
 */
export function writeTarget(path: string, what = "File"): string {
  let link: Deno.FileInfo;
  try {
    link = Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return path;
    throw e;
  }
  let target = path;
  if (link.isSymlink) {
    try {
      target = Deno.realPathSync(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw new ConfigError(
        `${what} ${JSON.stringify(path)} is a symlink to ${
          JSON.stringify(resolve(dirname(path), Deno.readLinkSync(path)))
        }, which does not exist: create the target or remove the link`,
      );
    }
  }
  const info = Deno.statSync(target);
  if (!info.isFile) {
    throw new ConfigError(
      `${what} ${JSON.stringify(path)} is ${kindOf(info)}: it must be a regular file; ` +
        `remove it, or point to another file`,
    );
  }
  return target;
}

/**
 * Write a file so that readers see the old or the new content, never a mix: a temporary file in the
 * same folder, fsync, chmod, rename. A symlink is written through: its final target is replaced and
 * the link kept.
 * @throws {ConfigError} when `path` is a dangling symlink or not a regular file.
 */
export function writeFileAtomic(filePath: string, content: string, mode = 0o600): void {
  const path = writeTarget(filePath);
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
