/**
 * A SIF writer for tests and benchmarks (not a user command). It lays files out the way the
 * reference implementation (github.com/sylabs/sif `pkg/sif/create.go`) does: a 128-byte header,
 * the descriptor table at 4096, data from the end of the table, each object appended at the next
 * position its alignment allows (partitions 4096, everything else 1), `SizeWithPadding` counting
 * the padding before the object, the header's architecture taken from the primary partition.
 * With the same inputs it reproduces the reference test images byte for byte.
 * @module
 */

import {
  archCode,
  GO_ZERO_TIME,
  SIF_DESCRIPTOR_SIZE,
  SifDataType,
  SifFsType,
  SifHashType,
  SifPartType,
} from "../core/sif.ts";

const encoder = new TextEncoder();
const GROUP_MASK = 0xf0000000;

/** One data object to write. */
export interface ObjectInput {
  /** Data type code (see `SifDataType`). */
  type: number;
  /** The object's bytes (strings are UTF-8 encoded). Omit with `size` for a sparse object. */
  data?: Uint8Array | string;
  /** Size of a sparse object whose bytes are never written (zeros; needs `writeSif`). */
  size?: number;
  /** Group ID; default 1; 0 for no group. */
  group?: number;
  /** Linked object or group ID; default 0 (none). */
  link?: number;
  /** Whether `link` names a group. */
  linkIsGroup?: boolean;
  /** Object name. */
  name?: string;
  /** Alignment; default 4096 for partitions, 1 otherwise. */
  align?: number;
  /** Creation time (Unix seconds), default Go's zero time as deterministic images have. */
  createdAt?: number;
  /** Modification time (Unix seconds), default `createdAt`. */
  modifiedAt?: number;
  /** UID and GID fields (deprecated), default 0. */
  uid?: number;
  /** GID field. */
  gid?: number;
  /** Raw extra bytes (overrides the typed fields below). */
  extra?: Uint8Array;
  /** Partition fields. */
  partition?: { fs: number; part: number; arch: string };
  /** Signature fields: hash type and the 20-byte fingerprint as hex (omit for none). */
  signature?: { hash: number; entity?: string };
  /** Cryptographic message fields. */
  crypto?: { format: number; message: number };
  /** SBOM format. */
  sbomFormat?: number;
  /** OCI blob / root index digest. */
  digest?: string;
  /** Force the "used" byte (for corrupt files); default 1. */
  used?: number;
  /** Force the object ID (for corrupt files); default slot index + 1. */
  id?: number;
  /** Force the offset (for corrupt files). */
  offset?: number;
}

/** The whole image to write. */
export interface SifInput {
  /** Launch script; default none. Singularity writes `#!/usr/bin/env run-singularity\n`. */
  launchScript?: string;
  /** Image UUID as text; default all zeros (deterministic). */
  id?: string;
  /** Header creation time; default Go's zero time. */
  createdAt?: number;
  /** Header modification time; default `createdAt`. */
  modifiedAt?: number;
  /** Descriptor capacity; default 48. */
  descriptorsTotal?: number;
  /** Descriptor table offset; default 4096. */
  descriptorsOffset?: number;
  /** Header architecture override (Go name); default from the primary partition. */
  arch?: string;
  /** The objects, in slot order. */
  objects: ObjectInput[];
}

interface Placed {
  input: ObjectInput;
  bytes?: Uint8Array;
  offset: number;
  size: number;
  sizeWithPadding: number;
}

/** Where everything goes, before any byte is written. */
export interface SifLayout {
  /** Header and descriptor table (everything before the data section). */
  head: Uint8Array;
  /** Objects with their bytes and offsets. */
  placed: { offset: number; bytes?: Uint8Array; size: number }[];
  /** Total file size. */
  fileSize: number;
}

function bytesOf(data: Uint8Array | string | undefined): Uint8Array | undefined {
  return typeof data === "string" ? encoder.encode(data) : data;
}

function uuidBytes(id: string | undefined): Uint8Array {
  const out = new Uint8Array(16);
  if (!id) return out;
  const hex = id.replaceAll("-", "");
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function extraOf(o: ObjectInput): Uint8Array {
  const extra = new Uint8Array(384);
  if (o.extra) {
    extra.set(o.extra.subarray(0, 384));
    return extra;
  }
  const view = new DataView(extra.buffer);
  if (o.partition) {
    view.setInt32(0, o.partition.fs, true);
    view.setInt32(4, o.partition.part, true);
    extra.set(encoder.encode(archCode(o.partition.arch)), 8);
  } else if (o.signature) {
    view.setInt32(0, o.signature.hash, true);
    if (o.signature.entity) {
      for (let i = 0; i < 20; i++) {
        extra[4 + i] = parseInt(o.signature.entity.slice(i * 2, i * 2 + 2), 16);
      }
    }
  } else if (o.crypto) {
    view.setInt32(0, o.crypto.format, true);
    view.setInt32(4, o.crypto.message, true);
  } else if (o.sbomFormat !== undefined) {
    view.setInt32(0, o.sbomFormat, true);
  } else if (o.digest !== undefined) {
    extra.set(encoder.encode(o.digest).subarray(0, 383));
  }
  return extra;
}

/** Compute the layout of an image: header + table bytes, and where each object goes. */
export function layoutSif(input: SifInput): SifLayout {
  const total = input.descriptorsTotal ?? 48;
  const descOffset = input.descriptorsOffset ?? 4096;
  const descSize = total * SIF_DESCRIPTOR_SIZE;
  const dataOffset = descOffset + descSize;
  const created = input.createdAt ?? GO_ZERO_TIME;
  const placed: Placed[] = [];
  let end = dataOffset;
  for (const o of input.objects) {
    const bytes = bytesOf(o.data);
    const size = bytes?.length ?? o.size ?? 0;
    const align = o.align ?? (o.type === SifDataType.partition ? 4096 : 1);
    const offset = o.offset ?? Math.ceil(end / align) * align;
    placed.push({ input: o, bytes, offset, size, sizeWithPadding: offset - end + size });
    end = Math.max(end, offset + size);
  }
  const head = new Uint8Array(dataOffset);
  const view = new DataView(head.buffer);
  head.set(encoder.encode(input.launchScript ?? "").subarray(0, 32), 0);
  head.set(encoder.encode("SIF_MAGIC\0"), 32);
  head.set(encoder.encode("01\0"), 42);
  const primary = input.objects.find((o) => o.partition?.part === SifPartType.primarySystem);
  const arch = input.arch ?? primary?.partition?.arch;
  head.set(encoder.encode(arch ? archCode(arch) : "00"), 45);
  head.set(uuidBytes(input.id), 48);
  view.setBigInt64(64, BigInt(created), true);
  view.setBigInt64(72, BigInt(input.modifiedAt ?? created), true);
  view.setBigInt64(80, BigInt(total - input.objects.length), true);
  view.setBigInt64(88, BigInt(total), true);
  view.setBigInt64(96, BigInt(descOffset), true);
  view.setBigInt64(104, BigInt(descSize), true);
  view.setBigInt64(112, BigInt(dataOffset), true);
  view.setBigInt64(120, BigInt(end - dataOffset), true);
  placed.forEach((p, i) => {
    const o = p.input;
    const at = descOffset + i * SIF_DESCRIPTOR_SIZE;
    const group = o.group ?? 1;
    const t = o.createdAt ?? GO_ZERO_TIME;
    view.setInt32(at, o.type, true);
    head[at + 4] = o.used ?? 1;
    view.setUint32(at + 5, o.id ?? i + 1, true);
    view.setUint32(at + 9, (GROUP_MASK | group) >>> 0, true);
    const link = o.link ?? 0;
    view.setUint32(at + 13, o.linkIsGroup ? (GROUP_MASK | link) >>> 0 : link, true);
    view.setBigInt64(at + 17, BigInt(p.offset), true);
    view.setBigInt64(at + 25, BigInt(p.size), true);
    view.setBigInt64(at + 33, BigInt(p.sizeWithPadding), true);
    view.setBigInt64(at + 41, BigInt(t), true);
    view.setBigInt64(at + 49, BigInt(o.modifiedAt ?? t), true);
    view.setBigInt64(at + 57, BigInt(o.uid ?? 0), true);
    view.setBigInt64(at + 65, BigInt(o.gid ?? 0), true);
    head.set(encoder.encode(o.name ?? "").subarray(0, 128), at + 73);
    head.set(extraOf(o), at + 201);
  });
  return {
    head,
    placed: placed.map((p) => ({ offset: p.offset, bytes: p.bytes, size: p.size })),
    fileSize: end,
  };
}

/** Build a whole SIF image in memory (no sparse objects). */
export function buildSif(input: SifInput): Uint8Array {
  const layout = layoutSif(input);
  const out = new Uint8Array(layout.fileSize);
  out.set(layout.head.subarray(0, Math.min(layout.head.length, out.length)));
  for (const p of layout.placed) if (p.bytes) out.set(p.bytes, p.offset);
  return out;
}

/**
 * Write a SIF image to a file. Sparse objects (given by `size` without `data`) are never
 * written: the file is extended with truncate, so a 4 GiB image uses a few KiB of disk.
 */
export async function writeSif(path: string, input: SifInput): Promise<number> {
  const layout = layoutSif(input);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, layout.head.subarray(0, Math.min(layout.head.length, layout.fileSize)));
    for (const p of layout.placed) {
      if (!p.bytes || p.bytes.length === 0) continue;
      await file.seek(p.offset, Deno.SeekMode.Start);
      await writeAll(file, p.bytes);
    }
    await file.truncate(layout.fileSize);
  } finally {
    file.close();
  }
  return layout.fileSize;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

// ---------------------------------------------------------------------------------------------
// Convenience builders for the objects Singularity writes

/** The JSON Singularity/Apptainer store as `inspect-metadata.json` (`pkg/inspect/metadata.go`). */
export interface InspectAttributes {
  /** Labels. */
  labels?: Record<string, string>;
  /** Environment files: path -> content. */
  environment?: Record<string, string>;
  /** The runscript. */
  runscript?: string;
  /** The test script. */
  test?: string;
  /** The help text. */
  helpfile?: string;
  /** The definition file. */
  deffile?: string;
  /** The startscript. */
  startscript?: string;
  /** Per-app attributes. */
  apps?: Record<string, Record<string, unknown>>;
}

/** A JSON.Generic `inspect-metadata.json` object. */
export function inspectMetadataObject(attributes: InspectAttributes): ObjectInput {
  return {
    type: SifDataType.genericJson,
    name: "inspect-metadata.json",
    data: JSON.stringify({ data: { attributes }, type: "container" }),
  };
}

/** A Def.FILE object. */
export function deffileObject(text: string): ObjectInput {
  return { type: SifDataType.deffile, data: text };
}

/** A squashfs primary system partition (a fake superblock unless `data`/`size` is given). */
export function primaryPartition(
  arch = "amd64",
  options: { data?: Uint8Array; size?: number; encrypted?: boolean } = {},
): ObjectInput {
  const data = options.data ??
    (options.size === undefined ? fakeSquashfs(4096) : undefined);
  return {
    type: SifDataType.partition,
    data,
    size: options.size,
    partition: {
      fs: options.encrypted ? SifFsType.encryptedSquashfs : SifFsType.squashfs,
      part: SifPartType.primarySystem,
      arch,
    },
  };
}

/** A signature object over group 1 (or another link), PGP style with a fingerprint. */
export function signatureObject(
  entity: string | undefined = "12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84",
  options: { link?: number; linkIsGroup?: boolean; data?: string } = {},
): ObjectInput {
  return {
    type: SifDataType.signature,
    group: 0,
    link: options.link ?? 1,
    linkIsGroup: options.linkIsGroup ?? true,
    data: options.data ?? "-----BEGIN PGP SIGNED MESSAGE-----\n(test)\n",
    signature: { hash: SifHashType.sha256, entity },
  };
}

/** Bytes that start like a squashfs superblock (gzip), zero-padded to `size`. */
export function fakeSquashfs(size: number, createdAt = 1_700_000_000): Uint8Array {
  const out = new Uint8Array(Math.max(size, 96));
  out.set(encoder.encode("hsqs"), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, createdAt, true);
  view.setUint32(12, 131072, true);
  view.setUint16(20, 1, true);
  return out;
}

/** A legacy Singularity 2.x `.simg`: optional launch line then a squashfs superblock. */
export function buildLegacySimg(withLaunchLine = true, size = 8192): Uint8Array {
  const line = withLaunchLine
    ? encoder.encode("#!/usr/bin/env run-singularity\n")
    : new Uint8Array();
  const fs = fakeSquashfs(size);
  const out = new Uint8Array(line.length + fs.length);
  out.set(line);
  out.set(fs, line.length);
  return out;
}

/** A legacy ext3 image: optional launch line then an ext superblock magic at 1080. */
export function buildLegacyExt3(withLaunchLine = true, size = 8192): Uint8Array {
  const line = withLaunchLine
    ? encoder.encode("#!/usr/bin/env run-singularity\n")
    : new Uint8Array();
  const out = new Uint8Array(line.length + size);
  out.set(line);
  out[line.length + 1080] = 0x53;
  out[line.length + 1081] = 0xef;
  return out;
}

/** Bytes of an image written with the given objects and a typical Singularity header. */
export function buildSingularityLike(
  attributes: InspectAttributes,
  options: { arch?: string; signed?: boolean; deffile?: string } = {},
): Uint8Array {
  const objects: ObjectInput[] = [
    deffileObject(options.deffile ?? attributes.deffile ?? "Bootstrap: docker\nFrom: alpine\n"),
    inspectMetadataObject(attributes),
    primaryPartition(options.arch ?? "amd64"),
  ];
  if (options.signed) objects.push(signatureObject());
  return buildSif({
    launchScript: "#!/usr/bin/env run-singularity\n",
    id: "6ecc76b7-a497-4f7f-9ebd-8da2a04c6be1",
    createdAt: 1_700_000_000,
    objects,
  });
}
