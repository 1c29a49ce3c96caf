/**
 * A native reader for SIF (Singularity Image Format) files. Telling a SIF from the other image
 * formats is image_format.ts's job; siftool's text renderings are in sif_text.ts.
 *
 * The reader only ever reads the 128-byte global header, the descriptor table and the objects a
 * caller asks for, so inspecting a 10 GiB image costs the same as inspecting a 10 KiB one. Every
 * offset, size and count taken from the file is checked before it is used: a truncated, corrupt or
 * hostile file ends in a {@linkcode SifError} with a one-line message, never in a crash, a hang or
 * a huge allocation.
 *
 * Layout facts (little-endian, packed) follow the reference implementation, github.com/sylabs/sif
 * (`pkg/sif/sif.go`, `descriptor.go`, `arch.go`); the text renderings reproduce what its `siftool`
 * prints for `header`, `list` and `info` (see sif_text.ts).
 *
 * @example Inspect an image
 * ```ts ignore
 * import { openSif } from "./sif.ts";
 * import { formatObjectList } from "./sif_text.ts";
 *
 * using image = await openSif("alpine.sif");
 * console.log(image.header.arch, image.objects.length);
 * console.log(formatObjectList(image.objects));
 * ```
 * @module
 */

import { type ByteSource, fileSource, prefetchSource } from "./byte_source.ts";
import { FormatError, IntegrityError } from "./errors.ts";
import { sniffImageFormat } from "./image_format.ts";

/** A file that is not a valid SIF image: truncated, corrupt, hostile or another format. */
export class SifError extends FormatError {}

// ---------------------------------------------------------------------------------------------
// Constants of the format

/** Size of the global header at offset 0. */
export const SIF_HEADER_SIZE = 128;
/** Size of one descriptor in the descriptor table. */
export const SIF_DESCRIPTOR_SIZE = 585;
/** The magic at offset 32 (`"SIF_MAGIC\0"`). */
export const SIF_MAGIC = "SIF_MAGIC";
/** The only SIF version there is (`"01"`). */
export const SIF_VERSION = "01";
/**
 * The largest descriptor count this reader accepts. Singularity writes 48; siftool can create more,
 * but a count this high (9.6 MB of descriptors) only comes from a corrupt or hostile header, and
 * capping it bounds the memory a bad file can make us allocate.
 */
export const SIF_MAX_DESCRIPTORS = 16384;

/** The value Go's zero `time.Time` has in Unix seconds: what deterministic images store. */
export const GO_ZERO_TIME: number = -62135596800;

const GROUP_MASK = 0xf0000000;
const NAME_OFFSET = 73;
const NAME_LENGTH = 128;
const EXTRA_OFFSET = 201;
const EXTRA_LENGTH = 384;

/** SIF data object types (`DataType`). */
export const SifDataType = {
  deffile: 0x4001,
  envVar: 0x4002,
  labels: 0x4003,
  partition: 0x4004,
  signature: 0x4005,
  genericJson: 0x4006,
  generic: 0x4007,
  cryptoMessage: 0x4008,
  sbom: 0x4009,
  ociRootIndex: 0x400a,
  ociBlob: 0x400b,
} as const;

/** Filesystem types of partition objects (`FSType`). */
export const SifFsType = {
  squashfs: 1,
  ext3: 2,
  archive: 3,
  raw: 4,
  encryptedSquashfs: 5,
} as const;

/** Partition types (`PartType`). */
export const SifPartType = { system: 1, primarySystem: 2, data: 3, overlay: 4 } as const;

/** Signature hash types (the file's `hashType`). */
export const SifHashType = { sha256: 1, sha384: 2, sha512: 3, blake2s: 4, blake2b: 5 } as const;

/** Cryptographic message formats and message types. */
export const SifCrypto = {
  formatOpenPgp: 1,
  formatPem: 2,
  messageClearSignature: 0x100,
  messageRsaOaep: 0x200,
} as const;

const DATA_TYPE_NAMES: Record<number, string> = {
  0x4001: "Def.FILE",
  0x4002: "Env.Vars",
  0x4003: "JSON.Labels",
  0x4004: "FS",
  0x4005: "Signature",
  0x4006: "JSON.Generic",
  0x4007: "Generic/Raw",
  0x4008: "Cryptographic Message",
  0x4009: "SBOM",
  0x400a: "OCI.RootIndex",
  0x400b: "OCI.Blob",
};
const FS_TYPE_NAMES: Record<number, string> = {
  1: "Squashfs",
  2: "Ext3",
  3: "Archive",
  4: "Raw",
  5: "Encrypted squashfs",
};
const PART_TYPE_NAMES: Record<number, string> = {
  1: "System",
  2: "*System",
  3: "Data",
  4: "Overlay",
};
// siftool prints Go's crypto.Hash names, not the older "SHA256" spelling.
const HASH_TYPE_NAMES: Record<number, string> = {
  1: "SHA-256",
  2: "SHA-384",
  3: "SHA-512",
  4: "BLAKE2s-256",
  5: "BLAKE2b-256",
};
const FORMAT_TYPE_NAMES: Record<number, string> = { 1: "OpenPGP", 2: "PEM" };
const MESSAGE_TYPE_NAMES: Record<number, string> = { 0x100: "Clear Signature", 0x200: "RSA-OAEP" };
const SBOM_FORMAT_NAMES: Record<number, string> = {
  1: "cyclonedx-json",
  2: "cyclonedx-xml",
  3: "github-json",
  4: "spdx-json",
  5: "spdx-rdf",
  6: "spdx-tag-value",
  7: "spdx-yaml",
  8: "syft-json",
};
const ARCH_NAMES: Record<string, string> = {
  "01": "386",
  "02": "amd64",
  "03": "arm",
  "04": "arm64",
  "05": "ppc64",
  "06": "ppc64le",
  "07": "mips",
  "08": "mipsle",
  "09": "mips64",
  "10": "mips64le",
  "11": "s390x",
  "12": "riscv64",
  "13": "loong64",
};

/** The name siftool prints for a data object type ("Unknown" for values it does not know). */
export function dataTypeName(type: number): string {
  return DATA_TYPE_NAMES[type] ?? "Unknown";
}

/** The Go architecture name for a SIF architecture code ("02" -> "amd64"), or "unknown". */
export function archName(code: string): string {
  return ARCH_NAMES[code] ?? "unknown";
}

/** The SIF architecture code for a Go architecture name ("amd64" -> "02"), or "00". */
export function archCode(name: string): string {
  for (const [code, arch] of Object.entries(ARCH_NAMES)) if (arch === name) return code;
  return "00";
}

// ---------------------------------------------------------------------------------------------
// Parsed structures

/** The SIF global header, decoded. Sizes and offsets are byte counts. */
export interface SifHeader {
  /** The launch script (`#!/usr/bin/env run-singularity\n`), NUL padding removed. */
  launchScript: string;
  /** The SIF magic without its NUL (`SIF_MAGIC`). */
  magic: string;
  /** The format version without its NUL (`01`). */
  version: string;
  /** The primary architecture code stored in the header (`"02"`), `"00"` when unknown. */
  archCode: string;
  /** The primary architecture as a Go name (`amd64`), or `unknown`. */
  arch: string;
  /** The image UUID; all zeros for deterministic images. */
  id: string;
  /** Creation time, Unix seconds ({@linkcode GO_ZERO_TIME} when unset). */
  createdAt: number;
  /** Modification time, Unix seconds ({@linkcode GO_ZERO_TIME} when unset). */
  modifiedAt: number;
  /** Number of unused descriptor slots. */
  descriptorsFree: number;
  /** Number of descriptor slots. */
  descriptorsTotal: number;
  /** File offset of the descriptor table. */
  descriptorsOffset: number;
  /** Size of the descriptor table. */
  descriptorsSize: number;
  /** File offset of the data section. */
  dataOffset: number;
  /** Size of the data section. */
  dataSize: number;
}

/** Type-specific fields of a partition object. */
export interface SifPartitionInfo {
  /** Filesystem type code (see {@linkcode SifFsType}). */
  fsType: number;
  /** Filesystem type name (`Squashfs`). */
  fsTypeName: string;
  /** Partition type code (see {@linkcode SifPartType}). */
  partType: number;
  /** Partition type name (`*System` for the primary system partition). */
  partTypeName: string;
  /** Architecture code (`"02"`). */
  archCode: string;
  /** Architecture Go name (`amd64`), or `unknown`. */
  arch: string;
}

/** Type-specific fields of a signature object. */
export interface SifSignatureInfo {
  /** Hash type code (see {@linkcode SifHashType}). */
  hashType: number;
  /** Hash name as siftool prints it (`SHA-256`), or `Unknown`. */
  hashTypeName: string;
  /** Upper-case hex fingerprint of the signing key, or null when absent (DSSE signatures). */
  entity: string | null;
}

/** Type-specific fields of a cryptographic message object. */
export interface SifCryptoMessageInfo {
  /** Format code (1 OpenPGP, 2 PEM). */
  formatType: number;
  /** Format name. */
  formatTypeName: string;
  /** Message type code (0x100 clear signature, 0x200 RSA-OAEP). */
  messageType: number;
  /** Message type name. */
  messageTypeName: string;
}

/** One used descriptor of a SIF file: a data object and where it lives. */
export interface SifObject {
  /** Slot index in the descriptor table. */
  index: number;
  /** Object ID (unique in the file). */
  id: number;
  /** Group ID, 0 when the object is in no group. */
  groupId: number;
  /** The object or group this object links to, 0 for none. */
  linkedId: number;
  /** True when {@linkcode SifObject.linkedId} names a group rather than an object. */
  linkIsGroup: boolean;
  /** Data type code (see {@linkcode SifDataType}). */
  dataType: number;
  /** Data type name as siftool prints it (`FS`, `JSON.Generic`, ...). */
  typeName: string;
  /** Absolute file offset of the object's bytes. */
  offset: number;
  /** Length of the object's bytes. */
  size: number;
  /** Length plus the alignment padding before it. */
  sizeWithPadding: number;
  /** Creation time, Unix seconds ({@linkcode GO_ZERO_TIME} when unset). */
  createdAt: number;
  /** Modification time, Unix seconds ({@linkcode GO_ZERO_TIME} when unset). */
  modifiedAt: number;
  /** Deprecated owner UID field. */
  uid: number;
  /** Deprecated owner GID field. */
  gid: number;
  /** Object name (`inspect-metadata.json`), trailing NULs removed. */
  name: string;
  /** Partition fields, for `FS` objects. */
  partition?: SifPartitionInfo;
  /** Signature fields, for `Signature` objects. */
  signature?: SifSignatureInfo;
  /** Cryptographic message fields. */
  cryptoMessage?: SifCryptoMessageInfo;
  /** SBOM format, for `SBOM` objects. */
  sbom?: { format: number; formatName: string };
  /** Blob digest (`sha256:<hex>`), for `OCI.RootIndex` and `OCI.Blob` objects. */
  digest?: string;
}

/** A JSON-serialisable description of a SIF file: what `inspect --objects --json` prints. */
export interface SifInfo {
  /** The path (or source name) read. */
  path: string;
  /** File size in bytes. */
  fileSize: number;
  /** The global header. */
  header: SifHeader;
  /** The used descriptors, in table order. */
  objects: SifObject[];
}

// ---------------------------------------------------------------------------------------------
// Decoding

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

function fail(source: { name: string }, problem: string): never {
  throw new SifError(`Corrupt SIF image "${source.name}": ${problem}`);
}

/** Read an int64 that must be a usable non-negative byte count or offset. */
function readCount(view: DataView, at: number, source: { name: string }, field: string): number {
  const value = view.getBigInt64(at, true);
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    fail(source, `${field} is ${value}, which is not a valid size or offset`);
  }
  return Number(value);
}

/** Read an int64 timestamp; out-of-range values are kept approximately, they only get printed. */
function readTime(view: DataView, at: number): number {
  return Number(view.getBigInt64(at, true));
}

function trimNul(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return bytes.subarray(0, end);
}

function untilNul(bytes: Uint8Array): Uint8Array {
  const nul = bytes.indexOf(0);
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function formatUuid(bytes: Uint8Array): string {
  const h = hex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The all-zero UUID deterministic images carry. */
export const NIL_UUID = "00000000-0000-0000-0000-000000000000";

/**
 * Decode and validate the 128-byte global header.
 *
 * @param bytes at least the first 128 bytes of the file
 * @param source name and total size of the file, for checks and messages
 * @throws {SifError} on a short file, wrong magic, unknown version or impossible table geometry.
 */
export function parseSifHeader(
  bytes: Uint8Array,
  source: { name: string; size: number },
): SifHeader {
  if (bytes.length < SIF_HEADER_SIZE || source.size < SIF_HEADER_SIZE) {
    throw new SifError(
      `Not a SIF image "${source.name}": the file has ${source.size} bytes, ` +
        `fewer than the ${SIF_HEADER_SIZE}-byte SIF header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, SIF_HEADER_SIZE);
  const magic = bytes.subarray(32, 42);
  if (latin1.decode(magic) !== `${SIF_MAGIC}\0`) {
    const hint = sniffLegacy(bytes);
    throw new SifError(
      `Not a SIF image "${source.name}": no SIF_MAGIC at offset 32` +
        (hint ? ` (it looks like a ${hint} image)` : ""),
    );
  }
  const version = latin1.decode(bytes.subarray(42, 45));
  if (version !== `${SIF_VERSION}\0`) {
    throw new SifError(
      `Unsupported SIF image "${source.name}": version ${
        JSON.stringify(latin1.decode(trimNul(bytes.subarray(42, 45))))
      }, this reader knows version ${SIF_VERSION}`,
    );
  }
  const code = latin1.decode(untilNul(bytes.subarray(45, 48)));
  const header: SifHeader = {
    launchScript: utf8.decode(trimNul(bytes.subarray(0, 32))),
    magic: SIF_MAGIC,
    version: SIF_VERSION,
    archCode: code,
    arch: archName(code),
    id: formatUuid(bytes.subarray(48, 64)),
    createdAt: readTime(view, 64),
    modifiedAt: readTime(view, 72),
    descriptorsFree: readCount(view, 80, source, "the free descriptor count"),
    descriptorsTotal: readCount(view, 88, source, "the descriptor count"),
    descriptorsOffset: readCount(view, 96, source, "the descriptor table offset"),
    descriptorsSize: readCount(view, 104, source, "the descriptor table size"),
    dataOffset: readCount(view, 112, source, "the data section offset"),
    dataSize: readCount(view, 120, source, "the data section size"),
  };
  const total = header.descriptorsTotal;
  if (total > SIF_MAX_DESCRIPTORS) {
    fail(source, `descriptor count ${total} is over the limit of ${SIF_MAX_DESCRIPTORS}`);
  }
  if (header.descriptorsFree > total) {
    fail(source, `${header.descriptorsFree} free descriptors out of ${total}`);
  }
  const tableBytes = total * SIF_DESCRIPTOR_SIZE;
  if (header.descriptorsSize < tableBytes) {
    fail(
      source,
      `descriptor table size ${header.descriptorsSize} is too small for ${total} descriptors ` +
        `(${tableBytes} bytes)`,
    );
  }
  if (total > 0 && header.descriptorsOffset < SIF_HEADER_SIZE) {
    fail(source, `descriptor table offset ${header.descriptorsOffset} overlaps the header`);
  }
  if (header.descriptorsOffset + tableBytes > source.size) {
    fail(
      source,
      `truncated: the descriptor table ends at byte ${
        header.descriptorsOffset + tableBytes
      } but the file has ${source.size} bytes`,
    );
  }
  if (header.dataOffset + header.dataSize > source.size) {
    fail(
      source,
      `truncated: the data section ends at byte ${
        header.dataOffset + header.dataSize
      } but the file has ${source.size} bytes`,
    );
  }
  return header;
}

/**
 * Decode the used descriptors of a descriptor table and check them against each other and the
 * file: every object inside the file, outside the header and the table, no two overlapping, no
 * duplicate IDs.
 *
 * @param table `header.descriptorsTotal * 585` bytes read at `header.descriptorsOffset`
 * @throws {SifError} on the first inconsistency.
 */
export function parseSifDescriptors(
  table: Uint8Array,
  header: SifHeader,
  source: { name: string; size: number },
): SifObject[] {
  const total = header.descriptorsTotal;
  if (table.length < total * SIF_DESCRIPTOR_SIZE) {
    fail(source, `truncated: the descriptor table is cut short`);
  }
  const objects: SifObject[] = [];
  const ids = new Set<number>();
  const tableStart = header.descriptorsOffset;
  const tableEnd = tableStart + total * SIF_DESCRIPTOR_SIZE;
  for (let index = 0; index < total; index++) {
    const raw = table.subarray(index * SIF_DESCRIPTOR_SIZE, (index + 1) * SIF_DESCRIPTOR_SIZE);
    // Go decodes any non-zero byte as `true`; do the same.
    if (raw[4] === 0) continue;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const id = view.getUint32(5, true);
    const what = `object ${id} (descriptor ${index + 1})`;
    const dataType = view.getInt32(0, true);
    const rawGroup = view.getUint32(9, true);
    const rawLink = view.getUint32(13, true);
    const offset = readCount(view, 17, source, `the offset of ${what}`);
    const size = readCount(view, 25, source, `the size of ${what}`);
    const sizeWithPadding = readCount(view, 33, source, `the padded size of ${what}`);
    if (id === 0) fail(source, `descriptor ${index + 1} is in use but has object ID 0`);
    if (ids.has(id)) fail(source, `two descriptors use object ID ${id}`);
    ids.add(id);
    if (offset + size > source.size) {
      fail(
        source,
        `truncated: ${what} ends at byte ${offset + size} but the file has ${source.size} bytes`,
      );
    }
    if (size > 0 && offset < SIF_HEADER_SIZE) {
      fail(source, `${what} at offset ${offset} overlaps the header`);
    }
    if (size > 0 && offset < tableEnd && offset + size > tableStart) {
      fail(source, `${what} at offset ${offset} overlaps the descriptor table`);
    }
    const extra = raw.subarray(EXTRA_OFFSET, EXTRA_OFFSET + EXTRA_LENGTH);
    const extraView = new DataView(extra.buffer, extra.byteOffset, extra.byteLength);
    const object: SifObject = {
      index,
      id,
      groupId: (rawGroup & ~GROUP_MASK) >>> 0,
      linkedId: (rawLink & ~GROUP_MASK) >>> 0,
      linkIsGroup: ((rawLink & GROUP_MASK) >>> 0) === GROUP_MASK,
      dataType,
      typeName: dataTypeName(dataType),
      offset,
      size,
      sizeWithPadding,
      createdAt: readTime(view, 41),
      modifiedAt: readTime(view, 49),
      uid: readTime(view, 57),
      gid: readTime(view, 65),
      name: utf8.decode(trimNul(raw.subarray(NAME_OFFSET, NAME_OFFSET + NAME_LENGTH))),
    };
    switch (dataType) {
      case SifDataType.partition: {
        const fsType = extraView.getInt32(0, true);
        const partType = extraView.getInt32(4, true);
        const code = latin1.decode(untilNul(extra.subarray(8, 11)));
        object.partition = {
          fsType,
          fsTypeName: FS_TYPE_NAMES[fsType] ?? "Unknown",
          partType,
          partTypeName: PART_TYPE_NAMES[partType] ?? "Unknown",
          archCode: code,
          arch: archName(code),
        };
        break;
      }
      case SifDataType.signature: {
        const hashType = extraView.getInt32(0, true);
        const fingerprint = extra.subarray(4, 24);
        object.signature = {
          hashType,
          hashTypeName: HASH_TYPE_NAMES[hashType] ?? "Unknown",
          entity: fingerprint.every((b) => b === 0) ? null : hex(fingerprint).toUpperCase(),
        };
        break;
      }
      case SifDataType.cryptoMessage: {
        const formatType = extraView.getInt32(0, true);
        const messageType = extraView.getInt32(4, true);
        object.cryptoMessage = {
          formatType,
          formatTypeName: FORMAT_TYPE_NAMES[formatType] ?? "Unknown",
          messageType,
          messageTypeName: MESSAGE_TYPE_NAMES[messageType] ?? "Unknown",
        };
        break;
      }
      case SifDataType.sbom: {
        const format = extraView.getInt32(0, true);
        object.sbom = { format, formatName: SBOM_FORMAT_NAMES[format] ?? "unknown" };
        break;
      }
      case SifDataType.ociRootIndex:
      case SifDataType.ociBlob:
        object.digest = latin1.decode(untilNul(extra));
        break;
    }
    objects.push(object);
  }
  // Overlap check over the objects that occupy bytes, in file order. O(n log n) with n <= the
  // descriptor cap, so a hostile table cannot make this slow.
  const placed = objects.filter((o) => o.size > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < placed.length; i++) {
    const before = placed[i - 1];
    const after = placed[i];
    if (after.offset < before.offset + before.size) {
      fail(
        source,
        `object ${after.id} (bytes ${after.offset}-${after.offset + after.size}) overlaps ` +
          `object ${before.id} (bytes ${before.offset}-${before.offset + before.size})`,
      );
    }
  }
  return objects;
}

/** Guess what a non-SIF buffer is, for error hints. */
function sniffLegacy(bytes: Uint8Array): string | undefined {
  const found = sniffImageFormat(bytes, Number.MAX_SAFE_INTEGER);
  if (found.format === "squashfs") return "legacy squashfs (.simg)";
  if (found.format === "ext3") return "legacy ext3";
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The image

/** Options of {@linkcode openSif}. */
export interface OpenSifOptions {
  /** Close the source if opening fails or when the image is closed (default true). */
  closeSource?: boolean;
}

/** The default limit of {@linkcode SifImage.readObject}: objects larger than this are refused. */
export const DEFAULT_MAX_OBJECT_BYTES = 64 * 1024 * 1024;

/** An opened SIF image: its header and objects are parsed, object bytes are read on demand. */
export class SifImage {
  /** Where the bytes come from. */
  readonly source: ByteSource;
  /** The decoded global header. */
  readonly header: SifHeader;
  /** The used descriptors, in table order. */
  readonly objects: readonly SifObject[];
  #closeSource: boolean;

  /** Build an image from an already parsed header and descriptors; see {@linkcode openSif}. */
  constructor(
    source: ByteSource,
    header: SifHeader,
    objects: readonly SifObject[],
    closeSource = true,
  ) {
    this.source = source;
    this.header = header;
    this.objects = objects;
    this.#closeSource = closeSource;
  }

  /** The source name (usually the path). */
  get name(): string {
    return this.source.name;
  }

  /** The object with this ID, if any. */
  object(id: number): SifObject | undefined {
    return this.objects.find((o) => o.id === id);
  }

  /** Objects of a data type, optionally with a given name. */
  find(dataType: number, name?: string): SifObject[] {
    return this.objects.filter((o) =>
      o.dataType === dataType && (name === undefined || o.name === name)
    );
  }

  /** The primary system partition (`*System`), if any. */
  primaryPartition(): SifObject | undefined {
    return this.objects.find((o) => o.partition?.partType === SifPartType.primarySystem);
  }

  /**
   * The bytes of one object.
   *
   * @param object the object, or its ID
   * @param maxBytes refuse objects larger than this (default 64 MiB), so a descriptor that claims
   *   gigabytes cannot make us allocate them
   * @throws {SifError} when the object does not exist, is too large, or the file is shorter than
   *   the descriptor says.
   */
  async readObject(
    object: SifObject | number,
    maxBytes: number = DEFAULT_MAX_OBJECT_BYTES,
  ): Promise<Uint8Array> {
    const found = typeof object === "number" ? this.object(object) : object;
    if (!found) {
      throw new SifError(`SIF image "${this.name}" has no object with ID ${object}`);
    }
    if (found.size > maxBytes) {
      throw new SifError(
        `SIF image "${this.name}": object ${found.id} is ${found.size} bytes, ` +
          `over the ${maxBytes}-byte limit for reading it`,
      );
    }
    const bytes = await this.source.readAt(found.offset, found.size);
    if (bytes.length !== found.size) {
      fail(this.source, `truncated: object ${found.id} could not be read in full`);
    }
    return bytes;
  }

  /** The bytes of one object decoded as UTF-8 text (see {@linkcode SifImage.readObject}). */
  async readText(object: SifObject | number, maxBytes?: number): Promise<string> {
    return utf8.decode(await this.readObject(object, maxBytes));
  }

  /** A JSON-serialisable copy of the header and objects. */
  toJSON(): SifInfo {
    return {
      path: this.name,
      fileSize: this.source.size,
      header: { ...this.header },
      objects: this.objects.map((o) => structuredClone(o)),
    };
  }

  /** Release the file handle. */
  close(): void {
    if (this.#closeSource) this.source.close();
  }

  /** Release the file handle (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Read and validate the global header of a SIF source.
 *
 * @throws {SifError} when the source is not a valid SIF file.
 */
export async function readSifHeader(source: ByteSource): Promise<SifHeader> {
  const bytes = await source.readAt(0, SIF_HEADER_SIZE);
  return parseSifHeader(bytes, source);
}

/**
 * Refuse a SIF image that is shorter than its own header says, as a download cut short or a
 * truncated copy is: the descriptor table or the data section would end past the end of the file.
 * The store step calls this for every pulled file and `add` for every added one, before anything is
 * recorded. Files that are not SIF images, and SIF headers too broken to give a length, are left to
 * the metadata reader.
 *
 * @param input a path, or a {@linkcode ByteSource} (left open)
 * @throws {IntegrityError} (exit 6) when the header claims more bytes than the file has.
 */
export async function checkSifComplete(input: string | ByteSource): Promise<void> {
  const source = typeof input === "string" ? await fileSource(input) : input;
  try {
    const magicEnd = 32 + SIF_MAGIC.length + 1;
    if (source.size < magicEnd) return;
    const head = await source.readAt(0, Math.min(SIF_HEADER_SIZE, source.size));
    if (latin1.decode(head.subarray(32, magicEnd)) !== `${SIF_MAGIC}\0`) return;
    // An unknown version is not a SIF this reader can measure: the metadata reader says so.
    if (head.length >= 45 && latin1.decode(head.subarray(42, 45)) !== `${SIF_VERSION}\0`) return;
    const missing = (claimed: bigint, what: string) =>
      new IntegrityError(
        `Truncated SIF image "${source.name}": ${what} says it has ${claimed} bytes, the file has ${source.size}; it was not stored`,
      );
    if (head.length < SIF_HEADER_SIZE) throw missing(BigInt(SIF_HEADER_SIZE), "its format");
    const view = new DataView(head.buffer, head.byteOffset, SIF_HEADER_SIZE);
    const count = (at: number) => view.getBigInt64(at, true);
    const [total, tableAt, dataAt, dataSize] = [count(88), count(96), count(112), count(120)];
    // Impossible fields are corruption, not truncation: the metadata reader names them.
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    if ([total, tableAt, dataAt, dataSize].some((v) => v < 0n || v > max)) return;
    if (total > BigInt(SIF_MAX_DESCRIPTORS)) return;
    const tableEnd = total > 0n ? tableAt + total * BigInt(SIF_DESCRIPTOR_SIZE) : 0n;
    const dataEnd = dataSize > 0n ? dataAt + dataSize : 0n;
    const claimed = tableEnd > dataEnd ? tableEnd : dataEnd;
    if (claimed > BigInt(source.size)) throw missing(claimed, "its header");
  } finally {
    if (typeof input === "string") source.close();
  }
}

/**
 * Open a SIF image: reads the header and the descriptor table, nothing else.
 *
 * @param input a path, or a {@linkcode ByteSource} (memory, tests)
 * @throws {SifError} when the file is not a valid SIF image.
 * @throws {NotFoundError} when the path does not exist.
 */
export async function openSif(
  input: string | ByteSource,
  options: OpenSifOptions = {},
): Promise<SifImage> {
  const source = typeof input === "string" ? prefetchSource(await fileSource(input)) : input;
  const closeSource = options.closeSource ?? true;
  try {
    const header = await readSifHeader(source);
    const length = header.descriptorsTotal * SIF_DESCRIPTOR_SIZE;
    const table = await source.readAt(header.descriptorsOffset, length);
    const objects = parseSifDescriptors(table, header, source);
    return new SifImage(source, header, objects, closeSource);
  } catch (error) {
    if (closeSource) source.close();
    throw error;
  }
}

/**
 * The objects of an image (a convenience over {@linkcode SifImage.objects} for one-shot use).
 *
 * @param input a path, a source, or an opened image
 */
export async function listObjects(input: string | ByteSource | SifImage): Promise<SifObject[]> {
  if (input instanceof SifImage) return [...input.objects];
  const image = await openSif(input);
  try {
    return [...image.objects];
  } finally {
    image.close();
  }
}

/**
 * Read one object's bytes from an opened image (see {@linkcode SifImage.readObject}).
 */
export function readObject(
  image: SifImage,
  object: SifObject | number,
  maxBytes?: number,
): Promise<Uint8Array> {
  return image.readObject(object, maxBytes);
}

/**
 * Header and objects of an image as plain JSON data, reading only the header and descriptors.
 *
 * @throws {SifError} when the file is not a valid SIF image.
 */
export async function inspectSif(input: string | ByteSource): Promise<SifInfo> {
  const image = await openSif(input);
  try {
    return image.toJSON();
  } finally {
    image.close();
  }
}
