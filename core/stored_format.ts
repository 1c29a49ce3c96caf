/**
 * The format of a file about to be stored, and the extension it is stored under, so that an OCI
 * archive is never named `.sif`. SIF, squashfs and ext3 come from core/sif.ts's detector; an OCI
 * archive is a tar whose first entries include `oci-layout` (what `writeLayoutTar`, skopeo and
 * `singularity build` write).
 * @module
 */

import { detectImageFormat } from "./sif.ts";

/** What a stored image file is. */
export type StoredFormat = "sif" | "oci-archive" | "squashfs" | "ext3" | "unknown";

/** How many tar headers {@link isOciArchive} looks at before giving up. */
const MAX_ENTRIES = 8;

/** Whether a file is a tar archive holding an OCI image layout (`oci-layout` among its first entries). */
export async function isOciArchive(path: string): Promise<boolean> {
  using f = await Deno.open(path, { read: true });
  const size = (await f.stat()).size;
  let offset = 0;
  const header = new Uint8Array(512);
  const latin1 = new TextDecoder("latin1");
  for (let i = 0; i < MAX_ENTRIES && offset + 512 <= size; i++) {
    await f.seek(offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < 512) {
      const n = await f.read(header.subarray(got));
      if (n === null) return false;
      got += n;
    }
    if (latin1.decode(header.subarray(257, 262)) !== "ustar") return false;
    const name = latin1.decode(header.subarray(0, 100)).replace(/\0.*$/s, "").replace(/^\.\//, "");
    if (name === "oci-layout") return true;
    const sizeField = latin1.decode(header.subarray(124, 136)).replace(/\0.*$/s, "").trim();
    const entrySize = parseInt(sizeField || "0", 8);
    if (!Number.isFinite(entrySize)) return false;
    offset += 512 + Math.ceil(entrySize / 512) * 512;
  }
  return false;
}

/** The format of an image file: SIF, legacy squashfs/ext3, an OCI archive, or unknown. */
export async function detectStoredFormat(path: string): Promise<StoredFormat> {
  const { format } = await detectImageFormat(path);
  if (format !== "unknown") return format;
  return await isOciArchive(path) ? "oci-archive" : "unknown";
}

/**
 * The extension a format is stored under. Unknown files keep `.sif`, the name sregistry-cli gave
 * every stored file, so existing scripts that expect it keep working.
 */
export function extensionFor(format: StoredFormat): string {
  switch (format) {
    case "oci-archive":
      return "oci.tar";
    case "squashfs":
      return "simg";
    case "ext3":
      return "img";
    default:
      return "sif";
  }
}

/** The extension of a stored path (`oci.tar`, `sif`, ...), or undefined for none of ours. */
export function extensionOf(path: string): string | undefined {
  const m = /\.(oci\.tar|sif|simg|img)$/.exec(path);
  return m?.[1];
}
