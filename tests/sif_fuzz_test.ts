/**
 * Fuzzing of the SIF reader: thousands of mutated and truncated images (the reference fixtures
 * and the test writer's output) must each end in a `SifError` or a valid result, quickly. The
 * seed is fixed, so a failure names a case that reproduces.
 */

import assert from "./_assert.ts";
import { type ByteSource, memorySource, prefetchSource } from "../core/byte_source.ts";
import { detectImageFormat } from "../core/image_format.ts";
import { openSif, SIF_DESCRIPTOR_SIZE, SifDataType, SifError } from "../core/sif.ts";
import { formatHeader, formatObjectInfo, formatObjectList, listRows } from "../core/sif_text.ts";
import { flattenForCatalog } from "../core/catalog_metadata.ts";
import { readImageMetadata } from "../core/metadata.ts";
import {
  buildLegacySimg,
  buildSif,
  buildSingularityLike,
  primaryPartition,
  signatureObject,
} from "./_sif_writer.ts";

const CASES = 10_000;
const SEED = 0x5eed_51f;
/** Generous for a 2-core CI machine; a real hang or quadratic blow-up is far above it. */
const PER_CASE_MS = 250;

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function corpus(): { name: string; bytes: Uint8Array }[] {
  const out: { name: string; bytes: Uint8Array }[] = [
    {
      name: "writer-singularity",
      bytes: buildSingularityLike({ labels: { a: "b" }, runscript: "x" }, { signed: true }),
    },
    {
      name: "writer-oci",
      bytes: buildSif({
        objects: [
          {
            type: SifDataType.ociRootIndex,
            data: '{"manifests":[{"digest":"sha256:m"}]}',
            digest: "sha256:i",
          },
          {
            type: SifDataType.ociBlob,
            data: '{"config":{"digest":"sha256:c"}}',
            digest: "sha256:m",
          },
          {
            type: SifDataType.ociBlob,
            data: '{"config":{"Labels":{"a":"b"}}}',
            digest: "sha256:c",
          },
        ],
      }),
    },
    {
      name: "writer-two-groups",
      bytes: buildSif({
        descriptorsTotal: 4,
        objects: [
          primaryPartition("amd64"),
          { ...primaryPartition("arm64"), group: 2 },
          signatureObject(undefined, { link: 2 }),
        ],
      }),
    },
    { name: "writer-simg", bytes: buildLegacySimg(true) },
  ];
  const dir = new URL("../../shared/fixtures/sif/images/", import.meta.url);
  try {
    for (const entry of Deno.readDirSync(dir)) {
      out.push({ name: entry.name, bytes: Deno.readFileSync(new URL(entry.name, dir)) });
    }
  } catch {
    // Fixtures absent: the writer corpus alone still exercises every code path.
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

const EXTREMES64 = [
  0n,
  1n,
  -1n,
  127n,
  128n,
  585n,
  4096n,
  32176n,
  BigInt(Number.MAX_SAFE_INTEGER),
  BigInt(Number.MAX_SAFE_INTEGER) + 1n,
  1n << 62n,
  (1n << 63n) - 1n,
  -(1n << 63n),
];
const EXTREMES32 = [0, 1, -1, 0x7fffffff, -0x80000000, 0x4001, 0x4004, 0x4005, 0x400b, 0x4100];

interface Mutant {
  bytes: Uint8Array;
  what: string;
}

function mutate(base: Uint8Array, rand: () => number): Mutant {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
  const int = (n: number) => Math.floor(rand() * n);
  // The interesting bytes: header and the first few descriptors.
  const hot = Math.min(base.length, 4096 + 4 * SIF_DESCRIPTOR_SIZE);
  const kind = int(6);
  if (kind === 0) {
    // Truncation, biased to the boundaries the reader checks.
    const cuts = [
      int(128),
      128 + int(4096),
      4096 + int(28080),
      base.length - 1 - int(64),
      int(base.length),
    ];
    const at = Math.max(0, Math.min(base.length, pick(cuts)));
    return { bytes: base.subarray(0, at), what: `truncate to ${at}` };
  }
  const bytes = base.slice();
  const view = new DataView(bytes.buffer);
  const notes: string[] = [];
  const steps = 1 + int(3);
  for (let s = 0; s < steps; s++) {
    const op = kind === 5 ? int(4) : kind - 1;
    if (op === 0) {
      // Random byte flips in the hot region.
      for (let i = 0, n = 1 + int(8); i < n && hot > 0; i++) {
        const at = int(hot);
        bytes[at] ^= 1 << int(8);
        notes.push(`flip@${at}`);
      }
    } else if (op === 1 && bytes.length >= 128) {
      // A header int64 field.
      const at = 64 + 8 * int(8);
      const value = pick(EXTREMES64);
      view.setBigInt64(at, value, true);
      notes.push(`hdr@${at}=${value}`);
    } else if (op === 2) {
      // A descriptor int64 field (offset, size, padded size, times).
      const slot = int(4);
      const at = 4096 + slot * SIF_DESCRIPTOR_SIZE + pick([17, 25, 33, 41, 57]);
      if (at + 8 <= bytes.length) {
        const value = rand() < 0.2 ? BigInt(int(bytes.length + 100)) : pick(EXTREMES64);
        view.setBigInt64(at, value, true);
        notes.push(`desc@${at}=${value}`);
      }
    } else {
      // A descriptor int32 field (type, id, group, link) or the used flag / extra.
      const slot = int(4);
      const at = 4096 + slot * SIF_DESCRIPTOR_SIZE + pick([0, 5, 9, 13, 201, 205]);
      if (at + 4 <= bytes.length) {
        const value = pick(EXTREMES32);
        view.setInt32(at, value, true);
        notes.push(`desc32@${at}=${value}`);
      }
      const used = 4096 + slot * SIF_DESCRIPTOR_SIZE + 4;
      if (rand() < 0.3 && used < bytes.length) {
        bytes[used] = pick([0, 1, 2, 255]);
        notes.push(`used@${used}`);
      }
    }
  }
  return { bytes, what: notes.join(" ") };
}

async function exercise(source: ByteSource): Promise<void> {
  await detectImageFormat(source);
  let image;
  try {
    image = await openSif(source, { closeSource: false });
  } catch (error) {
    if (error instanceof SifError) return;
    throw error;
  }
  // A valid result must be internally consistent and usable.
  for (const o of image.objects) {
    assert.ok(o.offset + o.size <= source.size, "object inside the file");
    try {
      const bytes = await image.readObject(o, 1 << 20);
      assert.equal(bytes.length, o.size);
    } catch (error) {
      if (!(error instanceof SifError)) throw error;
    }
    formatObjectInfo(o);
  }
  formatHeader(image.header);
  formatObjectList(image.objects);
  listRows(image.objects);
  JSON.stringify(image.toJSON());
  try {
    const meta = await readImageMetadata(source, { runner: null, maxObjectBytes: 1 << 20 });
    JSON.stringify(flattenForCatalog(meta));
  } catch (error) {
    if (!(error instanceof SifError)) throw error;
  }
}

Deno.test(`sif fuzz: ${CASES} mutated and truncated images end in SifError or a valid result`, async () => {
  const seeds = corpus();
  const rand = prng(SEED);
  let rejected = 0;
  let accepted = 0;
  let slowest = 0;
  const started = performance.now();
  for (let i = 0; i < CASES; i++) {
    const seed = seeds[i % seeds.length];
    const mutant = mutate(seed.bytes, rand);
    // Every other case goes through the prefetching wrapper, with prefixes that end anywhere.
    const plain = memorySource(mutant.bytes, `fuzz-${i}`);
    const source = i % 2 ? prefetchSource(plain, [128, 4096, 32176, 65536][i % 4]) : plain;
    const t0 = performance.now();
    try {
      await exercise(source);
    } catch (error) {
      throw new Error(
        `case ${i} (${seed.name}, ${mutant.what}): unexpected ${
          error instanceof Error ? `${error.name}: ${error.message}` : String(error)
        }`,
        { cause: error },
      );
    }
    const elapsed = performance.now() - t0;
    slowest = Math.max(slowest, elapsed);
    assert.ok(elapsed < PER_CASE_MS, `case ${i} (${seed.name}, ${mutant.what}) took ${elapsed} ms`);
    try {
      await openSif(source);
      accepted++;
    } catch {
      rejected++;
    }
  }
  const total = performance.now() - started;
  console.log(
    `fuzz: ${CASES} cases, ${accepted} valid, ${rejected} rejected, ` +
      `slowest ${slowest.toFixed(1)} ms, total ${(total / 1000).toFixed(1)} s`,
  );
  // Both outcomes must be exercised, or the mutator is not doing its job.
  assert.ok(accepted > CASES / 20, `only ${accepted} mutants parsed`);
  assert.ok(rejected > CASES / 20, `only ${rejected} mutants were rejected`);
});

Deno.test("sif fuzz: random garbage of every small length", async () => {
  const rand = prng(SEED ^ 0xabc);
  for (let length = 0; length < 600; length++) {
    const bytes = new Uint8Array(length).map(() => Math.floor(rand() * 256));
    if (length >= 42 && rand() < 0.5) bytes.set(new TextEncoder().encode("SIF_MAGIC\0"), 32);
    if (length >= 45 && rand() < 0.5) bytes.set(new TextEncoder().encode("01\0"), 42);
    await exercise(memorySource(bytes, `garbage-${length}`));
  }
});
