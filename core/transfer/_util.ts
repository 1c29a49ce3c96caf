/**
 * Small helpers the transfer files share.
 * @module
 */

import { IntegrityError, InterruptedError, SregistryError } from "../errors.ts";

/** Why an attempt must start over from zero (a changed remote object, a refused resume). */
export class RestartSignal extends Error {}

/** Whether anything exists at `path` (a dangling symlink counts). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Remove files, ignoring the ones already gone. */
export async function removeQuietly(...paths: string[]): Promise<void> {
  for (const p of paths) await Deno.remove(p).catch(() => {});
}

/** An abort becomes the abort's own SregistryError, or an InterruptedError; anything else passes. */
export function toInterrupted(signal: AbortSignal | undefined, e: unknown): unknown {
  if (signal?.aborted) {
    return signal.reason instanceof SregistryError
      ? signal.reason
      : new InterruptedError("Interrupted");
  }
  return e;
}

/** Fill `buf` from the file's current position; a short read means the file shrank under us. */
export function readExactly(f: Deno.FsFile, buf: Uint8Array, file: string): void {
  for (let got = 0; got < buf.length;) {
    const n = f.readSync(buf.subarray(got));
    if (n === null) {
      throw new IntegrityError(`The file "${file}" shrank while it was being uploaded`);
    }
    got += n;
  }
}

/** The last path segment, for a default progress label. */
export function baseName(path: string, fallback: string): string {
  return path.split("/").at(-1) || fallback;
}
