/**
 * `sregistry inspect --file <path>` and `--objects`: read any image file directly, with the native SIF
 * reader (no Singularity needed), and print its metadata or its data objects the way `siftool` does.
 * @module
 */

import { exists, isFile } from "../../core/fs.ts";
import type { App } from "../app.ts";
import { FormatError, NotFoundError } from "../../core/errors.ts";
import { flattenForCatalog } from "../../core/catalog_metadata.ts";
import { readImageMetadata } from "../../core/metadata.ts";
import { openSif } from "../../core/sif.ts";
import { formatHeader, formatObjectList, listRows } from "../../core/sif_text.ts";
import { detectImageFormat } from "../../core/image_format.ts";

/** Print the metadata of an image file: JSON (the catalog's flat form under `catalog`). */
export async function inspectFile(app: App, path: string): Promise<void> {
  await assertFile(path);
  // An empty or foreign file is an error, not a report of an "unknown" image with exit 0.
  const { format } = await detectImageFormat(path);
  if (format === "unknown") {
    const size = (await Deno.stat(path)).size;
    throw new FormatError(
      `${JSON.stringify(path)} is not a container image: ${
        size === 0 ? "it is empty" : "it has no SIF, squashfs, ext3 or OCI-archive header"
      }; give a .sif file (or pull one first)`,
    );
  }
  const meta = await readImageMetadata(path);
  for (const note of meta.notes) app.log.verbose(note);
  if (meta.missing.length) {
    app.log.warning(
      `${path}: no ${
        meta.missing.join(", ")
      } in the image; install singularity or apptainer to read them from older images`,
    );
  }
  app.out.json({ ...meta, catalog: flattenForCatalog(meta) });
}

/** Print a SIF file's header and object listing (JSON with --json). */
export async function inspectObjects(app: App, path: string): Promise<void> {
  await assertFile(path);
  const image = await openSif(path);
  try {
    if (app.json) {
      app.out.json({ ...image.toJSON(), rows: listRows(image.objects) });
      return;
    }
    app.out.line(formatHeader(image.header).trimEnd());
    app.out.line("");
    app.out.line(formatObjectList(image.objects).trimEnd());
  } finally {
    image.close();
  }
}

function assertFile(path: string): Promise<void> {
  if (!exists(path)) throw new NotFoundError(`Image file ${JSON.stringify(path)} does not exist`);
  if (!isFile(path)) throw new NotFoundError(`${JSON.stringify(path)} is not a file`);
  return Promise.resolve();
}
