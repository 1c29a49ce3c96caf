/**
 * Object names and custom metadata exactly as sregistry-cli's google-storage client wrote them, so
 * either tool finds what the other pushed: the object is `names.storage`
 * (`collection/image:tag@version.sif`, the version being the file's sha256 unless the name gives
 * one), and its metadata is the parsed name's fields, the image's labels, and `type: container`.
 * We add `sha256sum` (the hex digest, the key google-build writes too), read back on pull.
 * google-build's images follow the same naming and carry the same `type` and digest keys.
 * @module
 */

import { type ParsedName, parseImageName } from "../../core/names.ts";

/** The metadata key holding the file's sha256 (hex). */
export const DIGEST_KEY = "sha256sum";

/** Custom metadata as GCS keeps it: strings only, at most 8 KiB in all. */
export type ObjectMetadata = Record<string, string>;

/** GCS refuses custom metadata larger than this (keys and values). */
export const METADATA_LIMIT = 8 * 1024;

/** Keys of the catalog's metadata that are not labels (never written as object metadata). */
const NOT_LABELS = new Set([
  "sif",
  "deffile",
  "runscript",
  "environment",
  "help",
  "test",
  "startscript",
  "apps",
  "type",
]);

/** The names of a push: the version is the one the name gives, else the file's sha256 (hex). */
export function pushNames(name: string, tag: string | undefined, sha256hex: string): ParsedName {
  const given = parseImageName(name, { tag });
  return parseImageName(name, { tag, version: given.version ?? sha256hex });
}

/** The name fields the original stored (its `parse_image_name` dict; None values dropped). */
export function nameFields(names: ParsedName): ObjectMetadata {
  const out: ObjectMetadata = {
    collection: names.collection,
    original: names.original,
    image: names.image,
    url: names.url,
    tag: names.tag,
    storage: names.storage,
    uri: names.uri,
  };
  if (names.registry) out.registry = names.registry;
  if (names.version) out.version = names.version;
  return out;
}

/**
 * The metadata of a push: string labels first, then the name fields (names win, as in the
 * original), then `type: container` and our digest. Labels that do not fit GCS's 8 KiB are left out
 * (returned in `dropped`).
 */
export function pushMetadata(
  names: ParsedName,
  sha256hex: string,
  labels: Record<string, unknown> = {},
): { metadata: ObjectMetadata; dropped: string[] } {
  const fixed: ObjectMetadata = {
    ...nameFields(names),
    type: "container",
    [DIGEST_KEY]: sha256hex,
  };
  const size = (m: ObjectMetadata) =>
    Object.entries(m).reduce((n, [k, v]) => n + new TextEncoder().encode(k + v).length, 0);
  let budget = METADATA_LIMIT - size(fixed);
  const kept: ObjectMetadata = {};
  const dropped: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== "string" || NOT_LABELS.has(k) || k in fixed) continue;
    const n = new TextEncoder().encode(k + v).length;
    if (n > budget) {
      dropped.push(k);
      continue;
    }
    budget -= n;
    kept[k] = v;
  }
  return { metadata: { ...kept, ...fixed }, dropped };
}

/** `sha256:<hex>` from an object's metadata, when it carries one we can check. */
export function digestOf(metadata: ObjectMetadata | undefined): string | undefined {
  const v = metadata?.[DIGEST_KEY]?.trim().toLowerCase().replace(/^sha256:/, "");
  return v && /^[0-9a-f]{64}$/.test(v) ? `sha256:${v}` : undefined;
}

/** Whether an object counts as a container: its metadata says `type: container`. */
export function isContainer(metadata: ObjectMetadata | undefined): boolean {
  return metadata?.type === "container";
}

/**
 * Whether an object name is a version of `url:tag` (`url:tag.sif` or `url:tag@<version>.sif`).
 */
export function isVersionOf(objectName: string, names: ParsedName): boolean {
  const stem = `${names.url}:${names.tag}`;
  if (!objectName.startsWith(stem) || !objectName.endsWith(".sif")) return false;
  const rest = objectName.slice(stem.length, -4);
  return rest === "" || /^@[^/@]+$/.test(rest);
}

/** The version part of an object name (`url:tag@<version>.sif`), if any. */
export function versionOfName(objectName: string): string | undefined {
  return objectName.match(/@([^/@]+)\.sif$/)?.[1];
}

/** The `<scheme>://` URI of an object: its metadata's `uri`, else its name without `.sif`. */
export function objectUri(
  scheme: string,
  o: { name: string; metadata?: ObjectMetadata },
): string {
  return `${scheme}://${o.metadata?.uri ?? o.name.replace(/\.sif$/, "")}`;
}
