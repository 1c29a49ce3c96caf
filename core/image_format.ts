/**
 * What kind of image a file is, from its first bytes: a SIF, an OCI image layout archive (a tar
 * holding `oci-layout` and `index.json`, what `oci-archive:` means to singularity and skopeo), or one
 * of the legacy formats Singularity 2.x wrote (squashfs `.simg`, ext3 `.img`). The stored extension
 * and the metadata reader follow this answer.
 * @module
 */

import { type ByteSource, fileSource } from "./byte_source.ts";

/** What kind of image a file is. */
export type ImageFormat = "sif" | "oci-archive" | "squashfs" | "ext3" | "unknown";

/** The result of {@linkcode detectImageFormat}. */
export interface ImageFormatInfo {
  /** The format found. */
  format: ImageFormat;
  /** True for the formats Singularity 2.x wrote (`squashfs`, `ext3`). */
  legacy: boolean;
  /** The `#!` launch line before the payload (or in the SIF header), if any. */
  launchScript?: string;
  /** For legacy images: where the filesystem starts (after the launch line). */
  payloadOffset?: number;
  /** For squashfs images: the compression named in the superblock (`gzip`, `xz`, ...). */
  compression?: string;
  /** For squashfs images: the superblock's creation time, Unix seconds. */
  createdAt?: number;
}

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

// sif.ts's SIF_MAGIC, at the same offset; sif.ts imports this module for its error hints.
const SIF_MAGIC_AT = 32;
const SIF_MAGIC_BYTES = "SIF_MAGIC\0";
const SIF_HEADER_SIZE = 128;
const SQUASHFS_COMPRESSION: Record<number, string> = {
  1: "gzip",
  2: "lzma",
  3: "lzo",
  4: "xz",
  5: "lz4",
  6: "zstd",
};
// Singularity 2.x looked for this marker and started the filesystem right after its line.
const LAUNCH_MARKER = "run-singularity";
const EXT_MAGIC_OFFSET = 1080;
/** How many leading bytes {@linkcode detectImageFormat} reads (tar headers past it are read too). */
export const DETECT_BYTES = 4096;

const TAR_BLOCK = 512;
/** Entries looked at before a tar is given up on as not an OCI layout. */
const MAX_TAR_ENTRIES = 10_000;

function trimNul(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return bytes.subarray(0, end);
}

/**
 * Recognise SIF and the legacy formats from leading bytes alone (`fileSize` bounds what is valid).
 * Tar archives are not recognised here, as their entries can be anywhere in the file: see
 * {@linkcode detectImageFormat}.
 */
export function sniffImageFormat(bytes: Uint8Array, fileSize: number): ImageFormatInfo {
  const size = Math.min(fileSize, bytes.length);
  if (
    size >= SIF_HEADER_SIZE &&
    latin1.decode(bytes.subarray(SIF_MAGIC_AT, SIF_MAGIC_AT + SIF_MAGIC_BYTES.length)) ===
      SIF_MAGIC_BYTES
  ) {
    const launch = utf8.decode(trimNul(bytes.subarray(0, 32)));
    return { format: "sif", legacy: false, ...(launch ? { launchScript: launch } : {}) };
  }
  // Payload offset: 0, or just past the line holding the launch marker (as Singularity did).
  let payload = 0;
  let launchScript: string | undefined;
  if (bytes[0] === 0x23 && bytes[1] === 0x21) { // "#!"
    const head = latin1.decode(bytes.subarray(0, Math.min(size, 512)));
    const marker = head.indexOf(LAUNCH_MARKER);
    const newline = head.indexOf("\n", marker);
    if (marker > 0 && newline > 0) {
      payload = newline + 1;
      launchScript = head.slice(0, payload);
    }
  }
  const at = (offset: number, length: number) =>
    offset + length <= size ? bytes.subarray(offset, offset + length) : undefined;
  const magic = at(payload, 4);
  if (magic && latin1.decode(magic) === "hsqs") {
    const sb = at(payload, 24);
    const info: ImageFormatInfo = {
      format: "squashfs",
      legacy: true,
      payloadOffset: payload,
      ...(launchScript ? { launchScript } : {}),
    };
    if (sb) {
      const view = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
      info.createdAt = view.getUint32(8, true);
      info.compression = SQUASHFS_COMPRESSION[view.getUint16(20, true)] ?? "unknown";
    }
    return info;
  }
  const ext = at(payload + EXT_MAGIC_OFFSET, 2);
  if (ext && ext[0] === 0x53 && ext[1] === 0xef) {
    return {
      format: "ext3",
      legacy: true,
      payloadOffset: payload,
      ...(launchScript ? { launchScript } : {}),
    };
  }
  return { format: "unknown", legacy: false };
}

/** Whether a 512-byte block is a ustar (POSIX or GNU) header with a valid checksum. */
function isTarHeader(block: Uint8Array): boolean {
  if (block.length < TAR_BLOCK || latin1.decode(block.subarray(257, 262)) !== "ustar") return false;
  const stored = parseInt(latin1.decode(trimNul(block.subarray(148, 156))).trim(), 8);
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return stored === sum;
}

/** An entry's size: octal, or GNU base-256 for sizes of 8 GiB and more. */
function tarSize(block: Uint8Array): number {
  const field = block.subarray(124, 136);
  if (field[0] & 0x80) {
    let n = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i];
    return n;
  }
  return parseInt(latin1.decode(trimNul(field)).trim() || "0", 8);
}

/**
 * Walk a tar's headers (reading 512 bytes per entry, skipping the contents) looking for the two
 * files every OCI image layout has at its root.
 */
async function isOciArchive(source: ByteSource, first: Uint8Array): Promise<boolean> {
  let block = first;
  let offset = 0;
  let layout = false, index = false;
  for (let n = 0; n < MAX_TAR_ENTRIES; n++) {
    if (!isTarHeader(block)) return false;
    const name = latin1.decode(trimNul(block.subarray(0, 100))).replace(/^\.\//, "");
    const type = String.fromCharCode(block[156] || 0x30);
    if (type === "0" || type === "\0") {
      if (name === "oci-layout") layout = true;
      if (name === "index.json") index = true;
      if (layout && index) return true;
    }
    offset += TAR_BLOCK + Math.ceil(tarSize(block) / TAR_BLOCK) * TAR_BLOCK;
    if (offset + TAR_BLOCK > source.size) return false;
    block = await source.readAt(offset, TAR_BLOCK);
  }
  return false;
}

/**
 * Recognise an image file: SIF, an OCI layout tar (`oci-archive`), a legacy squashfs `.simg`
 * (magic `hsqs` at offset 0, or after a `#!/usr/bin/env run-singularity` line), a legacy ext3
 * image, or unknown. It does not validate a SIF beyond its magic; `openSif` does.
 *
 * @throws {NotFoundError} when the path does not exist.
 */
export async function detectImageFormat(input: string | ByteSource): Promise<ImageFormatInfo> {
  const source = typeof input === "string" ? await fileSource(input) : input;
  try {
    const bytes = await source.readAt(0, Math.min(source.size, DETECT_BYTES));
    const found = sniffImageFormat(bytes, source.size);
    if (found.format !== "unknown") return found;
    if (await isOciArchive(source, bytes.subarray(0, TAR_BLOCK))) {
      return { format: "oci-archive", legacy: false };
    }
    return found;
  } finally {
    if (typeof input === "string") source.close();
  }
}
