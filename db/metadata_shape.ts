/**
 * The one shape of catalog metadata (`metrics`), whoever wrote it:
 * - labels: in a `labels` object (new rows), and, as sregistry-cli stored them, as top-level
 *   strings; {@link metadataLabels} lists each label once and skips the fields sregistry itself
 *   writes (names, digests, sizes...).
 * - the environment: `environment`, a map of environment file -> its script, as Singularity keeps
 *   it. Rows written before this shape have an OCI `env` list (`["K=V"]`); it is still read.
 * @module
 */

import { environmentFromEnv } from "../core/oci_env.ts";
import type { Metadata } from "./types.ts";

/** Top-level metadata keys that sregistry and its clients write, which are never image labels. */
export const NON_LABEL_KEYS: ReadonlySet<string> = new Set([
  "apps",
  "architecture",
  "cmd",
  "collection",
  "created",
  "deffile",
  "digest",
  "entrypoint",
  "env",
  "environment",
  "etag",
  "format",
  "help",
  "image",
  "indexDigest",
  "labels",
  "last_modified",
  "layerDigest",
  "layerMediaType",
  "layers",
  "mediaType",
  "os",
  "platform",
  "registry",
  "runscript",
  "sif",
  "size",
  "startscript",
  "tag",
  "test",
  "title",
  "type",
  "uri",
  "url",
  "variant",
  "version",
  "workingDir",
]);

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * The labels of a row's metadata, each once: the entries of its `labels` object, then top-level
 * scalars that are not sregistry's own fields (the original flattened labels there). A key in both
 * places is listed once, with the `labels` object's value.
 */
export function metadataLabels(metadata: Metadata): [string, string][] {
  const text = (v: unknown) => typeof v === "string" ? v : JSON.stringify(v);
  const out = new Map<string, string>();
  if (isRecord(metadata.labels)) {
    for (const [k, v] of Object.entries(metadata.labels)) {
      if (v !== null && v !== undefined && typeof v !== "object") out.set(k, text(v));
    }
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (NON_LABEL_KEYS.has(k) || out.has(k)) continue;
    if (v !== null && v !== undefined && typeof v !== "object") out.set(k, text(v));
  }
  return [...out];
}

/**
 * Metadata with `environment` filled from a legacy `env` list when it has none, so readers see
 * one shape; other keys are untouched.
 */
export function withEnvironment(metadata: Metadata): Metadata {
  if (metadata.environment !== undefined || !Array.isArray(metadata.env)) return metadata;
  const env = metadata.env.filter((e): e is string => typeof e === "string");
  return { ...metadata, environment: environmentFromEnv(env) };
}
