/**
 * Turns what `singularity inspect --json`, Apptainer's `inspect-metadata.json` object and OCI image
 * configs say into one shape, {@linkcode InspectAttributes}, whatever version wrote them.
 * @module
 */

import type { AppMetadata } from "./metadata.ts";
import { environmentFromEnv } from "./oci_env.ts";

export { OCI_ENV_FILE } from "./oci_env.ts";

/** Whether a JSON value is an object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A JSON value as text: strings as they are, other values as JSON. */
export function asText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return undefined;
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** A JSON object as string -> text, dropping `__proto__` and empty values. */
export function asStringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isRecord(value)) return out;
  for (const [key, item] of Object.entries(value)) {
    // JSON.parse makes "__proto__" an own key; assigning it would set the prototype instead.
    if (key === "__proto__") continue;
    const text = asText(item);
    if (text !== undefined) out[key] = text;
  }
  return out;
}

/** Environment as path -> content; Singularity 2.x printed one string. */
export function asEnvironment(value: unknown): Record<string, string> {
  if (typeof value === "string") return value === "" ? {} : { environment: value };
  return asStringMap(value);
}

/** Inspect attributes in the shape this module returns. */
export interface InspectAttributes {
  /** Labels. */
  labels: Record<string, string>;
  /** Environment files. */
  environment: Record<string, string>;
  /** Runscript. */
  runscript?: string;
  /** Test script. */
  test?: string;
  /** Help text. */
  help?: string;
  /** Definition file. */
  deffile?: string;
  /** Startscript. */
  startscript?: string;
  /** Apps. */
  apps: Record<string, AppMetadata>;
}

/**
 * Normalise the JSON of `inspect-metadata.json` or of `singularity inspect --json --all`:
 * unwrap a top-level `data` and then `attributes` (as sregistry-cli did for Singularity 3.x
 * output), accept `help` or `helpfile`, a string or a map for the environment, and drop values
 * that are not strings. Returns undefined when the value is not a JSON object.
 */
export function normalizeInspectJson(json: unknown): InspectAttributes | undefined {
  if (!isRecord(json)) return undefined;
  let node: Record<string, unknown> = json;
  if (isRecord(node.data)) node = node.data;
  if (isRecord(node.attributes)) node = node.attributes;
  const apps: Record<string, AppMetadata> = {};
  if (isRecord(node.apps)) {
    for (const [name, app] of Object.entries(node.apps)) {
      if (!isRecord(app)) continue;
      apps[name] = omitUndefined({
        labels: asStringMap(app.labels),
        environment: asEnvironment(app.environment),
        runscript: asText(app.runscript),
        test: asText(app.test),
        help: asText(app.helpfile ?? app.help),
        startscript: asText(app.startscript),
      });
    }
  }
  return omitUndefined({
    labels: asStringMap(node.labels),
    environment: asEnvironment(node.environment),
    runscript: asText(node.runscript),
    test: asText(node.test),
    help: asText(node.helpfile ?? node.help),
    deffile: asText(node.deffile),
    startscript: asText(node.startscript),
    apps,
  });
}

/** Drop the keys whose value is undefined (in place), so the result is plain JSON. */
export function omitUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] === undefined) delete value[key];
  }
  return value;
}

/** Parse UTF-8 JSON bytes; undefined when they are not JSON. */
export function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}

/** OCI image config fields as Singularity would show them. */
export function fromOciConfig(config: unknown): InspectAttributes | undefined {
  if (!isRecord(config)) return undefined;
  const inner = isRecord(config.config) ? config.config : config;
  const attributes: InspectAttributes = {
    labels: asStringMap(inner.Labels),
    environment: {},
    apps: {},
  };
  if (Array.isArray(inner.Env)) {
    attributes.environment = environmentFromEnv(
      inner.Env.filter((e): e is string => typeof e === "string"),
    );
  }
  return attributes;
}
