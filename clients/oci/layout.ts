/**
 * OCI image layouts: a folder (`oci-layout`, `index.json`, `blobs/sha256/...`) that `singularity
 * build x.sif oci:<dir>:<ref>` reads, or the same as a tar archive (`oci-archive:`), which is what
 * sregistry keeps when no Singularity is installed.
 * @module
 */

import { join } from "node:path";
import { startBackgroundSync } from "../../core/background_sync.ts";
import { createHashingWriter } from "../../core/hashing_writer.ts";
import { createHasher } from "../../core/hasher.ts";
import { MediaType, type Platform } from "./manifest.ts";

/** One image to write. */
export interface LayoutImage {
  /** The manifest's exact bytes. */
  manifest: Uint8Array;
  /** Its digest. */
  manifestDigest: string;
  /** Its media type. */
  mediaType: string;
  /** Config and layer blobs (files, usually in the blob cache). */
  blobs: { digest: string; path: string; size: number }[];
  /** `org.opencontainers.image.ref.name` (the tag). */
  refName: string;
  /** Platform recorded in index.json. */
  platform?: Platform;
}

function indexJson(image: LayoutImage): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [{
      mediaType: image.mediaType,
      digest: image.manifestDigest,
      size: image.manifest.length,
      ...(image.platform ? { platform: image.platform } : {}),
      annotations: { "org.opencontainers.image.ref.name": image.refName },
    }],
  });
}

const LAYOUT = JSON.stringify({ imageLayoutVersion: "1.0.0" });
const hex = (digest: string) => digest.replace(/^sha256:/, "");

/** Write an OCI layout folder; blobs are hard-linked from their files (copied across devices). */
export async function writeLayout(dir: string, image: LayoutImage): Promise<void> {
  const blobs = join(dir, "blobs", "sha256");
  await Deno.mkdir(blobs, { recursive: true });
  await Deno.writeTextFile(join(dir, "oci-layout"), LAYOUT);
  await Deno.writeFile(join(blobs, hex(image.manifestDigest)), image.manifest);
  for (const b of image.blobs) {
    const dest = join(blobs, hex(b.digest));
    await Deno.remove(dest).catch(() => {});
    try {
      await Deno.link(b.path, dest);
    } catch {
      await Deno.copyFile(b.path, dest);
    }
  }
  await Deno.writeTextFile(join(dir, "index.json"), indexJson(image));
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

/** A 512-byte ustar header. Sizes over 8 GiB use the GNU base-256 form. */
export function tarHeader(name: string, size: number, type: "0" | "5", mtime = 0): Uint8Array {
  const h = new Uint8Array(512);
  const enc = new TextEncoder();
  const put = (off: number, s: string) => h.set(enc.encode(s), off);
  if (enc.encode(name).length > 100) throw new RangeError(`Tar entry name too long: ${name}`);
  put(0, name);
  put(100, octal(type === "5" ? 0o755 : 0o644, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  if (size < 0o77777777777) put(124, octal(size, 12));
  else {
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  put(136, octal(mtime, 12));
  put(148, "        ");
  put(156, type);
  put(257, "ustar\0");
  put(263, "00");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/**
 * Write the image as an OCI layout tar archive (`oci-archive:` for singularity/apptainer), hashing
 * it as it is written so that the caller need not read it again.
 * @returns the archive's `sha256:<hex>` digest and size.
 */
export async function writeLayoutTar(
  tarPath: string,
  image: LayoutImage,
): Promise<{ digest: string; size: number }> {
  const seen = new Set<string>([image.manifestDigest]);
  const blobs = image.blobs.filter((b) => {
    if (seen.has(b.digest)) return false;
    seen.add(b.digest);
    return true;
  });
  using hasher = await createHasher({ sizeHint: blobs.reduce((a, b) => a + b.size, 0) });
  using out = await Deno.open(tarPath, { write: true, create: true, truncate: true });
  let size = 0;
  await using background = await startBackgroundSync(tarPath);
  const w = await createHashingWriter(out, {
    hasher,
    onWrite: (n) => {
      size += n;
      background.wrote(n);
    },
  });
  const pad = async (n: number) => {
    const rest = n % 512;
    if (rest) await w.write(new Uint8Array(512 - rest));
  };
  const enc = new TextEncoder();
  const addBytes = async (name: string, bytes: Uint8Array) => {
    await w.write(tarHeader(name, bytes.length, "0"));
    await w.write(bytes);
    await pad(bytes.length);
  };
  await addBytes("oci-layout", enc.encode(LAYOUT));
  await addBytes("index.json", enc.encode(indexJson(image)));
  await w.write(tarHeader("blobs/", 0, "5"));
  await w.write(tarHeader("blobs/sha256/", 0, "5"));
  await addBytes(`blobs/sha256/${hex(image.manifestDigest)}`, image.manifest);
  for (const b of blobs) {
    await w.write(tarHeader(`blobs/sha256/${hex(b.digest)}`, b.size, "0"));
    let copied = 0;
    {
      // Straight into the writer's buffer, which the hasher then takes: no copy, no second read.
      using f = await Deno.open(b.path);
      for (let n = f.readSync(w.room()); n !== null; n = f.readSync(w.room())) {
        await w.commit(n);
        copied += n;
      }
    }
    if (copied !== b.size) {
      throw new Error(`Blob ${b.path} is ${copied} bytes, expected ${b.size}`);
    }
    await pad(b.size);
  }
  await w.write(new Uint8Array(1024));
  await w.flush();
  await out.sync();
  return { digest: await hasher.digest(), size };
}
