/**
 * The pieces docker://, nvidia://, aws:// and oras:// share: connecting to a registry with the
 * client's transport and credentials, pulling an image into the blob cache, turning it into a SIF
 * (or an OCI archive when no Singularity is installed), recording it, and searching.
 * @module
 */

import type { Context, PulledImage, PullTarget, RemoteRecord, SearchHit } from "../types.ts";
import { AuthError, FormatError, NetworkError, NotFoundError } from "../../core/errors.ts";
import { removeUri } from "../../core/names.ts";
import { environmentFromEnv } from "../../core/oci_env.ts";
import { detectImageFormat } from "../../core/image_format.ts";
import { pool } from "../../core/pool.ts";
import { hashFile } from "../../core/hasher.ts";
import { download } from "../../core/transfer/mod.ts";
import type { Metadata } from "../../db/types.ts";
import { bearerChallenge } from "../../core/auth/bearer_challenge.ts";
import type { Credentials } from "./auth.ts";
import { openBlobCache } from "./blob_cache.ts";
import { writeLayout, writeLayoutTar } from "./layout.ts";
import {
  asImageManifest,
  type Descriptor,
  formatPlatform,
  hostPlatform,
  type ImageConfig,
  isIndex,
  MediaType,
  parsePlatform,
  type Platform,
  selectPlatform,
} from "./manifest.ts";
import {
  catalogName,
  looksLikeRegistry,
  parseReference,
  type Reference,
  referenceTarget,
  registryScheme,
} from "./reference.ts";
import { createRegistry, type Registry } from "./registry.ts";

// One process runner for the whole program (core/exec.ts); re-exported for the OCI clients' tests.
export { run as defaultRunner, type Runner, which } from "../../core/exec.ts";
import type { Runner } from "../../core/exec.ts";

/** What differs between the OCI-based clients. */
export interface OciClientConfig {
  /** The scheme (`docker`). */
  scheme: string;
  /** Registry when the reference names none. */
  defaultRegistry: string;
  /** Namespace for one-component names on the default registry. */
  defaultNamespace?: string;
  /** NOHTTPS setting value (`SREGISTRY_<CLIENT>_NOHTTPS`). */
  noHttps?: string;
  /** Credentials for a host (lazily; undefined = anonymous). */
  credentials(host: string): Promise<Credentials | undefined>;
  /** Send Basic credentials without waiting for a challenge. */
  preemptiveBasic?: boolean;
  /** Names the settings that hold credentials, for error messages. */
  credentialHint: string;
}

/** Dependencies tests replace. */
export interface OciDeps {
  /** Runs singularity/apptainer. */
  run?: Runner;
  /** Finds singularity/apptainer (default: PATH lookup). */
  findBuilder?: () => string | undefined;
  /** Clock for token expiry. */
  now?: () => number;
}

/** A registry connection for one reference. */
export interface Connection {
  /** The parsed reference. */
  ref: Reference;
  /** The registry. */
  registry: Registry;
}

/** Parse a reference with the client's defaults and connect to its registry (no I/O yet). */
export function connect(
  ctx: Context,
  config: OciClientConfig,
  image: string,
  deps: OciDeps = {},
): Connection {
  const ref = parseReference(removeUri(image), {
    registry: config.defaultRegistry,
    namespace: config.defaultNamespace,
  });
  return { ref, registry: registryFor(ctx, config, ref.registry, deps) };
}

/** A registry endpoint for a host with the client's transport and credentials. */
export function registryFor(
  ctx: Context,
  config: OciClientConfig,
  host: string,
  deps: OciDeps = {},
): Registry {
  const scheme = registryScheme(host, config.noHttps);
  const auth = bearerChallenge({
    http: ctx.http,
    log: ctx.log,
    host,
    origin: new URL(`${scheme}://${host}`).origin,
    signal: ctx.signal,
    credentials: () => config.credentials(host),
    preemptiveBasic: config.preemptiveBasic,
    now: deps.now,
    credentialHint: config.credentialHint,
  });
  return createRegistry({
    http: ctx.http,
    log: ctx.log,
    host,
    scheme,
    auth,
    signal: ctx.signal,
    credentialHint: config.credentialHint,
  });
}

/** A resolved image: its manifest and the platform chosen. */
export interface ResolvedImage {
  /** Manifest bytes. */
  bytes: Uint8Array;
  /** Manifest digest. */
  digest: string;
  /** Manifest media type. */
  mediaType: string;
  /** Parsed manifest. */
  manifest: ReturnType<typeof asImageManifest>;
  /** The manifest URL. */
  url: string;
  /** The platform chosen from an index, if there was one. */
  platform?: Platform;
  /** The index digest, when the reference named an index. */
  indexDigest?: string;
}

/** Fetch a reference's manifest, choosing a platform from an index. */
export async function resolveImage(
  conn: Connection,
  platform: string | undefined,
): Promise<ResolvedImage> {
  const { ref, registry } = conn;
  const where = `${ref.registry}/${ref.repository}:${ref.tag ?? ref.digest}`;
  let fetched = await registry.getManifest(ref.repository, referenceTarget(ref));
  let chosen: Platform | undefined;
  let indexDigest: string | undefined;
  if (isIndex(fetched.mediaType, fetched.body)) {
    const want = platform ? parsePlatform(platform) : hostPlatform();
    const d: Descriptor = selectPlatform(fetched.body, want, where);
    chosen = d.platform ?? want;
    indexDigest = fetched.digest;
    fetched = await registry.getManifest(ref.repository, d.digest);
    if (isIndex(fetched.mediaType, fetched.body)) {
      throw new FormatError(
        `${where} has a nested index for ${formatPlatform(want)}; not supported`,
      );
    }
  }
  return {
    bytes: fetched.bytes,
    digest: fetched.digest,
    mediaType: fetched.mediaType,
    manifest: asImageManifest(fetched.body, `Manifest of ${where}`),
    url: fetched.url,
    platform: chosen,
    indexDigest,
  };
}

/**
 * Download one blob to `dest`, digest-verified, with one retry on a 401 after refreshing the token
 * (a token can expire during a long pull).
 */
export async function downloadBlob(
  ctx: Context,
  registry: Registry,
  repo: string,
  d: Descriptor,
  dest: string,
  label?: string,
): Promise<void> {
  const scope = registry.scope(repo);
  for (let attempt = 0;; attempt++) {
    try {
      await download({
        http: ctx.http,
        url: registry.blobUrl(repo, d.digest),
        dest,
        auth: registry.authorizer(scope),
        expectedDigest: d.digest,
        expectedSize: d.size,
        progress: ctx.progress,
        label: label ?? d.digest.slice(7, 19),
        signal: ctx.signal,
      });
      return;
    } catch (e) {
      if (e instanceof AuthError && attempt === 0) {
        registry.auth.invalidate(scope);
        ctx.log.verbose(`Blob ${d.digest} was refused (${e.message}); retrying with a new token`);
        continue;
      }
      if (e instanceof NotFoundError) {
        throw new NotFoundError(
          `Blob ${d.digest} of ${registry.host}/${repo} is missing from the registry; the image is incomplete`,
        );
      }
      throw e;
    }
  }
}

/**
 * The metadata recorded for a pulled image (readable by `inspect` and `labels` without Singularity),
 * in the catalog's one shape: labels in `labels` (and at the top level, as sregistry-cli stored
 * them), the environment as `environment` (Singularity's environment script).
 */
export function imageMetadata(img: ResolvedImage, config: ImageConfig): Metadata {
  const labels = config.config?.Labels ?? {};
  const size = img.manifest.layers.reduce((n, l) => n + l.size, 0) + img.manifest.config.size;
  return {
    ...labels,
    digest: img.digest,
    ...(img.indexDigest ? { indexDigest: img.indexDigest } : {}),
    mediaType: img.mediaType,
    labels,
    environment: environmentFromEnv(config.config?.Env ?? []),
    entrypoint: config.config?.Entrypoint ?? null,
    cmd: config.config?.Cmd ?? null,
    workingDir: config.config?.WorkingDir ?? null,
    architecture: config.architecture ?? img.platform?.architecture,
    os: config.os ?? img.platform?.os,
    ...(config.variant ? { variant: config.variant } : {}),
    created: config.created,
    layers: img.manifest.layers.map((l) => l.digest),
    size,
  };
}

/**
 * Whether a manifest is an ORAS SIF artifact (what `singularity push oras://` and `sregistry push
 * oras://` write): the SIF config media type, or a single layer of a SIF media type. Converting it
 * as a container image would write an OCI archive with an empty config.
 */
export function isSifArtifact(manifest: ReturnType<typeof asImageManifest>): boolean {
  if (manifest.config.mediaType === MediaType.sifConfig) return true;
  const layers = manifest.layers;
  return layers.length === 1 &&
    (layers[0].mediaType === MediaType.sifLayer || layers[0].mediaType === MediaType.sifLayerTypo);
}

/**
 * The catalog name a reference suggests: `[registry/]repository:tag`, and for a pull by digest that
 * digest as the version (`library/alpine:digest@sha256:<hex>`, tag `digest` unless one was given),
 * so it is never catalogued as `:latest`. When the digest named an index, the version is the chosen
 * platform's manifest digest, so the platforms of one index stay apart.
 */
export function suggestedName(
  ref: Reference,
  defaultRegistry: string,
  manifestDigest?: string,
): string {
  const prefix = ref.registry === defaultRegistry ? "" : `${ref.registry}/`;
  if (!ref.digest) return catalogName(ref, defaultRegistry);
  return `${prefix}${ref.repository}:${ref.tag ?? "digest"}@${manifestDigest ?? ref.digest}`;
}

function platformOf(img: ResolvedImage, config?: ImageConfig): string | undefined {
  if (img.platform) return formatPlatform(img.platform);
  if (config?.os && config.architecture) {
    return formatPlatform({
      os: config.os,
      architecture: config.architecture,
      ...(config.variant ? { variant: config.variant } : {}),
    });
  }
  return undefined;
}

async function readConfig(path: string, where: string): Promise<ImageConfig> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    throw new FormatError(`The config blob of ${where} is not JSON`);
  }
}

/** Store an ORAS SIF artifact's single layer as the SIF it is. */
async function pullSifArtifact(
  ctx: Context,
  conn: Connection,
  img: ResolvedImage,
  into: PullTarget,
  config: OciClientConfig,
): Promise<PulledImage> {
  const { ref, registry } = conn;
  const where = `${ref.registry}/${ref.repository}:${ref.tag ?? ref.digest}`;
  const layers = img.manifest.layers;
  if (layers.length !== 1) {
    throw new FormatError(
      `${where} is a SIF artifact with ${layers.length} layers, not one: pull it with oras://${where}`,
    );
  }
  const layer = layers[0];
  await downloadBlob(ctx, registry, ref.repository, layer, into.path, "sif");
  if ((await detectImageFormat(into.path)).format !== "sif") {
    throw new FormatError(
      `${where} is an ORAS SIF artifact but its layer is not a SIF file: pull it with oras://${where}`,
    );
  }
  if (config.scheme !== "oras") {
    ctx.log.warning(
      `${where} is an ORAS SIF artifact, not a container image: stored the SIF as it is (oras://${where} pulls it directly)`,
    );
  }
  return pulledSifLayer(into, img, layer, suggestedName(ref, config.defaultRegistry, img.digest));
}

/** A downloaded SIF artifact layer as the store step takes it (docker:// and oras:// alike). */
export function pulledSifLayer(
  into: PullTarget,
  img: ResolvedImage,
  layer: Descriptor,
  name: string,
): PulledImage {
  const title = layer.annotations?.["org.opencontainers.image.title"];
  return {
    file: into.path,
    format: "sif",
    url: img.url,
    digest: layer.digest,
    size: layer.size,
    suggestedName: name,
    metadata: {
      digest: img.digest,
      mediaType: img.mediaType,
      layerDigest: layer.digest,
      layerMediaType: layer.mediaType,
      ...(title ? { title } : {}),
    },
  };
}

/**
 * Pull an image (docker://, nvidia://, aws://) into `into.path`: blobs into the cache, then a SIF
 * when Singularity/Apptainer is installed, else an OCI archive. An ORAS SIF artifact is stored as
 * its SIF. The core names and stores the file.
 */
export async function pullImage(
  ctx: Context,
  config: OciClientConfig,
  image: string,
  into: PullTarget,
  deps: OciDeps = {},
): Promise<PulledImage> {
  const conn = connect(ctx, config, image, deps);
  const { ref, registry } = conn;
  const img = await resolveImage(conn, into.platform);
  ctx.log.verbose(
    `${ref.registry}/${ref.repository}: manifest ${img.digest}${
      img.platform ? ` for ${formatPlatform(img.platform)}` : ""
    }, ${img.manifest.layers.length} layers`,
  );
  if (isSifArtifact(img.manifest)) return await pullSifArtifact(ctx, conn, img, into, config);
  const cache = openBlobCache(ctx.globals.blobCacheDir, { log: ctx.log });
  const blobs = [img.manifest.config, ...img.manifest.layers];
  const started = performance.now();
  let fetchedBytes = 0;
  await pool(blobs, ctx.globals.workers, async (d, i) => {
    const r = await cache.ensure(
      d.digest,
      d.size,
      (dest) =>
        downloadBlob(ctx, registry, ref.repository, d, dest, i === 0 ? "config" : `layer ${i}`),
      ctx.signal,
    );
    if (r.source !== "hit") fetchedBytes += d.size;
  }, ctx.signal);
  const secs = (performance.now() - started) / 1000;
  ctx.log.verbose(
    `Fetched ${fetchedBytes} bytes in ${secs.toFixed(2)} s (${blobs.length} blobs, rest cached)`,
  );
  const where = `${ref.registry}/${ref.repository}`;
  const cfg = await readConfig(cache.path(img.manifest.config.digest), where);
  const metadata = imageMetadata(img, cfg);
  const layoutImage = {
    manifest: img.bytes,
    manifestDigest: img.digest,
    mediaType: img.mediaType,
    blobs: blobs.map((d) => ({ digest: d.digest, path: cache.path(d.digest), size: d.size })),
    refName: ref.tag ?? "latest",
    platform: img.platform,
  };
  const builder = (deps.findBuilder ?? (() => ctx.exec.which(["singularity", "apptainer"])))();
  let archive: { digest: string; size: number } | undefined;
  if (builder) {
    const layoutDir = `${into.path}.layout`;
    try {
      await writeLayout(layoutDir, layoutImage);
      await Deno.remove(into.path).catch(() => {});
      ctx.log.info(`Building ${where} with ${builder}`);
      const r = await (deps.run ?? ctx.exec.run)(builder, [
        "build",
        "--force",
        into.path,
        `oci:${layoutDir}:${layoutImage.refName}`,
      ]);
      if (r.code !== 0) {
        const why = (r.stderr.trim() || r.stdout.trim()).split("\n").at(-1) ?? "";
        throw new NetworkError(`${builder} build failed (exit ${r.code}): ${why}`);
      }
    } finally {
      await Deno.remove(layoutDir, { recursive: true }).catch(() => {});
    }
  } else {
    // No singularity or apptainer: an OCI archive (the store step says how to make it a SIF).
    archive = await writeLayoutTar(into.path, layoutImage);
  }
  const { digest, size } = archive ?? await hashFile(into.path);
  return {
    file: into.path,
    format: builder ? "sif" : "oci-archive",
    url: img.url,
    digest,
    size,
    metadata,
    suggestedName: suggestedName(ref, config.defaultRegistry, img.digest),
    platform: platformOf(img, cfg),
  };
}

/** What a registry says about an image without pulling its layers (`sregistry record`). */
export async function recordImage(
  ctx: Context,
  config: OciClientConfig,
  image: string,
  deps: OciDeps = {},
  platform?: string,
): Promise<RemoteRecord> {
  const conn = connect(ctx, config, image, deps);
  const { ref, registry } = conn;
  const img = await resolveImage(conn, platform);
  const name = suggestedName(ref, config.defaultRegistry, img.digest);
  if (isSifArtifact(img.manifest)) {
    const layer = img.manifest.layers[0];
    return {
      url: img.url,
      suggestedName: name,
      format: "sif",
      ...(layer ? { digest: layer.digest, size: layer.size } : {}),
      metadata: { digest: img.digest, mediaType: img.mediaType },
    };
  }
  const cache = openBlobCache(ctx.globals.blobCacheDir, { log: ctx.log });
  const d = img.manifest.config;
  await cache.ensure(
    d.digest,
    d.size,
    (dest) => downloadBlob(ctx, registry, ref.repository, d, dest, "config"),
    ctx.signal,
  );
  const cfg = await readConfig(cache.path(d.digest), `${ref.registry}/${ref.repository}`);
  return {
    url: img.url,
    suggestedName: name,
    metadata: imageMetadata(img, cfg),
    platform: platformOf(img, cfg),
  };
}

/** Search a registry: `host` lists its catalog, `host/repo` a repository's tags. */
export async function searchRegistry(
  ctx: Context,
  config: OciClientConfig,
  query: string | undefined,
  deps: OciDeps = {},
): Promise<SearchHit[]> {
  const q = removeUri(query ?? "").replace(/\/+$/, "");
  const parts = q ? q.split("/") : [];
  const host = parts.length && looksLikeRegistry(parts[0])
    ? parts.shift()!
    : config.defaultRegistry;
  const rest = parts.join("/");
  const registry = registryFor(ctx, config, host, deps);
  const hits: SearchHit[] = [];
  if (rest && !rest.includes("*")) {
    const ref = parseReference(`${host}/${rest}`, {
      registry: config.defaultRegistry,
      namespace: config.defaultNamespace,
    });
    try {
      const tags = await registry.tags(ref.repository);
      for (const tag of tags.sort()) {
        hits.push({
          uri: `${config.scheme}://${host}/${ref.repository}:${tag}`,
          details: { registry: host, repository: ref.repository, tag },
        });
      }
      return hits;
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }
  const repos = await registry.catalog();
  const needle = rest.replaceAll("*", "").toLowerCase();
  for (const repo of repos.sort()) {
    if (needle && !repo.toLowerCase().includes(needle)) continue;
    hits.push({
      uri: `${config.scheme}://${host}/${repo}`,
      details: { registry: host, repository: repo },
    });
  }
  if (rest && hits.length === 0) {
    throw new NotFoundError(`No repository matching ${JSON.stringify(rest)} in ${host}`);
  }
  return hits;
}

/** Credentials from `SREGISTRY_<PREFIX>_USERNAME`/`_PASSWORD` style settings, first pair set wins. */
export function credentialsFromSettings(
  get: (name: string) => string | undefined,
  pairs: [string, string][],
): Credentials | undefined {
  for (const [u, p] of pairs) {
    const username = get(u);
    const password = get(p);
    if (username && password) return { username, password };
    if (username || password) {
      throw new AuthError(
        `${username ? u : p} is set but ${
          username ? p : u
        } is not: set both, or neither for anonymous access`,
      );
    }
  }
  return undefined;
}
