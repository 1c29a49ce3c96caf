/**
 * What survives an interrupted download: `<dest>.partial` holds the bytes, and
 * `<dest>.partial.json` the validator (ETag, Last-Modified, expected digest) and, for a parallel
 * download, how far each part got. The next run continues with a Range request when the validator
 * still matches, and starts over otherwise.
 * @module
 */

/** One range of a parallel download; `pos` is the resume point (bytes written, not received). */
export interface Part {
  /** First byte. */
  start: number;
  /** One past the last byte. */
  end: number;
  /** The next byte to fetch. */
  pos: number;
}

/** The contents of `<dest>.partial.json`. */
export interface PartialMeta {
  /** Format version. */
  version: 1;
  /** The URL the bytes came from. */
  url: string;
  /** The server's ETag. */
  etag?: string;
  /** The server's Last-Modified. */
  lastModified?: string;
  /** The digest the bytes must have (`sha256:<hex>`). */
  digest?: string;
  /** The whole object's size. */
  size?: number;
  /** The parts of a parallel download. */
  parts?: Part[];
}

/** The two files of an unfinished download of `dest`. */
export function partialPaths(dest: string): { partial: string; metaPath: string } {
  const partial = `${dest}.partial`;
  return { partial, metaPath: `${partial}.json` };
}

/** The validator to send back in If-Range (weak ETags cannot be used). */
export function ifRange(meta: PartialMeta): string | undefined {
  if (meta.etag && !meta.etag.startsWith("W/")) return meta.etag;
  return meta.lastModified;
}

/** The saved state, or undefined when missing or unreadable. */
export async function readMeta(path: string): Promise<PartialMeta | undefined> {
  try {
    const m = JSON.parse(await Deno.readTextFile(path));
    return m && m.version === 1 && typeof m.url === "string" ? m as PartialMeta : undefined;
  } catch {
    return undefined;
  }
}

/** Save the state; synchronous, as the parallel download's saver runs on a timer. */
export function writeMeta(path: string, meta: PartialMeta): void {
  // Written via a temp file and rename so a kill mid-write never leaves half a JSON document.
  // A failed write (a full disk) removes its temp file: an empty one would only take more space.
  const tmp = `${path}.tmp`;
  try {
    Deno.writeTextFileSync(tmp, JSON.stringify(meta));
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never made */ }
    throw e;
  }
}

/**
 * Whether a saved state may be resumed for this request: the same expected digest (or, without
 * one, the same URL) and something to validate against.
 */
export function canResume(
  meta: PartialMeta | undefined,
  href: string,
  expected: string | undefined,
): meta is PartialMeta {
  if (!meta) return false;
  const same = expected
    ? meta.digest === expected || (!meta.digest && meta.url === href)
    : meta.url === href;
  return same && Boolean(ifRange(meta) || meta.digest);
}
