/**
 * The pieces docker://, nvidia://, aws:// and oras:// share: connecting to a registry with the
 * client's transport and credentials, pulling an image into the blob cache, turning it into a SIF
 * (or an OCI archive when no Singularity is installed), recording it, and searching.
 * @module
 */

import { basename, join, resolve } from "node:path";
import type { Context, PullOptions, PullResult, SearchHit } from "../types.ts";
import {
  AuthError,
  FormatError,
  NetworkError,
  NotFoundError,
  UsageError,
} from "../../core/errors.ts";
import { parseImageName, removeUri, storagePath } from "../../core/names.ts";
import { pool } from "../../core/pool.ts";
import { hashFile } from "../../core/hasher.ts";
import { download } from "../../core/transfer.ts";
import type { Metadata } from "../../db/types.ts";
import { type Authenticator, createAuthenticator, type Credentials } from "./auth.ts";
import { openBlobCache } from "./blob_cache.ts";
import { writeLayout, writeLayoutTar } from "./layout.ts";
import {
  asImageManifest,
  type Descriptor,
  formatPlatform,
  hostPlatform,
  type ImageConfig,
  isIndex,
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

/** Runs an external program; the default is Deno.Command with inherited-nothing, captured output. */
export type Runner = (
  command: string,
  args: string[],
) => Promise<{ code: number; stdout: string; stderr: string }>;

/** The default {@link Runner} (no time limit: a SIF build can take long). */
export const defaultRunner: Runner = async (command, args) => {
  const out = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

/** The first of `names` that is an executable file on PATH. */
export function which(names: string[], path: string | undefined): string | undefined {
  for (const name of names) {
    for (const dir of (path ?? "").split(":")) {
      if (!dir) continue;
      try {
        const st = Deno.statSync(join(dir, name));
        if (st.isFile && ((st.mode ?? 0o111) & 0o111)) return name;
      } catch {
        // not in this folder
      }
    }
  }
  return undefined;
}

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
  const auth: Authenticator = createAuthenticator({
    http: ctx.http,
    log: ctx.log,
    host,
    credentials: () => config.credentials(host),
    preemptiveBasic: config.preemptiveBasic,
    now: deps.now,
    credentialHint: config.credentialHint,
  });
  return createRegistry({
    http: ctx.http,
    log: ctx.log,
    host,
    scheme: registryScheme(host, config.noHttps),
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
    const headers = await registry.authHeaders(scope);
    try {
      await download(ctx.http, registry.blobUrl(repo, d.digest), dest, {
        headers,
        expectedDigest: d.digest,
        expectedSize: d.size,
        progress: ctx.progress,
        label: label ?? d.digest.slice(7, 19),
        signal: ctx.signal,
        updateToken: () => Promise.resolve(false),
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

/** The metadata recorded for a pulled image (readable by `inspect` and `labels` without Singularity). */
export function imageMetadata(img: ResolvedImage, config: ImageConfig): Metadata {
  const labels = config.config?.Labels ?? {};
  const size = img.manifest.layers.reduce((n, l) => n + l.size, 0) + img.manifest.config.size;
  return {
    ...labels,
    digest: img.digest,
    ...(img.indexDigest ? { indexDigest: img.indexDigest } : {}),
    mediaType: img.mediaType,
    labels,
    env: config.config?.Env ?? [],
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

/** Where a pull ends up when it is not stored in the catalog (`--no-cache` or no database). */
function localTarget(options: PullOptions, names: { image: string; tag: string }, ext: string) {
  const file = options.file ?? options.name;
  if (file) return resolve(file);
  return resolve(`${names.image}_${names.tag || "latest"}.${ext}`);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Pull an image (docker://, nvidia://, aws://): blobs into the cache, then a SIF or OCI archive. */
export async function pullImage(
  ctx: Context,
  config: OciClientConfig,
  image: string,
  options: PullOptions,
  deps: OciDeps = {},
): Promise<PullResult> {
  const conn = connect(ctx, config, image, deps);
  const { ref, registry } = conn;
  const img = await resolveImage(conn, options.platform);
  ctx.log.verbose(
    `${ref.registry}/${ref.repository}: manifest ${img.digest}${
      img.platform ? ` for ${formatPlatform(img.platform)}` : ""
    }, ${img.manifest.layers.length} layers`,
  );
  const cache = openBlobCache(ctx.settings.blobCacheDir, { log: ctx.log });
  const blobs = [img.manifest.config, ...img.manifest.layers];
  const started = performance.now();
  let fetchedBytes = 0;
  await pool(blobs, ctx.settings.workers, async (d, i) => {
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
  let cfg: ImageConfig;
  try {
    cfg = JSON.parse(await Deno.readTextFile(cache.path(img.manifest.config.digest)));
  } catch {
    throw new FormatError(`The config blob of ${ref.registry}/${ref.repository} is not JSON`);
  }
  const metadata = imageMetadata(img, cfg);
  const layoutImage = {
    manifest: img.bytes,
    manifestDigest: img.digest,
    mediaType: img.mediaType,
    blobs: blobs.map((d) => ({ digest: d.digest, path: cache.path(d.digest), size: d.size })),
    refName: ref.tag ?? "latest",
    platform: img.platform,
  };
  const uri = options.name && !options.noCache
    ? options.name
    : catalogName(ref, config.defaultRegistry);
  const names = parseImageName(removeUri(uri));
  const builder =
    (deps.findBuilder ?? (() => which(["singularity", "apptainer"], ctx.env.get("PATH"))))();
  const ext = builder ? "sif" : "oci.tar";
  const catalog = options.noCache ? undefined : ctx.catalog;
  const final = catalog ? undefined : localTarget(options, names, ext);
  if (final && exists(final) && !options.force) {
    throw new UsageError(`${JSON.stringify(final)} already exists: use --force to replace it`);
  }
  const staging = catalog
    ? catalog.stagingPath(names).replace(/\.sif$/, `.${ext}`)
    : `${final}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    let archive: { digest: string; size: number } | undefined;
    if (builder) {
      const layoutDir = `${staging}.layout`;
      try {
        await writeLayout(layoutDir, layoutImage);
        await Deno.remove(staging).catch(() => {});
        ctx.log.info(`Building ${basename(final ?? names.uri)} with ${builder}`);
        const r = await (deps.run ?? defaultRunner)(builder, [
          "build",
          "--force",
          staging,
          `oci:${layoutDir}:${layoutImage.refName}`,
        ]);
        if (r.code !== 0) {
          const why = (r.stderr.trim() || r.stdout.trim()).split("\n").at(-1) ?? "";
          throw new NetworkError(
            `${builder} build failed (exit ${r.code}): ${why}; the OCI layout was ${layoutDir}`,
          );
        }
      } finally {
        await Deno.remove(layoutDir, { recursive: true }).catch(() => {});
      }
    } else {
      archive = await writeLayoutTar(staging, layoutImage);
    }
    const { digest: fileDigest, size } = archive ?? await hashFile(staging);
    if (!catalog) {
      await Deno.rename(staging, final!);
      if (!builder) hint(ctx, final!);
      return {
        path: final!,
        url: img.url,
        digest: fileDigest,
        size,
        details: metadata,
      };
    }
    const sha = fileDigest.replace(/^sha256:/, "");
    const dest = builder ? undefined : storagePath(
      parseImageName(names.uri, { version: names.version ?? sha }),
      catalog.storage,
      ext,
    );
    const { container } = await catalog.add({
      file: staging,
      uri: names.uri,
      url: img.url,
      client: ctx.name,
      metadata,
      sha256: sha,
      force: options.force,
      ...(dest ? { dest } : {}),
    });
    if (!builder) hint(ctx, container.image ?? dest!);
    return {
      path: container.image ?? dest!,
      container,
      url: img.url,
      digest: fileDigest,
      size,
      details: metadata,
    };
  } finally {
    await Deno.remove(staging).catch(() => {});
  }
}

function hint(ctx: Context, path: string) {
  ctx.log.info(
    `No singularity or apptainer on PATH: kept the image as an OCI archive. To get a SIF, run: singularity build image.sif oci-archive:${path}`,
  );
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
