/**
 * Manifest and index types of the OCI image spec and Docker schema 2, and platform selection for
 * multi-platform images (sregistry-cli had none and failed on any index).
 * @module
 */

import { hostPlatform as hostPlatformName, OCI_ARCH } from "../../core/platform.ts";
import { FormatError, NotFoundError, UsageError } from "../../core/errors.ts";

/** Media types this client speaks. */
export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  ociLayout: "application/vnd.oci.image.layout.v1+json",
  sifLayer: "application/vnd.sylabs.sif.layer.v1.sif",
  sifLayerTypo: "appliciation/vnd.sylabs.sif.layer.tar",
  sifConfig: "application/vnd.sylabs.sif.config.v1+json",
} as const;

/**
 * The Accept header for manifests. The distribution registry answers 404 for an OCI manifest when
 * the request does not accept OCI types, so all four are always sent.
 */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifest,
  MediaType.dockerList,
].join(", ");

/** A content descriptor. */
export interface Descriptor {
  /** Media type of the referenced content. */
  mediaType: string;
  /** `sha256:<hex>`. */
  digest: string;
  /** Size in bytes. */
  size: number;
  /** Platform, in an index. */
  platform?: Platform;
  /** Annotations. */
  annotations?: Record<string, string>;
  /** OCI 1.1 artifact type. */
  artifactType?: string;
}

/** An image platform. */
export interface Platform {
  /** `amd64`, `arm64`, ... */
  architecture: string;
  /** `linux`, ... */
  os: string;
  /** `v7`, `v8`, ... */
  variant?: string;
  /** `os.version` (Windows). */
  "os.version"?: string;
}

/** An image manifest (OCI or Docker schema 2). */
export interface ImageManifest {
  /** Always 2. */
  schemaVersion: number;
  /** Media type (optional in OCI). */
  mediaType?: string;
  /** OCI 1.1 artifact type. */
  artifactType?: string;
  /** The config blob. */
  config: Descriptor;
  /** The layers, base first. */
  layers: Descriptor[];
  /** Annotations. */
  annotations?: Record<string, string>;
}

/** An OCI index or Docker manifest list. */
export interface ImageIndex {
  /** Always 2. */
  schemaVersion: number;
  /** Media type. */
  mediaType?: string;
  /** The per-platform manifests. */
  manifests: Descriptor[];
  /** Annotations. */
  annotations?: Record<string, string>;
}

/** Whether a parsed manifest body is an index (by media type, or by shape when it has none). */
export function isIndex(mediaType: string | undefined, body: unknown): body is ImageIndex {
  if (mediaType === MediaType.ociIndex || mediaType === MediaType.dockerList) return true;
  const b = body as { manifests?: unknown; layers?: unknown };
  return Array.isArray(b?.manifests) && b.layers === undefined;
}

/**
 * Check that a body is an image manifest with a config and layers.
 * @throws {FormatError} naming what is wrong.
 */
export function asImageManifest(body: unknown, where: string): ImageManifest {
  const m = body as Partial<ImageManifest> & { fsLayers?: unknown };
  if (m?.fsLayers !== undefined) {
    throw new FormatError(
      `${where} is a Docker schema 1 manifest, which is deprecated and not supported; push the image again with a current tool`,
    );
  }
  if (!m || typeof m !== "object" || !m.config || !Array.isArray(m.layers)) {
    throw new FormatError(`${where} is not an image manifest (no config or layers)`);
  }
  for (const d of [m.config, ...m.layers]) {
    if (typeof d?.digest !== "string" || !/^sha256:[a-f0-9]{64}$/.test(d.digest)) {
      throw new FormatError(
        `${where} has a descriptor with an unsupported digest ${JSON.stringify(d?.digest)}`,
      );
    }
  }
  return m as ImageManifest;
}

/** The host's platform (OCI names), e.g. `linux/amd64`. */
export function hostPlatform(
  build: { os: string; arch: string } = Deno.build,
): Platform {
  const [os, architecture] = hostPlatformName(build).split("/");
  return architecture === "arm64" ? { os, architecture, variant: "v8" } : { os, architecture };
}

/**
 * Parse `os/arch[/variant]` (also `arch` alone, meaning linux).
 * @throws {UsageError} for an empty or over-long value.
 */
export function parsePlatform(value: string): Platform {
  const parts = value.trim().split("/");
  if (parts.some((p) => p === "") || parts.length > 3) {
    throw new UsageError(
      `Platform ${
        JSON.stringify(value)
      } is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`,
    );
  }
  if (parts.length === 1) return { os: "linux", architecture: normalizeArch(parts[0]) };
  const [os, arch, variant] = parts;
  return { os, architecture: normalizeArch(arch), ...(variant ? { variant } : {}) };
}

function normalizeArch(a: string): string {
  return OCI_ARCH[a] ?? a;
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

function variantMatches(want: Platform, have: Platform): boolean {
  if (!want.variant) return true;
  if (have.variant === want.variant) return true;
  // arm64 images often carry no variant: v8 is implied.
  return want.architecture === "arm64" && want.variant === "v8" && !have.variant;
}

/**
 * Pick the manifest for a platform from an index. Attestation manifests (`unknown/unknown`) are
 * never picked. With a variant asked for, an exact variant is preferred.
 * @throws {NotFoundError} listing the platforms the index has.
 */
export function selectPlatform(index: ImageIndex, want: Platform, where: string): Descriptor {
  const candidates = index.manifests.filter((d) =>
    d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture &&
    variantMatches(want, d.platform)
  );
  const exact = candidates.find((d) => d.platform?.variant === want.variant);
  const hit = exact ?? candidates[0];
  if (hit) return hit;
  // An index without platform information (e.g. a single-image OCI layout) has one obvious answer.
  const untyped = index.manifests.filter((d) => !d.platform);
  if (untyped.length === 1 && index.manifests.length === 1) return untyped[0];
  const have = index.manifests
    .filter((d) => d.platform && d.platform.os !== "unknown")
    .map((d) => formatPlatform(d.platform!));
  throw new NotFoundError(
    `${where} has no image for platform ${formatPlatform(want)}; available: ${
      have.join(", ") || "none"
    } (choose one with --platform)`,
  );
}

/** The image config fields sregistry records. */
export interface ImageConfig {
  /** Architecture. */
  architecture?: string;
  /** OS. */
  os?: string;
  /** Variant. */
  variant?: string;
  /** Creation time. */
  created?: string;
  /** The runtime config. */
  config?: {
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Labels?: Record<string, string> | null;
    WorkingDir?: string;
    User?: string;
  };
}
