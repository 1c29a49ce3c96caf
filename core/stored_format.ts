/**
 * The format of a file about to be stored, and the extension it is stored under, so that an OCI
 * archive is never named `.sif`. The format comes from core/image_format.ts, which also knows OCI
 * archives (tars holding `oci-layout` and `index.json`).
 * @module
 */

import { detectImageFormat, type ImageFormat } from "./image_format.ts";

/** What a stored image file is. */
export type StoredFormat = ImageFormat;

/** The format of an image file: SIF, legacy squashfs/ext3, an OCI archive, or unknown. */
export async function detectStoredFormat(path: string): Promise<StoredFormat> {
  return (await detectImageFormat(path)).format;
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
