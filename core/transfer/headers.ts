/**
 * What the transfer layer reads from response headers: lengths, ranges and announced digests.
 * @module
 */

/** A parsed `Content-Range: bytes <start>-<end>/<total|*>` (end inclusive). */
export interface ContentRange {
  /** First byte. */
  start: number;
  /** Last byte (inclusive). */
  end: number;
  /** The whole object's size, when the server says. */
  total?: number;
}

/** Parse a 206's Content-Range. */
export function parseContentRange(v: string | null): ContentRange | undefined {
  const m = v?.match(/^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i);
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

/** The size a 416 announces (`Content-Range: bytes *\/<total>`). */
export function unsatisfiedTotal(v: string | null): number | undefined {
  const m = v?.match(/^bytes\s+\*\/(\d+)$/i);
  return m ? Number(m[1]) : undefined;
}

/** Content-Length, when it is a plain number. */
export function contentLength(res: Response): number | undefined {
  const v = res.headers.get("content-length");
  return v && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** The sha-256 a server announces for the whole representation, as `sha256:<hex>`, if any. */
export function announcedDigest(headers: Headers): string | undefined {
  for (const name of ["repr-digest", "digest"]) {
    const m = headers.get(name)?.match(/sha-?256=:?([A-Za-z0-9+/=]+):?/i);
    if (m) {
      try {
        const bytes = Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0));
        if (bytes.length === 32) {
          return `sha256:${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
        }
      } catch { /* not base64: ignore the header */ }
    }
  }
  const x = headers.get("x-checksum-sha256")?.trim().toLowerCase();
  return x && /^[0-9a-f]{64}$/.test(x) ? `sha256:${x}` : undefined;
}
