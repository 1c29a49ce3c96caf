/**
 * Conformance of the native SIF reader against the reference implementation's test images and
 * the exact `siftool` output for them (../../shared/fixtures/sif), plus metadata extraction, the
 * `singularity inspect` fallback, legacy detection and error messages.
 */

import assert from "./_assert.ts";
import { memorySource } from "../core/byte_source.ts";
import { detectImageFormat } from "../core/image_format.ts";
import {
  inspectSif,
  listObjects,
  openSif,
  readSifHeader,
  SifDataType,
  SifError,
  SifFsType,
  SifHashType,
  SifPartType,
} from "../core/sif.ts";
import {
  formatHeader,
  formatObjectInfo,
  formatObjectList,
  listRows,
  readableSize,
} from "../core/sif_text.ts";
import { FormatError, NotFoundError } from "../core/errors.ts";
import { tarHeader } from "../clients/oci/layout.ts";
import { flattenForCatalog } from "../core/catalog_metadata.ts";
import { normalizeInspectJson } from "../core/inspect_json.ts";
import { type CommandRunner, readImageMetadata } from "../core/metadata.ts";
import {
  buildLegacyExt3,
  buildLegacySimg,
  buildSif,
  buildSingularityLike,
  deffileObject,
  inspectMetadataObject,
  type ObjectInput,
  primaryPartition,
  signatureObject,
  writeSif,
} from "./_sif_writer.ts";

// ---------------------------------------------------------------------------------------------
// Fixtures: present here, absent in some checkouts. In CI their absence is a failure.

const FIXTURES = new URL("../../shared/fixtures/sif/", import.meta.url);
const IMAGES = new URL("images/", FIXTURES);
const GOLDEN = new URL("golden/", FIXTURES);

function exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch {
    return false;
  }
}

const fixturesPresent = exists(IMAGES) && exists(GOLDEN);
const inCi = Deno.env.get("CI") === "true";
const skipFixtures = !fixturesPresent && !inCi;
if (skipFixtures) {
  console.warn(
    `SKIP SIF fixture conformance tests: ${FIXTURES.pathname} is missing ` +
      `(set CI=true to make that a failure)`,
  );
}

function requireFixtures(): void {
  if (!fixturesPresent) {
    throw new Error(`SIF fixtures are missing at ${FIXTURES.pathname} (required when CI=true)`);
  }
}

/** `OneGroupSignedPGP` -> `one-group-signed-pgp.sif`, as the fixtures README says. */
function imageFor(goldenName: string): string {
  const words = goldenName.match(/[A-Z]+(?![a-z])|[A-Z][a-z]+|[0-9]+/g) ?? [];
  return `${words.map((w) => w.toLowerCase()).join("-")}.sif`;
}

function goldens(folder: string): { name: string; text: string }[] {
  const dir = new URL(`${folder}/`, GOLDEN);
  return [...Deno.readDirSync(dir)]
    .filter((e) => e.name.endsWith(".golden"))
    .map((e) => ({
      name: e.name.replace(/\.golden$/, ""),
      text: Deno.readTextFileSync(new URL(e.name, dir)),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** `Key:   value` lines into a map (the tabwriter layout siftool uses). */
function parseKeyValues(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = line.match(/^\s*([^:]+?):\s+(.*)$/);
    if (m) map.set(m[1], m[2]);
  }
  return map;
}

const imagePath = (name: string) => new URL(name, IMAGES).pathname;

Deno.test({
  name: "sif fixtures: header matches siftool header golden, field by field",
  ignore: skipFixtures,
  async fn() {
    requireFixtures();
    const all = goldens("TestApp_Header");
    assert.ok(all.length >= 19, `expected the header goldens, found ${all.length}`);
    for (const { name, text } of all) {
      const image = await openSif(imagePath(imageFor(name)));
      try {
        const h = image.header;
        const want = parseKeyValues(text);
        const got = parseKeyValues(formatHeader(h));
        assert.deepEqual(got, want, `${name}: header fields`);
        // Check the decoded numbers themselves, not only their rendering.
        assert.equal(String(h.descriptorsFree), want.get("Descriptors Free"), name);
        assert.equal(String(h.descriptorsTotal), want.get("Descriptors Total"), name);
        assert.equal(String(h.descriptorsOffset), want.get("Descriptors Offset"), name);
        assert.equal(String(h.dataOffset), want.get("Data Offset"), name);
        assert.equal(readableSize(h.dataSize), want.get("Data Size"), name);
        assert.equal(
          h.id === "00000000-0000-0000-0000-000000000000" ? undefined : h.id,
          want.get("ID"),
        );
        assert.equal(h.arch === "unknown" ? undefined : h.arch, want.get("Primary Architecture"));
        assert.equal(formatHeader(h), text, `${name}: exact text`);
      } finally {
        image.close();
      }
    }
  },
});

Deno.test({
  name: "sif fixtures: object listing matches siftool list golden, row by row",
  ignore: skipFixtures,
  async fn() {
    requireFixtures();
    const all = goldens("TestApp_List");
    assert.ok(all.length >= 19);
    for (const { name, text } of all) {
      const objects = await listObjects(imagePath(imageFor(name)));
      const wantRows = text.split("\n").slice(3).filter((l) => l.trim() !== "").map((line) =>
        line.split("|").map((cell) => cell.trim().replace(/\s+/g, " "))
      );
      const gotRows = listRows(objects).map((r) => [r.id, r.group, r.link, r.position, r.type]);
      assert.deepEqual(gotRows, wantRows, `${name}: rows`);
      assert.equal(formatObjectList(objects), text, `${name}: exact text`);
    }
  },
});

// From the fixtures README: golden -> image and object ID.
const INFO_CASES: Record<string, [string, number]> = {
  Time: ["one-object-time.sif", 1],
  GenericJSON: ["one-object-generic-json.sif", 1],
  CryptMessage: ["one-object-crypt-message.sif", 1],
  SBOM: ["one-object-sbom.sif", 1],
  OCIRootIndex: ["one-object-oci-root-index.sif", 1],
  OCIBlob: ["one-object-oci-blob.sif", 1],
  DataPartitionRaw: ["two-groups-signed-pgp.sif", 1],
  DataPartitionSquashFS: ["two-groups-signed-pgp.sif", 2],
  DataPartitionEXT3: ["two-groups-signed-pgp.sif", 3],
  DataSignature: ["two-groups-signed-pgp.sif", 4],
};

Deno.test({
  name: "sif fixtures: object details match siftool info golden",
  ignore: skipFixtures,
  async fn() {
    requireFixtures();
    const all = goldens("TestApp_Info");
    assert.equal(all.length, Object.keys(INFO_CASES).length);
    for (const { name, text } of all) {
      const [file, id] = INFO_CASES[name];
      const image = await openSif(imagePath(file));
      try {
        const object = image.object(id);
        assert.ok(object, `${name}: object ${id}`);
        const want = parseKeyValues(text);
        assert.equal(String(object.id), want.get("ID"));
        assert.equal(String(object.offset), want.get("Offset"));
        assert.equal(String(object.size), want.get("Size"));
        assert.equal(object.typeName, want.get("Data Type"));
        if (want.has("Name")) assert.equal(object.name, want.get("Name"));
        if (want.has("Digest")) assert.equal(object.digest, want.get("Digest"));
        if (want.has("Entity")) assert.equal(object.signature?.entity, want.get("Entity"));
        if (want.has("Architecture")) {
          assert.equal(object.partition?.arch, want.get("Architecture"));
        }
        assert.deepEqual(parseKeyValues(formatObjectInfo(object)), want, `${name}: fields`);
        assert.equal(formatObjectInfo(object), text, `${name}: exact text`);
      } finally {
        image.close();
      }
    }
  },
});

Deno.test({
  name: "sif fixtures: object bytes match siftool dump golden",
  ignore: skipFixtures,
  async fn() {
    requireFixtures();
    const image = await openSif(imagePath("one-group.sif"));
    try {
      for (const [golden, id] of [["One", 1], ["Two", 2]] as const) {
        const want = Deno.readFileSync(new URL(`TestApp_Dump/${golden}.golden`, GOLDEN));
        const got = await image.readObject(id);
        assert.equal(got.length, want.length, `${golden}: size`);
        assert.deepEqual(got, want, `${golden}: bytes`);
      }
    } finally {
      image.close();
    }
  },
});

Deno.test({
  name: "sif fixtures: every image opens; objects agree with the free count; JSON round-trips",
  ignore: skipFixtures,
  async fn() {
    requireFixtures();
    const names = [...Deno.readDirSync(IMAGES)].map((e) => e.name).filter((n) =>
      n.endsWith(".sif")
    );
    assert.ok(names.length >= 21);
    for (const name of names) {
      const info = await inspectSif(imagePath(name));
      const { header } = info;
      assert.equal(info.objects.length, header.descriptorsTotal - header.descriptorsFree, name);
      assert.deepEqual(JSON.parse(JSON.stringify(info)), info, name);
      const format = await detectImageFormat(imagePath(name));
      assert.equal(format.format, "sif");
      // Every image's objects can be read in full.
      const image = await openSif(imagePath(name));
      try {
        for (const o of image.objects) assert.equal((await image.readObject(o)).length, o.size);
      } finally {
        image.close();
      }
    }
    // DSSE-signed images have no golden; check what the reference says about them directly.
    const dsse = await inspectSif(imagePath("two-groups-signed-dsse.sif"));
    const signatures = dsse.objects.filter((o) => o.dataType === SifDataType.signature);
    assert.equal(signatures.length, 2);
    assert.deepEqual(signatures.map((s) => [s.linkedId, s.linkIsGroup, s.signature?.entity]), [
      [1, true, null],
      [2, true, null],
    ]);
  },
});

// ---------------------------------------------------------------------------------------------
// The writer reproduces the reference layout

Deno.test({
  name: "writer: rebuilds one-group.sif and two-groups-signed-pgp.sif byte for byte",
  ignore: skipFixtures,
  async fn() {
    requireFixtures();
    for (const name of ["one-group.sif", "two-groups.sif", "two-groups-signed-pgp.sif"]) {
      const original = Deno.readFileSync(imagePath(name));
      const image = await openSif(memorySource(original, name));
      const objects: ObjectInput[] = [];
      for (const o of image.objects) {
        objects.push({
          type: o.dataType,
          data: await image.readObject(o),
          group: o.groupId,
          link: o.linkedId,
          linkIsGroup: o.linkIsGroup,
          partition: o.partition &&
            { fs: o.partition.fsType, part: o.partition.partType, arch: o.partition.arch },
          signature: o.signature &&
            { hash: o.signature.hashType, entity: o.signature.entity ?? undefined },
        });
      }
      const rebuilt = buildSif({ objects });
      assert.equal(rebuilt.length, original.length, `${name}: size`);
      assert.deepEqual(rebuilt, original, `${name}: bytes`);
    }
  },
});

Deno.test("writer: output round-trips through the reader", async () => {
  const bytes = buildSif({
    launchScript: "#!/usr/bin/env run-singularity\n",
    id: "0b19ec2c-0b08-46c9-95ae-fa88cd9e48a1",
    createdAt: 1_590_175_859,
    modifiedAt: 1_592_684_204,
    objects: [
      deffileObject("Bootstrap: docker\nFrom: alpine\n"),
      inspectMetadataObject({ labels: { a: "b" } }),
      primaryPartition("arm64"),
      signatureObject("00112233445566778899AABBCCDDEEFF00112233", { link: 3, linkIsGroup: false }),
      { type: SifDataType.sbom, data: "{}", sbomFormat: 4 },
      { type: SifDataType.cryptoMessage, data: "x", crypto: { format: 2, message: 0x200 } },
      { type: SifDataType.ociBlob, data: "{}", digest: "sha256:abc" },
    ],
  });
  const image = await openSif(memorySource(bytes, "rt.sif"));
  const h = image.header;
  assert.equal(h.launchScript, "#!/usr/bin/env run-singularity\n");
  assert.equal(h.id, "0b19ec2c-0b08-46c9-95ae-fa88cd9e48a1");
  assert.equal(h.arch, "arm64");
  assert.equal(h.createdAt, 1_590_175_859);
  assert.equal(h.descriptorsFree, 48 - 7);
  assert.equal(image.objects.length, 7);
  const [def, json, part, sig, sbom, crypt, blob] = image.objects;
  assert.equal(await image.readText(def), "Bootstrap: docker\nFrom: alpine\n");
  assert.equal(json.name, "inspect-metadata.json");
  assert.equal(part.offset % 4096, 0);
  assert.deepEqual(part.partition, {
    fsType: SifFsType.squashfs,
    fsTypeName: "Squashfs",
    partType: SifPartType.primarySystem,
    partTypeName: "*System",
    archCode: "04",
    arch: "arm64",
  });
  assert.deepEqual(sig.signature, {
    hashType: SifHashType.sha256,
    hashTypeName: "SHA-256",
    entity: "00112233445566778899AABBCCDDEEFF00112233",
  });
  assert.equal(sig.groupId, 0);
  assert.equal(sig.linkedId, 3);
  assert.equal(sig.linkIsGroup, false);
  assert.equal(sbom.sbom?.formatName, "spdx-json");
  assert.equal(crypt.cryptoMessage?.messageTypeName, "RSA-OAEP");
  assert.equal(blob.digest, "sha256:abc");
  assert.match(formatObjectList(image.objects), /4 {4}\|NONE {4}\|3 {7}\|/);
});

// ---------------------------------------------------------------------------------------------
// Metadata

const ATTRIBUTES = {
  labels: {
    "org.label-schema.build-date": "Thursday_23_November_2023_10:0:0_UTC",
    MAINTAINER: "vsoch",
  },
  environment: { "/.singularity.d/env/90-environment.sh": "export FOO=bar\n" },
  runscript: "#!/bin/sh\necho hello\n",
  test: "#!/bin/sh\ntrue\n",
  helpfile: "This is help.\n",
  deffile: "Bootstrap: docker\nFrom: alpine:3.20\n",
  startscript: "#!/bin/sh\n",
  apps: { foo: { labels: { x: "y" }, runscript: "echo foo" } },
};

const noRunner: CommandRunner = () => Promise.reject(new Deno.errors.NotFound("no tool"));

Deno.test("metadata: read natively from inspect-metadata.json, no tool needed", async () => {
  const bytes = buildSingularityLike(ATTRIBUTES, { arch: "arm64", signed: true });
  let called = false;
  const meta = await readImageMetadata(memorySource(bytes, "native.sif"), {
    runner: () => {
      called = true;
      return Promise.reject(new Error("must not run"));
    },
  });
  assert.equal(called, false);
  assert.equal(meta.format, "sif");
  assert.equal(meta.attributesFrom, "inspect-metadata.json");
  assert.deepEqual(meta.labels, ATTRIBUTES.labels);
  assert.deepEqual(meta.environment, ATTRIBUTES.environment);
  assert.equal(meta.runscript, ATTRIBUTES.runscript);
  assert.equal(meta.test, ATTRIBUTES.test);
  assert.equal(meta.help, ATTRIBUTES.helpfile);
  assert.equal(meta.deffile, ATTRIBUTES.deffile);
  assert.equal(meta.startscript, "#!/bin/sh\n");
  assert.deepEqual(meta.apps.foo, { labels: { x: "y" }, environment: {}, runscript: "echo foo" });
  assert.equal(meta.architecture, "arm64");
  assert.equal(meta.id, "6ecc76b7-a497-4f7f-9ebd-8da2a04c6be1");
  assert.equal(meta.created, "2023-11-14T22:13:20.000Z");
  assert.equal(meta.signed, true);
  assert.deepEqual(meta.signatureEntities, ["12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84"]);
  assert.equal(meta.encrypted, false);
  assert.deepEqual(meta.missing, []);

  const flat = flattenForCatalog(meta);
  assert.equal(flat.MAINTAINER, "vsoch");
  assert.equal(
    flat["org.label-schema.build-date"],
    ATTRIBUTES.labels["org.label-schema.build-date"],
  );
  assert.equal(flat.type, "container");
  assert.equal(flat.deffile, ATTRIBUTES.deffile);
  assert.equal(flat.runscript, ATTRIBUTES.runscript);
  assert.equal(flat.help, ATTRIBUTES.helpfile);
  assert.equal(flat.test, ATTRIBUTES.test);
  assert.deepEqual(flat.environment, ATTRIBUTES.environment);
  assert.deepEqual(flat.sif, {
    format: "sif",
    architecture: "arm64",
    id: "6ecc76b7-a497-4f7f-9ebd-8da2a04c6be1",
    created: "2023-11-14T22:13:20.000Z",
    signed: true,
    signatureEntities: ["12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84"],
  });
  assert.deepEqual(JSON.parse(JSON.stringify(flat)), flat);
});

Deno.test("metadata: a label cannot override type or the fixed keys", () => {
  const flat = flattenForCatalog({
    path: "x",
    format: "sif",
    legacy: false,
    attributesFrom: "inspect-metadata.json",
    labels: { type: "evil", deffile: "label", sif: "label", keep: "1" },
    environment: {},
    apps: {},
    deffile: "real",
    signed: false,
    signatures: [],
    signatureEntities: [],
    encrypted: false,
    missing: [],
    notes: [],
  });
  assert.equal(flat.type, "container");
  assert.equal(flat.deffile, "real");
  assert.deepEqual(flat.sif, { format: "sif", signed: false });
  assert.equal(flat.keep, "1");
});

Deno.test("metadata: deterministic image without inspect object reports what is missing", async () => {
  const bytes = buildSif({ objects: [primaryPartition("amd64")] });
  const meta = await readImageMetadata(memorySource(bytes, "old.sif"), { runner: noRunner });
  assert.equal(meta.attributesFrom, "none");
  assert.equal(meta.architecture, "amd64");
  assert.deepEqual(meta.missing.sort(), [
    "created",
    "deffile",
    "environment",
    "help",
    "id",
    "labels",
    "runscript",
    "test",
  ]);
  assert.match(meta.notes.join("\n"), /no inspect-metadata\.json/);
  assert.match(meta.notes.join("\n"), /neither singularity nor apptainer/);
  const flat = flattenForCatalog(meta);
  assert.deepEqual(flat, {
    sif: { format: "sif", architecture: "amd64", signed: false },
    type: "container",
  });
});

Deno.test("metadata: falls back to `<tool> inspect --json --all`, unwrapping data/attributes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/old.sif`;
    await writeSif(path, {
      objects: [deffileObject("Bootstrap: library\n"), primaryPartition("amd64")],
    });
    const calls: string[][] = [];
    const runner: CommandRunner = (command, args) => {
      calls.push([command, ...args]);
      if (command === "singularity") return Promise.reject(new Deno.errors.NotFound("nope"));
      return Promise.resolve({
        code: 0,
        stderr: "",
        stdout: JSON.stringify({
          data: {
            attributes: {
              labels: { VERSION: "1.0", n: 3 },
              environment: { "/.singularity.d/env/90-environment.sh": "export A=1\n" },
              runscript: "#!/bin/sh\n",
              helpfile: "help!",
              deffile: "from tool",
            },
          },
          type: "container",
        }),
      });
    };
    const meta = await readImageMetadata(path, { runner });
    assert.deepEqual(calls, [
      ["singularity", "inspect", "--json", "--all", path],
      ["apptainer", "inspect", "--json", "--all", path],
    ]);
    assert.equal(meta.attributesFrom, "apptainer");
    assert.deepEqual(meta.labels, { VERSION: "1.0", n: "3" });
    assert.equal(meta.help, "help!");
    assert.equal(meta.deffile, "Bootstrap: library\n", "the Def.FILE object wins over the tool");
    assert.deepEqual(meta.missing.sort(), ["created", "id"]);
    assert.equal(flattenForCatalog(meta).VERSION, "1.0");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("metadata: a failing tool is a note, not an error", async () => {
  const bytes = buildSif({ objects: [primaryPartition("amd64")] });
  const runner: CommandRunner = (command) =>
    Promise.resolve(
      command === "singularity"
        ? { code: 255, stdout: "", stderr: "FATAL: permission denied\nmore" }
        : { code: 0, stdout: "not json", stderr: "" },
    );
  const meta = await readImageMetadata(memorySource(bytes, "x.sif"), { runner });
  assert.equal(meta.attributesFrom, "none");
  assert.ok(meta.missing.includes("labels"));
  assert.ok(
    meta.notes.some((n) =>
      n === "singularity inspect exited with code 255: FATAL: permission denied"
    ),
  );
  assert.ok(meta.notes.some((n) => /apptainer inspect printed something that is not JSON/.test(n)));
});

Deno.test("metadata: normalizeInspectJson accepts Singularity 2.x and 3.x shapes", () => {
  assert.deepEqual(
    normalizeInspectJson({
      attributes: { labels: { a: "b" }, environment: "export X=1", help: "h" },
    }),
    {
      labels: { a: "b" },
      environment: { environment: "export X=1" },
      help: "h",
      apps: {},
    },
  );
  assert.deepEqual(normalizeInspectJson({ labels: null }), {
    labels: {},
    environment: {},
    apps: {},
  });
  assert.equal(normalizeInspectJson([1, 2]), undefined);
  assert.equal(normalizeInspectJson("x"), undefined);
});

Deno.test("metadata: oci-config.json supplies labels and environment of OCI builds", async () => {
  const bytes = buildSif({
    objects: [
      {
        type: SifDataType.genericJson,
        name: "oci-config.json",
        data: JSON.stringify({
          Env: ["PATH=/usr/bin", "A=b c"],
          Labels: { "org.opencontainers.image.title": "t" },
        }),
      },
      primaryPartition("amd64"),
    ],
  });
  const meta = await readImageMetadata(memorySource(bytes, "oci.sif"), { runner: noRunner });
  assert.equal(meta.attributesFrom, "oci-config");
  assert.deepEqual(meta.labels, { "org.opencontainers.image.title": "t" });
  assert.match(meta.environment["/.singularity.d/env/10-docker2singularity.sh"], /export A="b c"/);
  assert.ok(!meta.missing.includes("labels"));
});

Deno.test("metadata: OCI-SIF images are read through root index -> manifest -> config", async () => {
  const config = JSON.stringify({
    architecture: "arm64",
    created: "2024-01-02T03:04:05Z",
    config: { Labels: { k: "v" }, Env: ["X=1"] },
  });
  const manifest = JSON.stringify({ config: { digest: "sha256:cfg" }, layers: [] });
  const index = JSON.stringify({ manifests: [{ digest: "sha256:man" }] });
  const bytes = buildSif({
    objects: [
      { type: SifDataType.ociRootIndex, data: index, digest: "sha256:idx" },
      { type: SifDataType.ociBlob, data: manifest, digest: "sha256:man" },
      { type: SifDataType.ociBlob, data: config, digest: "sha256:cfg" },
    ],
  });
  const meta = await readImageMetadata(memorySource(bytes, "ocisif.sif"), { runner: noRunner });
  assert.equal(meta.architecture, "arm64");
  assert.equal(meta.created, "2024-01-02T03:04:05.000Z");
  assert.deepEqual(meta.labels, { k: "v" });
  assert.equal(meta.attributesFrom, "oci-config");
});

Deno.test("metadata: encrypted root filesystem and oversized objects", async () => {
  const bytes = buildSif({
    objects: [
      inspectMetadataObject({ labels: { a: "b" } }),
      primaryPartition("amd64", { encrypted: true }),
    ],
  });
  const meta = await readImageMetadata(memorySource(bytes, "enc.sif"), { runner: null });
  assert.equal(meta.encrypted, true);
  assert.equal(
    flattenForCatalog(meta).sif &&
      (flattenForCatalog(meta).sif as { encrypted: boolean }).encrypted,
    true,
  );
  const small = await readImageMetadata(memorySource(bytes, "enc.sif"), {
    runner: null,
    maxObjectBytes: 4,
  });
  assert.ok(small.missing.includes("labels"));
  assert.match(small.notes.join("\n"), /over the 4-byte limit/);
  assert.match(small.notes.join("\n"), /the fallback is disabled/);
});

// ---------------------------------------------------------------------------------------------
// Legacy images and detection

Deno.test("detect: SIF, squashfs with and without launch line, ext3, unknown", async () => {
  const simg = await detectImageFormat(memorySource(buildLegacySimg(true), "a.simg"));
  assert.equal(simg.format, "squashfs");
  assert.equal(simg.legacy, true);
  assert.equal(simg.payloadOffset, 31);
  assert.equal(simg.launchScript, "#!/usr/bin/env run-singularity\n");
  assert.equal(simg.compression, "gzip");
  const bare = await detectImageFormat(memorySource(buildLegacySimg(false), "b.simg"));
  assert.equal(bare.format, "squashfs");
  assert.equal(bare.payloadOffset, 0);
  assert.equal(
    (await detectImageFormat(memorySource(buildLegacyExt3(true), "c.img"))).format,
    "ext3",
  );
  assert.equal(
    (await detectImageFormat(memorySource(buildLegacyExt3(false), "d.img"))).format,
    "ext3",
  );
  assert.equal((await detectImageFormat(memorySource(new Uint8Array(10), "e"))).format, "unknown");
  assert.equal((await detectImageFormat(memorySource(new Uint8Array(0), "f"))).format, "unknown");
  assert.equal(
    (await detectImageFormat(memorySource(buildSingularityLike({}), "g.sif"))).format,
    "sif",
  );
});

/** A tar of `entries` (name, contents; a name ending in "/" is a folder), with the end blocks. */
function tarOf(entries: [string, string][]): Uint8Array {
  const enc = new TextEncoder();
  const blocks: Uint8Array[] = [];
  for (const [name, text] of entries) {
    const data = enc.encode(text);
    blocks.push(tarHeader(name, data.length, name.endsWith("/") ? "5" : "0"));
    const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
    padded.set(data);
    blocks.push(padded);
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

Deno.test("detect: an OCI layout tar is an oci-archive, wherever its index sits", async () => {
  const layout = '{"imageLayoutVersion":"1.0.0"}';
  // sregistry's own order: the layout files first.
  const ours = tarOf([["oci-layout", layout], ["index.json", "{}"], ["blobs/", ""]]);
  assert.deepEqual(await detectImageFormat(memorySource(ours, "a.tar")), {
    format: "oci-archive",
    legacy: false,
  });
  // skopeo's: the blobs first (past the first 4 KiB), the layout files last, "./" prefixes.
  const big = "x".repeat(10_000);
  const skopeo = tarOf([
    ["./blobs/", ""],
    ["./blobs/sha256/", ""],
    ["./blobs/sha256/aa", big],
    ["./index.json", "{}"],
    ["./oci-layout", layout],
  ]);
  assert.equal((await detectImageFormat(memorySource(skopeo, "b.tar"))).format, "oci-archive");
  // A tar without the layout marker, or a corrupt header, is not one.
  const plain = tarOf([["index.json", "{}"], ["readme", "hi"]]);
  assert.equal((await detectImageFormat(memorySource(plain, "c.tar"))).format, "unknown");
  const corrupt = ours.slice();
  corrupt[0] ^= 1; // the checksum no longer matches
  assert.equal((await detectImageFormat(memorySource(corrupt, "d.tar"))).format, "unknown");
  // Cut short inside a blob: the walk stops at the end of the file instead of reading past it.
  const cut = skopeo.subarray(0, 3000);
  assert.equal((await detectImageFormat(memorySource(cut, "e.tar"))).format, "unknown");
});

Deno.test("metadata: legacy .simg reports squashfs facts, falls back to the tool", async () => {
  const source = memorySource(buildLegacySimg(true), "old.simg");
  const bare = await readImageMetadata(source, { runner: noRunner });
  assert.equal(bare.format, "squashfs");
  assert.equal(bare.legacy, true);
  assert.equal(bare.compression, "gzip");
  assert.equal(bare.created, "2023-11-14T22:13:20.000Z");
  assert.ok(bare.missing.includes("labels") && bare.missing.includes("architecture"));
  assert.ok(!bare.missing.includes("id"));
  const runner: CommandRunner = () =>
    Promise.resolve({
      code: 0,
      stderr: "",
      stdout: JSON.stringify({ data: { attributes: { labels: { L: "1" }, deffile: "d" } } }),
    });
  const meta = await readImageMetadata(source, { runner });
  assert.equal(meta.attributesFrom, "singularity");
  assert.deepEqual(meta.labels, { L: "1" });
  assert.equal(meta.deffile, "d");
  assert.deepEqual(flattenForCatalog(meta).sif, {
    format: "squashfs",
    created: "2023-11-14T22:13:20.000Z",
    signed: false,
  });
});

// ---------------------------------------------------------------------------------------------
// Errors

async function sifErrorOf(bytes: Uint8Array, name = "bad.sif"): Promise<SifError> {
  try {
    await openSif(memorySource(bytes, name));
  } catch (error) {
    assert.ok(error instanceof SifError, `expected SifError, got ${error}`);
    assert.ok(!error.message.includes("\n"), "one line");
    assert.ok(error.message.includes(`"${name}"`), `names the file: ${error.message}`);
    assert.equal(error.exitCode, 1);
    assert.equal(error.kind, "format");
    return error;
  }
  assert.fail("expected a SifError");
}

function withInt64(bytes: Uint8Array, at: number, value: bigint): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setBigInt64(at, value, true);
  return copy;
}

Deno.test("errors: one-line SifError naming the file and the problem", async () => {
  const good = buildSingularityLike({ labels: { a: "b" } });
  assert.match(
    (await sifErrorOf(good.subarray(0, 100))).message,
    /100 bytes, fewer than the 128-byte SIF header/,
  );
  assert.match((await sifErrorOf(new Uint8Array(4096))).message, /no SIF_MAGIC at offset 32/);
  assert.match(
    (await sifErrorOf(buildLegacySimg(true), "old.simg")).message,
    /it looks like a legacy squashfs \(\.simg\) image/,
  );
  const v2 = good.slice();
  v2.set(new TextEncoder().encode("02"), 42);
  assert.match((await sifErrorOf(v2)).message, /version "02", this reader knows version 01/);
  assert.match(
    (await sifErrorOf(good.subarray(0, 20000))).message,
    /truncated: the descriptor table ends at byte 32176/,
  );
  assert.match((await sifErrorOf(good.subarray(0, good.length - 1))).message, /truncated/);
  assert.match(
    (await sifErrorOf(withInt64(good, 88, 1n << 40n))).message,
    /descriptor count 1099511627776 is over the limit/,
  );
  assert.match((await sifErrorOf(withInt64(good, 88, -1n))).message, /descriptor count is -1/);
  assert.match((await sifErrorOf(withInt64(good, 96, 0n))).message, /overlaps the header/);
  assert.match(
    (await sifErrorOf(withInt64(good, 104, 585n))).message,
    /too small for 48 descriptors/,
  );
  assert.match(
    (await sifErrorOf(withInt64(good, 80, 49n))).message,
    /49 free descriptors out of 48/,
  );
  // Descriptor 1's offset field is at 4096 + 17.
  assert.match(
    (await sifErrorOf(withInt64(good, 4096 + 17, 1n << 40n))).message,
    /truncated: object 1 \(descriptor 1\) ends at byte/,
  );
  assert.match(
    (await sifErrorOf(withInt64(good, 4096 + 25, -5n))).message,
    /the size of object 1 \(descriptor 1\) is -5/,
  );
  assert.match(
    (await sifErrorOf(withInt64(good, 4096 + 17, 5000n))).message,
    /overlaps the descriptor table/,
  );
  const overlap = buildSif({
    objects: [
      { type: SifDataType.generic, data: "aaaa" },
      { type: SifDataType.generic, data: "bbbb", offset: 32178 },
    ],
  });
  assert.match(
    (await sifErrorOf(overlap)).message,
    /object 2 \(bytes 32178-32182\) overlaps object 1 \(bytes 32176-32180\)/,
  );
  const duplicate = buildSif({
    objects: [{ type: SifDataType.generic, data: "a" }, {
      type: SifDataType.generic,
      data: "b",
      id: 1,
    }],
  });
  assert.match((await sifErrorOf(duplicate)).message, /two descriptors use object ID 1/);
  const zero = buildSif({ objects: [{ type: SifDataType.generic, data: "a", id: 0 }] });
  assert.match((await sifErrorOf(zero)).message, /has object ID 0/);
});

Deno.test("errors: missing file, directory, unknown object, size limit", async () => {
  await assert.rejects(openSif("/nonexistent/x.sif"), NotFoundError);
  await assert.rejects(readImageMetadata("/nonexistent/x.sif", { runner: null }), NotFoundError);
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      openSif(dir),
      (e: unknown) => e instanceof FormatError && /is not a regular file/.test(e.message),
    );
  } finally {
    await Deno.remove(dir);
  }
  const image = await openSif(memorySource(buildSingularityLike({}), "x.sif"));
  await assert.rejects(image.readObject(99), /has no object with ID 99/);
  await assert.rejects(image.readObject(1, 3), /over the 3-byte limit/);
  const unknown = await readImageMetadata(memorySource(new Uint8Array(200).fill(1), "r"), {
    runner: noRunner,
  });
  assert.equal(unknown.format, "unknown");
  assert.match(unknown.notes.join("\n"), /Not a SIF, squashfs or ext3 image/);
});

Deno.test("file source reads only what it needs and survives concurrent reads", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/big.sif`;
    // 1 GiB sparse partition: opening and reading metadata must not touch it.
    await writeSif(path, {
      objects: [
        inspectMetadataObject({ labels: { big: "yes" } }),
        primaryPartition("amd64", { size: 1024 ** 3 }),
      ],
    });
    const image = await openSif(path);
    try {
      assert.equal(image.objects[1].size, 1024 ** 3);
      const header = await readSifHeader(image.source);
      assert.deepEqual(header, image.header);
      const reads = await Promise.all([image.readText(1), image.readText(1), image.readText(1)]);
      assert.ok(reads.every((r) => r === reads[0]));
      await assert.rejects(image.readObject(2), /over the 67108864-byte limit/);
    } finally {
      image.close();
    }
    const meta = await readImageMetadata(path, { runner: null });
    assert.deepEqual(meta.labels, { big: "yes" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
