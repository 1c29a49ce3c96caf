/**
 * Image names: parsing `[registry/]collection/image[:tag][@version]`, URI schemes, recipe tags and the
 * storage path of an image. Answers match sregistry-cli 0.2.39 except where the original was buggy
 * (see README "Differences from sregistry-cli"): the extension strip is anchored, nested URIs are
 * read left to right, registry-qualified names get their own folder, and a name that could escape
 * the storage folder is refused.
 * @module
 */

import { isAbsolute, join, relative, resolve } from "node:path";
import { UsageError } from "./errors.ts";

/** A parsed image name. Field names and values follow sregistry-cli's `parse_image_name`. */
export interface ParsedName {
  /** The string as given. */
  original: string;
  /** The registry host (`docker.io`, `localhost:5000`), when the name carries one. */
  registry?: string;
  /** The collection, possibly with several `/`-separated parts (default `library`). */
  collection: string;
  /** The image (repository) name. */
  image: string;
  /** The tag (default `latest`). */
  tag: string;
  /** The version (a digest or a file hash), when known. */
  version?: string;
  /** `[registry/]collection/image`. */
  url: string;
  /** `url:tag[@version]`. */
  uri: string;
  /** `uri.<ext>`, kept for compatibility; use {@link storagePath} for the real file path. */
  storage: string;
}

/** Options of {@link parseImageName}, as in the original's keyword arguments. */
export interface ParseOptions {
  /** Overrides the parsed tag. */
  tag?: string;
  /** Overrides the parsed version. */
  version?: string;
  /** Apply the default collection and tag (default true). */
  defaults?: boolean;
  /** Extension of the storage name (default `sif`). */
  ext?: string;
  /** Default collection (default `library`). */
  defaultCollection?: string;
  /** Default tag (default `latest`). */
  defaultTag?: string;
  /** A prefix (such as an API base URL) removed before parsing. */
  base?: string;
  /** Lower-case collection, image and tag (default true). The version is always lower-cased. */
  lowercase?: boolean;
}

const REDUCED_URI =
  /^(?:(?<registry>[^/@]+[.:][^/@]*)\/)?(?<repo>[^:@/]+)(?::(?<tag>[^:@/]+))?(?:@(?<version>.+))?$/;
const DEFAULT_URI =
  /^(?:(?<registry>[^/@]+)\/)?(?<collection>(?:[^:@/]+\/)+)(?<repo>[^:@/]+)(?::(?<tag>[^:@/]+))?(?:@(?<version>.+))?$/;
const DOCKER_URI =
  /^(?:(?<registry>[^/@]+[.:][^/@]*)\/)?(?<collection>(?:[^:@/]+\/)+)?(?<repo>[^:@/]+)(?::(?<tag>[^:@/]+))?(?:@(?<version>.+))?$/;

// deno-lint-ignore no-control-regex
const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f\\]/;

/**
 * The characters each part of a name may hold, as docs/commands/catalog.md promises: a registry is a
 * host with an optional port; collection levels, the image and the tag are letters, digits, `.`,
 * `_` and `-`; a version may also hold `:` and `+` (`sha256:<hex>`).
 */
export const NAME_CHARSETS: Readonly<Record<string, { pattern: RegExp; allowed: string }>> = {
  registry: { pattern: /^[A-Za-z0-9._:-]+$/, allowed: "letters, digits, . _ - and :port" },
  collection: { pattern: /^[A-Za-z0-9._-]+$/, allowed: "letters, digits, . _ -" },
  image: { pattern: /^[A-Za-z0-9._-]+$/, allowed: "letters, digits, . _ -" },
  tag: { pattern: /^[A-Za-z0-9._-]+$/, allowed: "letters, digits, . _ -" },
  version: { pattern: /^[A-Za-z0-9._:+-]+$/, allowed: "letters, digits, . _ - : +" },
};

/**
 * Length limits, checked before any folder is made. Most file systems allow 255 bytes per path
 * component; a stored file is `<tag>@<version>.<ext>`, so the tag and the version share one
 * component with room for the longest extension (`.oci.tar`). Names are ASCII (the charsets above),
 * so characters are bytes. `file` bounds `<tag>@<version>` together.
 */
export const NAME_LIMITS: Readonly<
  { component: number; tag: number; version: number; file: number; total: number }
> = { component: 255, tag: 128, version: 247, file: 247, total: 1024 };

/** A name as quoted in a message: long ones are shortened so the message stays one line. */
function quoted(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 60)}...${name.slice(-10)}` : name);
}

function fail(name: string, why: string): never {
  throw new UsageError(`Cannot parse image name ${quoted(name)}: ${why}`);
}

function tooLong(original: string, what: string, length: number, limit: number): never {
  fail(original, `the ${what} is too long (${length} characters; at most ${limit})`);
}

/** Refuse anything that could name a path outside the storage folder or confuse a shell. */
function checkSegment(original: string, what: string, value: string): void {
  if (value === "") fail(original, `empty ${what}`);
  const limit = what === "tag"
    ? NAME_LIMITS.tag
    : what === "version"
    ? NAME_LIMITS.version
    : NAME_LIMITS.component;
  if (value.length > limit) tooLong(original, what, value.length, limit);
  if (value === "." || value === "..") fail(original, `${what} cannot be "${value}"`);
  if (value.includes("/")) fail(original, `${what} cannot contain "/"`);
  if (FORBIDDEN_CHARS.test(value)) {
    fail(original, `${what} contains a control character or a backslash`);
  }
  const charset = NAME_CHARSETS[what];
  if (charset && !charset.pattern.test(value)) {
    const bad = [...value].find((c) => !charset.pattern.test(c)) ?? value;
    fail(
      original,
      `${what} ${quoted(value)} contains ${JSON.stringify(bad)}; use ${charset.allowed}` +
        (what === "image" || what === "collection" ? ", and / between collection levels" : ""),
    );
  }
}

/**
 * Parse an image name the way sregistry-cli does.
 *
 * @example
 * ```ts
 * parseImageName("vsoch/Hello-World:V1.0@ABC123").uri; // "vsoch/hello-world:v1.0@abc123"
 * ```
 * @throws {UsageError} when the name is empty, absolute, cannot be parsed, or could escape storage.
 */
export function parseImageName(imageName: string, options: ParseOptions = {}): ParsedName {
  const {
    defaults = true,
    ext = "sif",
    defaultCollection = "library",
    defaultTag = "latest",
    lowercase = true,
  } = options;
  const original = imageName;
  let s = imageName;
  if (options.base) s = s.replace(options.base, "").replace(/^\/+|\/+$/g, "");
  if (s.trim() === "") fail(original, "the name is empty");
  if (s.length > NAME_LIMITS.total) tooLong(original, "name", s.length, NAME_LIMITS.total);
  if (FORBIDDEN_CHARS.test(s)) fail(original, "it contains a control character or a backslash");
  if (s.startsWith("/")) {
    fail(original, "an absolute path is not an image name; give collection/image[:tag]");
  }
  if (s.includes("//")) fail(original, "empty collection");
  // The original stripped these extensions anywhere in the name; only a trailing one is an extension.
  // Unlike the original, a tag cannot contain "/", so `localhost:5000/a/b` is not read as image
  // `localhost` with tag `5000/a/b`.
  s = s.replace(/\.(img|simg|sif)$/, "");

  const match = s.match(REDUCED_URI) ?? s.match(DEFAULT_URI) ?? s.match(DOCKER_URI);
  if (!match?.groups) fail(original, "expected [registry/]collection/image[:tag][@version]");
  const g = match.groups;

  let collection = g.collection?.replace(/\/+$/, "");
  let image = g.repo;
  let tag = options.tag ?? g.tag;
  let version: string | undefined = options.version ?? g.version;
  const registry = g.registry || undefined;
  if (defaults) {
    collection ||= defaultCollection;
    tag ||= defaultTag;
  }
  if (lowercase) {
    collection = collection?.toLowerCase();
    image = image.toLowerCase();
    tag = tag?.toLowerCase();
  }
  version = version ? version.toLowerCase() : undefined;

  if (registry !== undefined) checkSegment(original, "registry", registry);
  for (const part of (collection ?? "").split("/")) {
    if (collection !== undefined) checkSegment(original, "collection", part);
  }
  checkSegment(original, "image", image);
  if (tag !== undefined) checkSegment(original, "tag", tag);
  if (version !== undefined) checkSegment(original, "version", version);
  const fileLength = (tag ?? "").length + (version ? version.length + 1 : 0);
  if (fileLength > NAME_LIMITS.file) {
    tooLong(original, "tag with its version", fileLength, NAME_LIMITS.file);
  }

  const url = [registry, collection, image].filter((p) => p !== undefined && p !== "").join("/");
  const uri = `${url}${tag ? `:${tag}` : ""}${version ? `@${version}` : ""}`;
  return {
    original,
    registry,
    collection: collection ?? "",
    image,
    tag: tag ?? "",
    version,
    url,
    uri,
    storage: `${uri}.${ext}`,
  };
}

/**
 * The file an image is stored at: `<root>/[<registry>/]<collection>/<image>/<tag>[@<version>].<ext>`.
 *
 * The original put the registry into the file name and lost part of multi-level collections; here the
 * registry is its own folder (`:` of a port becomes `_`) and every collection level a sub-folder.
 * @throws {UsageError} if the result would not be inside `root` (defence in depth: parsing already
 * refuses such names).
 */
export function storagePath(names: ParsedName, root: string, ext = "sif"): string {
  const parts = [
    ...(names.registry ? [names.registry.replaceAll(":", "_")] : []),
    ...names.collection.split("/").filter((p) => p !== ""),
    names.image,
  ];
  const file = `${names.tag || "latest"}${names.version ? `@${names.version}` : ""}.${ext}`;
  const absRoot = resolve(root);
  const path = join(absRoot, ...parts, file);
  const rel = relative(absRoot, path);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
    throw new UsageError(
      `Image name ${JSON.stringify(names.original)} would be stored outside ${absRoot}`,
    );
  }
  return path;
}

/** URI schemes sregistry-cli accepted, plus the ones this project adds. */
export const ACCEPTED_URIS: readonly string[] = [
  "aws",
  "docker",
  "dropbox",
  "gitlab",
  "globus",
  "google-build",
  "google-compute",
  "google-drive",
  "google-storage",
  "http",
  "https",
  "hub",
  "library",
  "nvidia",
  "oras",
  "registry",
  "s3",
  "swift",
];

const SCHEME = /^([A-Za-z][A-Za-z0-9+._-]*):\/\//;

/**
 * The client scheme named by an image's URI prefix (`docker://x` -> `docker`), or undefined.
 *
 * As in the original, the scheme is lower-cased, `_` becomes `-` and anything containing `shub` is
 * `hub`; unlike it, the first `://` ends the scheme (`docker://a://b` -> `docker`).
 * With `validate` (the default) a scheme not in `accepted` gives undefined.
 */
export function getUri(
  image: string | undefined,
  validate = true,
  accepted: readonly string[] = ACCEPTED_URIS,
): string | undefined {
  if (!image) return undefined;
  const m = image.match(SCHEME);
  if (!m) return undefined;
  let uri = m[1].toLowerCase().replaceAll("_", "-");
  if (uri.includes("shub")) uri = "hub";
  if (validate && !accepted.includes(uri)) return undefined;
  return uri;
}

/** The image string without its URI prefix (`shub://vanessa/x` -> `vanessa/x`). */
export function removeUri(image: string): string {
  return image.replace(SCHEME, "");
}

/**
 * The tag a Singularity recipe file implies: `Singularity` -> `latest`, `Singularity.v1` -> `v1`,
 * undefined for a file that is not a Singularity recipe.
 */
export function getRecipeTag(path: string): string | undefined {
  if (!path.includes("Singularity")) return undefined;
  return path.replace(/(.+)?Singularity[.]?/g, "") || "latest";
}
