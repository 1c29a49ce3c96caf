/**
 * The flat metadata dictionary the catalog stores for a container.
 * @module
 */

import { omitUndefined } from "./inspect_json.ts";
import type { ImageMetadata } from "./metadata.ts";

/**
 * The flat metadata dictionary the catalog stores for a container, in the shape sregistry-cli
 * stored `singularity inspect` output: labels at the top level, then `sif` (format, architecture,
 * id, created, signed, signature entities, encrypted), `deffile`, `runscript`, `environment`,
 * `help`, `test`, `startscript`, `apps` when present, and `type: "container"` last so a label
 * cannot override it. These fixed keys win over labels of the same name. Only JSON values.
 */
export function flattenForCatalog(meta: ImageMetadata): Record<string, unknown> {
  const flat: Record<string, unknown> = { ...meta.labels };
  flat.sif = omitUndefined({
    format: meta.format,
    architecture: meta.architecture,
    id: meta.id,
    created: meta.created,
    signed: meta.signed,
    signatureEntities: meta.signatureEntities.length ? [...meta.signatureEntities] : undefined,
    encrypted: meta.encrypted || undefined,
  });
  if (meta.deffile !== undefined) flat.deffile = meta.deffile;
  if (meta.runscript !== undefined) flat.runscript = meta.runscript;
  if (Object.keys(meta.environment).length) flat.environment = { ...meta.environment };
  if (meta.help !== undefined) flat.help = meta.help;
  if (meta.test !== undefined) flat.test = meta.test;
  if (meta.startscript !== undefined) flat.startscript = meta.startscript;
  if (Object.keys(meta.apps).length) flat.apps = structuredClone(meta.apps);
  flat.type = "container";
  return flat;
}
