/**
 * Where an image lives in Swift, exactly as sregistry-cli put it: one container per collection, and
 * the object named after the storage name's file, `image:tag[@version].sif`.
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { type ParsedName, parseImageName, removeUri } from "../../core/names.ts";

/** The container and object of an image. */
export interface SwiftLocation {
  /** The parsed name. */
  names: ParsedName;
  /** The container (the collection). */
  container: string;
  /** The object (`image:tag[@version].sif`). */
  object: string;
}

/** The container of segments of a static large object, as the `swift` command names it. */
export function segmentContainer(container: string): string {
  return `${container}_segments`;
}

/** Where `image` (with or without `swift://`) lives. */
export function locate(image: string, options: { tag?: string } = {}): SwiftLocation {
  const names = parseImageName(removeUri(image), { tag: options.tag });
  if (names.registry !== undefined || names.collection.includes("/")) {
    throw new UsageError(
      `Cannot name a Swift object by ${
        JSON.stringify(image)
      }: a Swift container has one level; use swift://container/image[:tag]`,
    );
  }
  const object = `${names.image}:${names.tag}${names.version ? `@${names.version}` : ""}.sif`;
  return { names, container: names.collection, object };
}

/** The image URI of an object (`swift://container/image:tag[@version]`); undefined if not a .sif. */
export function uriOf(container: string, object: string): string | undefined {
  if (!object.endsWith(".sif") || object.includes("/")) return undefined;
  return `swift://${container}/${object.slice(0, -4)}`;
}

/** The URL of a container or object under the storage URL, each name escaped (`:` as `%3A`). */
export function objectUrl(storageUrl: string, container: string, object?: string): URL {
  const parts = [container, ...(object === undefined ? [] : [object])].map(encodeURIComponent);
  return new URL(`${storageUrl}/${parts.join("/")}`);
}
