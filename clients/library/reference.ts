/**
 * The library reference grammar: `library://[host[:port]/]entity/collection/container[:tag[,tag]]`
 * (scs-library-client `client/ref.go`). One component means `library/default/<container>`.
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { removeUri } from "../../core/names.ts";

/** A parsed library reference. */
export interface LibraryRef {
  /** `host[:port]` when the reference names one. */
  host?: string;
  /** The entity (user or organisation). */
  entity: string;
  /** The collection. */
  collection: string;
  /** The container. */
  container: string;
  /** Tags (`latest` when none), or one `sha256.<hex>` hash. */
  tags: string[];
}

function looksLikeHost(part: string): boolean {
  return part.includes(".") || part.includes(":") || part === "localhost";
}

/** Parse a library reference (the `library://` prefix is optional). */
export function parseLibraryRef(input: string): LibraryRef {
  const bare = removeUri(input.trim()).replace(/^\/+/, "");
  const quoted = JSON.stringify(input);
  let path = bare;
  let tagText: string | undefined;
  const lastSlash = bare.lastIndexOf("/");
  const colon = bare.indexOf(":", lastSlash + 1);
  if (colon >= 0) {
    path = bare.slice(0, colon);
    tagText = bare.slice(colon + 1);
  }
  const parts = path.split("/");
  let host: string | undefined;
  if (parts.length === 4 || (parts.length > 1 && looksLikeHost(parts[0]) && parts.length !== 3)) {
    host = parts.shift();
  }
  if (parts.some((p) => p === "")) {
    throw new UsageError(`Cannot parse library reference ${quoted}: empty component`);
  }
  let names: string[];
  if (parts.length === 1) names = ["library", "default", parts[0]];
  else if (parts.length === 3) names = parts;
  else {
    throw new UsageError(
      `Cannot parse library reference ${quoted}: use library://[host/]entity/collection/container[:tag]`,
    );
  }
  const tags = tagText === undefined ? ["latest"] : tagText.split(",").map((t) => t.trim());
  for (const t of tags) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(t)) {
      throw new UsageError(
        `Cannot parse library reference ${quoted}: bad tag ${JSON.stringify(t)}`,
      );
    }
  }
  for (const n of names) {
    if (!/^[a-z0-9]+([._-][a-z0-9]+)*$/i.test(n)) {
      throw new UsageError(
        `Cannot parse library reference ${quoted}: bad name ${JSON.stringify(n)}`,
      );
    }
  }
  return { host, entity: names[0], collection: names[1], container: names[2], tags };
}

/** `entity/collection/container`. */
export function refPath(ref: LibraryRef): string {
  return `${ref.entity}/${ref.collection}/${ref.container}`;
}
