/**
 * The metadata of a container image: definition file, labels, environment, runscript, test,
 * help, architecture, creation time, image ID and signatures.
 *
 * SIF images built by Singularity >= 3.7 or Apptainer carry everything `singularity inspect`
 * shows in a JSON.Generic object named `inspect-metadata.json`, so it is read natively, without
 * Singularity and without touching the (possibly huge) filesystem partition. For older SIFs and
 * Singularity 2.x images (`.simg` squashfs, ext3) the metadata lives inside the filesystem; then
 * `singularity`/`apptainer inspect --json --all` is used when one of them is installed, and
 * otherwise the result says what is `missing`.
 *
 * @example Read and flatten for the catalog
 * ```ts ignore
 * import { readImageMetadata } from "./metadata.ts";
 * import { flattenForCatalog } from "./catalog_metadata.ts";
 *
 * const meta = await readImageMetadata("alpine.sif");
 * console.log(meta.labels, meta.architecture, meta.missing);
 * const row = flattenForCatalog(meta); // { ...labels, sif: {...}, deffile, type: "container" }
 * ```
 * @module
 */

import { run } from "./exec.ts";
import { type ByteSource, fileSource, prefetchSource } from "./byte_source.ts";
import { detectImageFormat, type ImageFormat } from "./image_format.ts";
import {
  asStringMap,
  fromOciConfig,
  type InspectAttributes,
  isRecord,
  normalizeInspectJson,
  parseJson,
} from "./inspect_json.ts";
import {
  GO_ZERO_TIME,
  NIL_UUID,
  openSif,
  SifDataType,
  SifFsType,
  type SifImage,
  type SifObject,
} from "./sif.ts";

/** Name of the JSON.Generic object Singularity >= 3.7 and Apptainer write with inspect data. */
export const INSPECT_METADATA_NAME = "inspect-metadata.json";
/** Name of the JSON.Generic object holding the OCI image config of images built from OCI. */
export const OCI_CONFIG_NAME = "oci-config.json";

/** Result of running an external command. */
export interface CommandResult {
  /** Exit code. */
  code: number;
  /** Standard output, decoded. */
  stdout: string;
  /** Standard error, decoded. */
  stderr: string;
}

/**
 * Runs an external command. Throws `Deno.errors.NotFound` when the program is not on PATH
 * (as `Deno.Command` does), which makes the fallback try the next tool.
 */
export type CommandRunner = (command: string, args: string[]) => Promise<CommandResult>;

/** The default runner: core/exec.ts with a time limit. */
export const defaultRunner: CommandRunner = (command, args) =>
  // `inspect` reads a few files from the image; a minute means something is stuck.
  run(command, args, { timeout: 60_000 });

/** Options of {@linkcode readImageMetadata}. */
export interface ReadMetadataOptions {
  /**
   * How to run `singularity`/`apptainer` for the fallback; `null` disables the fallback.
   * Default {@linkcode defaultRunner}.
   */
  runner?: CommandRunner | null;
  /** Tools to try, in order (default `["singularity", "apptainer"]`). */
  tools?: string[];
  /** The largest metadata object read from a SIF (default 16 MiB). */
  maxObjectBytes?: number;
}

/** Metadata of one SCI-F app inside the image. */
export interface AppMetadata {
  /** The app's labels. */
  labels: Record<string, string>;
  /** The app's environment files: path -> content. */
  environment: Record<string, string>;
  /** The app's runscript. */
  runscript?: string;
  /** The app's test script. */
  test?: string;
  /** The app's help text. */
  help?: string;
  /** The app's startscript. */
  startscript?: string;
}

/** One signature object of a SIF image. */
export interface SignatureSummary {
  /** Object ID of the signature. */
  objectId: number;
  /** What it signs: an object ID, or a group ID when `linkIsGroup`. */
  linkedId: number;
  /** Whether `linkedId` is a group. */
  linkIsGroup: boolean;
  /** Hash name (`SHA-256`). */
  hashType: string;
  /** Signing key fingerprint (upper-case hex), null when the object does not record one. */
  entity: string | null;
}

/** Where the inspect attributes (labels, runscript, ...) came from. */
export type AttributesSource =
  | "inspect-metadata.json"
  | "oci-config"
  | "sif-objects"
  | "singularity"
  | "apptainer"
  | "none";

/** Everything known about an image, typed. Absent fields could not be read or do not exist. */
export interface ImageMetadata {
  /** The file read. */
  path: string;
  /** The image format. */
  format: ImageFormat;
  /** True for Singularity 2.x images (squashfs `.simg`, ext3). */
  legacy: boolean;
  /** Where labels/runscript/... came from. */
  attributesFrom: AttributesSource;
  /** The definition file (recipe). */
  deffile?: string;
  /** Labels. */
  labels: Record<string, string>;
  /** Environment files: path -> content. */
  environment: Record<string, string>;
  /** The runscript. */
  runscript?: string;
  /** The test script. */
  test?: string;
  /** The help text. */
  help?: string;
  /** The startscript (instances). */
  startscript?: string;
  /** SCI-F apps. */
  apps: Record<string, AppMetadata>;
  /** CPU architecture (Go name: `amd64`, `arm64`, ...). */
  architecture?: string;
  /** Creation time, Unix seconds. */
  createdAt?: number;
  /** Creation time, ISO 8601. */
  created?: string;
  /** The SIF image UUID. */
  id?: string;
  /** Whether the image has signature objects (not whether they verify). */
  signed: boolean;
  /** The signature objects. */
  signatures: SignatureSummary[];
  /** Distinct signing key fingerprints. */
  signatureEntities: string[];
  /** Whether the root filesystem is an encrypted squashfs. */
  encrypted: boolean;
  /** The launch script line, if any. */
  launchScript?: string;
  /** Squashfs compression of legacy images. */
  compression?: string;
  /** Names of the fields that could not be read (`labels`, `deffile`, `architecture`, ...). */
  missing: string[];
  /** Why things are missing or were skipped, one sentence each. */
  notes: string[];
}

const DEFAULT_MAX_OBJECT_BYTES = 16 * 1024 * 1024;
const ATTRIBUTE_FIELDS = ["labels", "environment", "runscript", "test", "help"] as const;

// ---------------------------------------------------------------------------------------------
// Reading

function emptyMetadata(path: string, format: ImageFormat, legacy: boolean): ImageMetadata {
  return {
    path,
    format,
    legacy,
    attributesFrom: "none",
    labels: {},
    environment: {},
    apps: {},
    signed: false,
    signatures: [],
    signatureEntities: [],
    encrypted: false,
    missing: [],
    notes: [],
  };
}

function applyAttributes(
  meta: ImageMetadata,
  attributes: InspectAttributes,
  from: AttributesSource,
): void {
  meta.attributesFrom = from;
  meta.labels = attributes.labels;
  meta.environment = attributes.environment;
  meta.apps = attributes.apps;
  for (const key of ["runscript", "test", "help", "startscript"] as const) {
    if (attributes[key] !== undefined) meta[key] = attributes[key];
  }
  // The Def.FILE object is the authority for the recipe; inspect JSON only fills in for it.
  if (meta.deffile === undefined && attributes.deffile !== undefined) {
    meta.deffile = attributes.deffile;
  }
}

function setCreated(meta: ImageMetadata, seconds: number): void {
  if (seconds === GO_ZERO_TIME || seconds <= 0) return;
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) return;
  meta.createdAt = seconds;
  meta.created = date.toISOString();
}

/** Read a small object, recording why it could not be read. */
async function readSmall(
  image: SifImage,
  object: SifObject,
  maxBytes: number,
  meta: ImageMetadata,
): Promise<Uint8Array | undefined> {
  if (object.size > maxBytes) {
    meta.notes.push(
      `Object ${object.id} (${object.name || object.typeName}) is ${object.size} bytes, ` +
        `over the ${maxBytes}-byte limit; skipped`,
    );
    return undefined;
  }
  return await image.readObject(object, maxBytes);
}

/** For OCI-SIF images: root index -> manifest -> config, each an OCI.Blob found by digest. */
async function readOciSifConfig(
  image: SifImage,
  maxBytes: number,
  meta: ImageMetadata,
): Promise<Record<string, unknown> | undefined> {
  const [index] = image.find(SifDataType.ociRootIndex);
  if (!index) return undefined;
  const blob = async (digest: unknown): Promise<unknown> => {
    const found = image.objects.find((o) =>
      o.dataType === SifDataType.ociBlob && o.digest === digest
    );
    if (!found) return undefined;
    const bytes = await readSmall(image, found, maxBytes, meta);
    return bytes && parseJson(bytes);
  };
  const indexBytes = await readSmall(image, index, maxBytes, meta);
  const root = indexBytes && parseJson(indexBytes);
  if (!isRecord(root) || !Array.isArray(root.manifests) || !isRecord(root.manifests[0])) {
    return undefined;
  }
  const manifest = await blob(root.manifests[0].digest);
  if (!isRecord(manifest) || !isRecord(manifest.config)) return undefined;
  const config = await blob(manifest.config.digest);
  return isRecord(config) ? config : undefined;
}

async function readSifMetadata(
  image: SifImage,
  meta: ImageMetadata,
  maxBytes: number,
): Promise<void> {
  const { header } = image;
  if (header.launchScript) meta.launchScript = header.launchScript;
  if (header.id !== NIL_UUID) meta.id = header.id;
  setCreated(meta, header.createdAt);
  const primary = image.primaryPartition();
  const arch = primary?.partition?.arch ?? header.arch;
  if (arch !== "unknown") meta.architecture = arch;
  meta.encrypted = image.objects.some((o) => o.partition?.fsType === SifFsType.encryptedSquashfs);
  for (const o of image.objects) {
    if (!o.signature) continue;
    meta.signatures.push({
      objectId: o.id,
      linkedId: o.linkedId,
      linkIsGroup: o.linkIsGroup,
      hashType: o.signature.hashTypeName,
      entity: o.signature.entity,
    });
  }
  meta.signed = meta.signatures.length > 0;
  meta.signatureEntities = [
    ...new Set(meta.signatures.map((s) => s.entity).filter((e): e is string => e !== null)),
  ];

  const [deffile] = image.find(SifDataType.deffile);
  if (deffile) {
    const bytes = await readSmall(image, deffile, maxBytes, meta);
    if (bytes) meta.deffile = new TextDecoder().decode(bytes);
  }

  const [inspect] = image.find(SifDataType.genericJson, INSPECT_METADATA_NAME);
  if (inspect) {
    const bytes = await readSmall(image, inspect, maxBytes, meta);
    const attributes = bytes && normalizeInspectJson(parseJson(bytes));
    if (attributes) {
      applyAttributes(meta, attributes, "inspect-metadata.json");
      return;
    }
    if (bytes) meta.notes.push(`Object ${inspect.id} (${INSPECT_METADATA_NAME}) is not valid JSON`);
  }

  // No inspect data: use what older writers and OCI builds left in other objects.
  const [ociConfig] = image.find(SifDataType.genericJson, OCI_CONFIG_NAME);
  let config: unknown;
  if (ociConfig) {
    const bytes = await readSmall(image, ociConfig, maxBytes, meta);
    config = bytes && parseJson(bytes);
  } else {
    config = await readOciSifConfig(image, maxBytes, meta);
    if (isRecord(config)) {
      if (!meta.architecture && typeof config.architecture === "string") {
        meta.architecture = config.architecture;
      }
      if (meta.createdAt === undefined && typeof config.created === "string") {
        const ms = Date.parse(config.created);
        if (!Number.isNaN(ms)) setCreated(meta, Math.floor(ms / 1000));
      }
    }
  }
  const fromConfig = fromOciConfig(config);
  if (fromConfig) {
    applyAttributes(meta, fromConfig, "oci-config");
    // An OCI config has no runscript/test/help of Singularity's kind.
    return;
  }
  const [labels] = image.find(SifDataType.labels);
  if (labels) {
    const bytes = await readSmall(image, labels, maxBytes, meta);
    const parsed = bytes && parseJson(bytes);
    if (isRecord(parsed)) {
      meta.labels = asStringMap(parsed);
      meta.attributesFrom = "sif-objects";
    }
  }
}

/** Run `<tool> inspect --json --all <file>` with each tool until one answers. */
async function inspectWithTool(
  path: string,
  runner: CommandRunner,
  tools: string[],
  meta: ImageMetadata,
): Promise<boolean> {
  for (const tool of tools) {
    let result: CommandResult;
    try {
      result = await runner(tool, ["inspect", "--json", "--all", path]);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      if (error instanceof Deno.errors.PermissionDenied) {
        meta.notes.push(`Not allowed to run ${tool}`);
        continue;
      }
      meta.notes.push(`${tool} inspect failed: ${oneLine(error)}`);
      continue;
    }
    if (result.code !== 0) {
      meta.notes.push(
        `${tool} inspect exited with code ${result.code}: ${oneLine(result.stderr.trim())}`,
      );
      continue;
    }
    let json: unknown;
    try {
      json = JSON.parse(result.stdout);
    } catch {
      meta.notes.push(`${tool} inspect printed something that is not JSON`);
      continue;
    }
    const attributes = normalizeInspectJson(json);
    if (!attributes) {
      meta.notes.push(`${tool} inspect printed JSON that is not an object`);
      continue;
    }
    applyAttributes(meta, attributes, tool === "apptainer" ? "apptainer" : "singularity");
    return true;
  }
  return false;
}

function oneLine(value: unknown): string {
  const text = value instanceof Error ? value.message : String(value);
  return text.split("\n")[0].slice(0, 200);
}

/**
 * Read the metadata of an image file.
 *
 * SIF: header, objects and the small metadata objects are read natively. When the SIF carries no
 * `inspect-metadata.json` (Singularity < 3.7), or for a legacy/unknown image, the runner is asked
 * for `<tool> inspect --json --all <file>` (singularity, then apptainer). What could not be read
 * is listed in `missing`, with reasons in `notes`.
 *
 * @param input a path, or a {@linkcode ByteSource} (then the fallback gets its name as path)
 * @throws {SifError} when the file claims to be a SIF but is corrupt or truncated.
 * @throws {NotFoundError} when the file does not exist.
 */
export async function readImageMetadata(
  input: string | ByteSource,
  options: ReadMetadataOptions = {},
): Promise<ImageMetadata> {
  const runner = options.runner === undefined ? defaultRunner : options.runner;
  const tools = options.tools ?? ["singularity", "apptainer"];
  const maxBytes = options.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES;
  const source = typeof input === "string" ? prefetchSource(await fileSource(input)) : input;
  let meta: ImageMetadata;
  try {
    const detected = await detectImageFormat(source);
    meta = emptyMetadata(source.name, detected.format, detected.legacy);
    if (detected.format === "sif") {
      const image = await openSif(source, { closeSource: false });
      await readSifMetadata(image, meta, maxBytes);
    } else {
      if (detected.launchScript) meta.launchScript = detected.launchScript;
      if (detected.compression) meta.compression = detected.compression;
      if (detected.createdAt !== undefined) setCreated(meta, detected.createdAt);
      if (detected.format === "unknown") {
        meta.notes.push("Not a SIF, squashfs or ext3 image");
      }
    }
  } finally {
    if (typeof input === "string") source.close();
  }

  if (meta.attributesFrom === "none" || meta.attributesFrom === "sif-objects") {
    const why = meta.format === "sif"
      ? `the SIF has no ${INSPECT_METADATA_NAME} object (built before Singularity 3.7?)`
      : `${meta.format} images keep their metadata inside the filesystem`;
    const ran = runner ? await inspectWithTool(source.name, runner, tools, meta) : false;
    if (!ran) {
      meta.notes.push(
        `Labels, environment and scripts are unavailable: ${why}, and ` +
          (runner ? `neither ${tools.join(" nor ")} could inspect it` : "the fallback is disabled"),
      );
      for (const field of ATTRIBUTE_FIELDS) {
        if (field === "labels" && meta.attributesFrom === "sif-objects") continue;
        meta.missing.push(field);
      }
    }
  }
  if (meta.deffile === undefined && meta.attributesFrom !== "oci-config") {
    meta.missing.push("deffile");
  }
  if (meta.architecture === undefined) meta.missing.push("architecture");
  if (meta.createdAt === undefined) meta.missing.push("created");
  if (meta.id === undefined && meta.format === "sif") meta.missing.push("id");
  return meta;
}
