/**
 * Small file-system questions asked all over the tree, answered one way: a path that cannot be
 * stat'ed for any reason other than "not found" is an error, not a silent false.
 * @module
 */

import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { UsageError } from "./errors.ts";

/** Whether anything (a file, folder or dangling symlink) exists at `path`. */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
    throw e;
  }
}

/** Whether `path` is a regular file (symlinks followed). */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
    throw e;
  }
}

/** Whether `path` is a folder (symlinks followed). */
export function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
    throw e;
  }
}

/**
 * Refuse to write or delete at `path` when a folder between `root` (exclusive) and `path`'s folder
 * (inclusive) is a symbolic link: a link inside storage (`shub/evil -> /elsewhere`) would carry a
 * write or a delete outside it. `root` itself may be a link (storage on another disk is common).
 * Folders that do not exist yet are fine: they are created as real folders.
 * @throws {UsageError} naming the link and where it leads (exit 2).
 */
export function assertNoLinkInside(root: string, path: string, action = "write"): void {
  const absRoot = resolve(root);
  const rel = relative(absRoot, dirname(resolve(path)));
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) return;
  let dir = absRoot;
  for (const part of rel.split(sep)) {
    dir = join(dir, part);
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(dir);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return;
      throw e;
    }
    if (info.isSymlink) {
      let target = "?";
      try {
        target = Deno.readLinkSync(dir);
      } catch {
        // Only for the message.
      }
      throw new UsageError(
        `Refusing to ${action} ${JSON.stringify(path)}: storage folder ${
          JSON.stringify(dir)
        } is a symbolic link (to ${
          JSON.stringify(target)
        }), which could lead outside storage; replace it with a real folder`,
      );
    }
  }
}

/**
 * Whether a process with this id runs on this machine. Without `/proc` (macOS), or without the
 * permission to read it (Deno grants /proc only with --allow-all), it cannot be told: undefined, and
 * callers fall back to an age limit.
 */
export function processAlive(pid: number): boolean | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === Deno.pid) return true;
  try {
    Deno.statSync("/proc/self");
  } catch {
    return undefined; // no /proc, or no permission to read it (deno's -P=cli)
  }
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Why a file could not be read, for a one-line message: "it does not exist", "it is not readable". */
export function unreadableReason(error: unknown): string {
  return error instanceof Deno.errors.NotFound
    ? "it does not exist"
    : error instanceof Deno.errors.PermissionDenied
    ? "it is not readable"
    : (error as Error).message;
}
