/**
 * A full disk during a download: one clear error instead of the bare "No space left on device (os
 * error 28)", and no empty leftovers that keep the disk full (a 0-byte `.partial`, a `.partial.json.tmp`).
 * @module
 */

import { dirname, join } from "node:path";
import { SregistryError } from "../errors.ts";

/**
 * The disk of a download's destination is full (exit 1: a local condition, neither the network's
 * nor the image's fault). The message names the folder, the bytes still needed when known, and the
 * kept partial file the user may remove instead.
 */
export class NoSpaceError extends SregistryError {
  /** The machine-readable kind. */
  override readonly kind: string = "no-space";
}

/** Whether `e` is ENOSPC (or EDQUOT, a full quota, which the user fixes the same way). */
export function isNoSpace(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT" ||
    (e instanceof Error && /\(os error (28|122)\)/.test(e.message));
}

/** Sizes for {@link noSpaceError}. */
export interface NoSpaceFacts {
  /** The final file. */
  dest: string;
  /** The kept partial file, if any bytes were kept. */
  partial?: string;
  /** Bytes of the whole object, when known. */
  total?: number;
  /** Bytes already in the partial file. */
  onDisk: number;
}

/** Other unfinished downloads beside `dest`, which a full disk may be full of: count and bytes. */
function otherPartials(dest: string, own?: string): { count: number; bytes: number } {
  let count = 0, bytes = 0;
  try {
    for (const e of Deno.readDirSync(dirname(dest))) {
      const path = join(dirname(dest), e.name);
      if (!e.isFile || !e.name.endsWith(".partial") || path === own) continue;
      count++;
      bytes += Deno.statSync(path).size;
    }
  } catch { /* the folder is gone: nothing to point at */ }
  return { count, bytes };
}

/** The error for a full disk while downloading to `facts.dest`. */
export function noSpaceError(facts: NoSpaceFacts, cause: unknown): NoSpaceError {
  const dir = dirname(facts.dest);
  const need = facts.total !== undefined ? Math.max(1, facts.total - facts.onDisk) : undefined;
  const free = need !== undefined ? `free ${need} bytes` : "free some space";
  const keep = facts.partial
    ? ` or remove ${facts.partial} (${facts.onDisk} bytes kept to resume)`
    : "";
  const others = otherPartials(facts.dest, facts.partial);
  const also = others.count > 0
    ? ` (${others.count} other unfinished download${
      others.count > 1 ? "s" : ""
    } in that folder hold${others.count > 1 ? "" : "s"} ${others.bytes} bytes: ${
      join(dir, "*.partial")
    })`
    : "";
  return new NoSpaceError(
    `No space left on ${dir}: ${free}${keep}${also}, then run the command again`,
    { cause },
  );
}
