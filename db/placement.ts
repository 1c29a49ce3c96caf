/**
 * File placement for the catalog: a file is first staged under a temporary name next to its
 * destination (renamed, or copied durably across filesystems), then renamed into place inside the
 * database transaction, and put back when the transaction fails. Emptied storage folders are pruned.
 * @module
 */

import { basename, dirname, join, relative, resolve } from "node:path";

/** A hidden temporary name next to `dest` (same folder, so the final rename is atomic). */
export function tempNameNear(dest: string, suffix: string): string {
  return join(dirname(dest), `.${basename(dest)}.${crypto.randomUUID().slice(0, 8)}.${suffix}`);
}

async function copyDurable(src: string, dest: string): Promise<void> {
  await Deno.copyFile(src, dest);
  using f = await Deno.open(dest, { read: true, write: true });
  await f.sync();
}

/** A file prepared next to its destination, waiting for the transaction's final rename. */
export interface Staged {
  /** The temp path (same folder as the destination, so the final rename is atomic). */
  tmp: string;
  /** The source was renamed (not copied) to `tmp`: undoing means renaming it back. */
  renamed: boolean;
  /** The source must be removed once the transaction commits (a move across devices). */
  removeSourceAfter: boolean;
}

/** Stage `src` next to `dest`: a rename when possible, else a durable copy. */
export async function stage(src: string, dest: string, copy: boolean): Promise<Staged> {
  await Deno.mkdir(dirname(dest), { recursive: true });
  const tmp = tempNameNear(dest, "tmp");
  if (!copy) {
    try {
      await Deno.rename(src, tmp);
      return { tmp, renamed: true, removeSourceAfter: false };
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw e;
      // EXDEV (another filesystem) and friends: fall back to a durable copy.
    }
  }
  try {
    await copyDurable(src, tmp);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return { tmp, renamed: false, removeSourceAfter: !copy };
}

/** Undo {@link stage}: rename the file back to `src`, or remove the copy. */
export function unstage(staged: Staged, src: string): void {
  try {
    if (staged.renamed) Deno.renameSync(staged.tmp, src);
    else Deno.removeSync(staged.tmp);
  } catch {
    // Best effort: the original error is the one worth reporting.
  }
}

/** Whether `p` lies strictly inside `root`. */
export function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel !== "" && !rel.startsWith("..") && !rel.startsWith("/");
}

/** Remove folders left empty under `root`, from `dir` up to (not including) the root. */
export function pruneEmpty(root: string, dir: string): void {
  let d = resolve(dir);
  while (inside(root, d)) {
    try {
      Deno.removeSync(d); // fails unless empty
    } catch {
      return;
    }
    d = dirname(d);
  }
}
