/**
 * The image thumbnail some remotes show beside an upload (the original's `get_thumbnail`):
 * SREGISTRY_THUMBNAIL when set, else the small robot PNG shipped in core/data/. The compile task
 * embeds that file (`--include core/data/robot.png`); a run from JSR reads it over HTTP.
 * @module
 */

import { basenamePath as basename } from "./path.ts";
import { ConfigError } from "./errors.ts";

/** A thumbnail to upload. */
export interface Thumbnail {
  /** File name (`robot.png`). */
  name: string;
  /** Media type from the extension (`image/png`). */
  mediaType: string;
  /** The file's bytes. */
  bytes: Uint8Array;
}

/** The built-in thumbnail, next to this module (embedded by `deno compile --include`). */
export const ROBOT_PNG: URL = new URL("./data/robot.png", import.meta.url);

const TYPES: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  svg: "image/svg+xml",
  webp: "image/webp",
};

/** Options of {@link readThumbnail}. */
export interface ThumbnailOptions {
  /** SREGISTRY_THUMBNAIL (Settings.thumbnail). */
  path?: string;
  /** Fetches the built-in file when this module was loaded over HTTP (JSR). */
  fetchBytes?: (url: URL) => Promise<Uint8Array>;
}

/**
 * Read the thumbnail.
 * @throws {ConfigError} when SREGISTRY_THUMBNAIL names a file that cannot be read.
 */
export async function readThumbnail(options: ThumbnailOptions = {}): Promise<Thumbnail> {
  const name = options.path ? basename(options.path) : "robot.png";
  const mediaType = TYPES[name.split(".").pop()?.toLowerCase() ?? ""] ??
    "application/octet-stream";
  if (options.path) {
    try {
      return { name, mediaType, bytes: await Deno.readFile(options.path) };
    } catch (e) {
      throw new ConfigError(
        `SREGISTRY_THUMBNAIL ${JSON.stringify(options.path)} cannot be read (${
          (e as Error).message
        }); point it at an image file or unset it`,
      );
    }
  }
  if (ROBOT_PNG.protocol === "file:" || !options.fetchBytes) {
    return { name, mediaType, bytes: await Deno.readFile(ROBOT_PNG) };
  }
  return { name, mediaType, bytes: await options.fetchBytes(ROBOT_PNG) };
}
