/**
 * library://: the Sylabs library API (cloud.sylabs.io, Singularity Registry Server). Endpoints are
 * discovered from `/assets/config/config.prod.json`; every library call carries the bearer token.
 * pull and push use the OCI redirect (`v1/oci-redirect`) when the server offers it, moving the SIF
 * through its OCI registry with clients/oci; otherwise pull downloads the legacy imagefile and push
 * uses the library's v2 upload (presigned, multipart in parallel parts, resumable; see
 * `_legacy_push.ts`). The architecture pushed is the SIF's own. delete removes an image record.
 * @module
 */

import { basename, join, resolve } from "node:path";
import type {
  Client,
  ClientFactory,
  Context,
  PulledImage,
  PullTarget,
  PushOptions,
  RemoteRecord,
  SearchHit,
} from "../types.ts";
import {
  ConfigError,
  FormatError,
  NetworkError,
  NotFoundError,
  UsageError,
} from "../../core/errors.ts";
import { isLoopback } from "../../core/http.ts";
import { parseBoolean } from "../../core/settings.ts";
import type { Authorizer } from "../../core/auth/types.ts";
import type { BearerChallengeAuthorizer } from "../../core/auth/bearer_challenge.ts";
import { download, MAX_STREAMS } from "../../core/transfer/mod.ts";
import { hashFile } from "../../core/hasher.ts";
import { hostPlatform } from "../../core/platform.ts";
import { type Connection, downloadBlob, pulledSifLayer, resolveImage } from "../oci/client.ts";
import { MediaType, parsePlatform } from "../oci/manifest.ts";
import { registryScheme } from "../oci/reference.ts";
import { createRegistry, sha256Digest } from "../oci/registry.ts";
import { type LibraryApi, libraryApi as openApi } from "./_api.ts";
import { legacyPush } from "./_legacy_push.ts";
import { type LibraryRef, parseLibraryRef, refPath } from "./reference.ts";
import { openSif, SifDataType, SifFsType } from "../../core/sif.ts";

/** The default remote. */
export const DEFAULT_LIBRARY = "https://cloud.sylabs.io";

const MiB = 1024 * 1024;
/** Files larger than this use the multipart upload (the reference client's 64 MiB). */
export const MULTIPART_THRESHOLD = 64 * MiB;
/** The most bytes of multipart parts held in memory at once. */
export const PART_MEMORY = 1024 * MiB;

/** What a SIF says about itself: its primary architecture, signatures, encryption. */
export interface SifFacts {
  /** Go architecture name, undefined when the header and partition do not say. */
  arch?: string;
  signed: boolean;
  encrypted: boolean;
}

/** Read a SIF's own architecture (header, else primary partition) with the native reader. */
export async function sifFacts(file: string): Promise<SifFacts | undefined> {
  try {
    using img = await openSif(file);
    const primary = img.primaryPartition();
    const known = (a: string | undefined) => a && a !== "unknown" ? a : undefined;
    return {
      arch: known(img.header.arch) ?? known(primary?.partition?.arch),
      signed: img.find(SifDataType.signature).length > 0,
      encrypted: primary?.partition?.fsType === SifFsType.encryptedSquashfs,
    };
  } catch {
    return undefined;
  }
}

interface Redirect {
  token?: string;
  url: string;
  name: string;
}

interface ImageRecord {
  id?: string;
  hash?: string;
  size?: number;
  arch?: string;
  uploaded?: boolean;
  signed?: boolean;
  description?: string;
}

/** A static bearer token for the registry the OCI redirect names, in the registry's shape. */
function staticRegistryAuth(token: string | undefined, origin: string): BearerChallengeAuthorizer {
  const one: Authorizer = {
    origin,
    authorize(req) {
      if (token) req.headers.set("authorization", `Bearer ${token}`);
    },
  };
  return {
    ...one,
    scoped: () => one,
    invalidate() {},
    get authenticated() {
      return token !== undefined;
    },
  };
}

/** Build a library client. */
export function createLibraryClient(ctx: Context): Client {
  const get = (name: string) => ctx.clientSettings.get(name);
  const token = get("SREGISTRY_LIBRARY_TOKEN");
  if (token) ctx.log.addSecret(token);
  const apis = new Map<string, Promise<string>>();

  function remoteFor(ref: LibraryRef): string {
    if (ref.host) {
      return `${registryScheme(ref.host, get("SREGISTRY_LIBRARY_NOHTTPS"))}://${ref.host}`;
    }
    const base = (get("SREGISTRY_LIBRARY_BASE") || DEFAULT_LIBRARY).trim().replace(/\/+$/, "");
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      throw new UsageError(
        `SREGISTRY_LIBRARY_BASE ${JSON.stringify(base)} is not a URL: use e.g. ${DEFAULT_LIBRARY}`,
      );
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new UsageError(
        `SREGISTRY_LIBRARY_BASE ${
          JSON.stringify(base)
        } is not an http(s) URL: use e.g. ${DEFAULT_LIBRARY}`,
      );
    }
    // The token goes with every library call: plain http only to loopback, or when asked for.
    const noHttps = get("SREGISTRY_LIBRARY_NOHTTPS");
    if (url.protocol === "http:" && !isLoopback(url.host) && !(noHttps && parseBoolean(noHttps))) {
      throw new ConfigError(
        `SREGISTRY_LIBRARY_BASE ${
          JSON.stringify(base)
        } must be https (the token would travel in clear text): plain http only for a loopback host, or with SREGISTRY_LIBRARY_NOHTTPS=true (--plain-http)`,
      );
    }
    return url.href.replace(/\/+$/, "");
  }

  /** The library API base, from the remote's config.prod.json (the remote itself when it has none). */
  function libraryApi(remote: string): Promise<string> {
    let p = apis.get(remote);
    if (!p) {
      p = (async () => {
        const res = await ctx.http.request(`${remote}/assets/config/config.prod.json`, {
          signal: ctx.signal,
          accept: (s) => s < 300 || s === 404,
        });
        if (res.status === 404) {
          await res.body?.cancel();
          ctx.log.verbose(`${remote} has no config.prod.json; using it as the library API`);
          return remote;
        }
        const text = await res.text();
        let cfg: unknown;
        try {
          cfg = JSON.parse(text);
        } catch {
          cfg = undefined;
        }
        if (!cfg || typeof cfg !== "object" || Array.isArray(cfg)) {
          throw new NetworkError(
            `${remote}/assets/config/config.prod.json is not the library's endpoint map (${
              JSON.stringify(text.slice(0, 40))
            }); check SREGISTRY_LIBRARY_BASE or the host in the URI`,
          );
        }
        const uri = (cfg as Record<string, { uri?: unknown } | undefined>).libraryAPI?.uri;
        if (typeof uri !== "string" || uri === "") return remote;
        try {
          const api = new URL(uri, remote);
          const noHttps = get("SREGISTRY_LIBRARY_NOHTTPS");
          if (
            api.protocol !== "https:" && !(api.protocol === "http:" && isLoopback(api.host)) &&
            !(noHttps && parseBoolean(noHttps))
          ) {
            throw new ConfigError(
              `${remote}/assets/config/config.prod.json names the library API ${
                JSON.stringify(uri)
              }, which is not https: the token is not sent in clear text (SREGISTRY_LIBRARY_NOHTTPS=true allows it)`,
            );
          }
          return api.href.replace(/\/+$/, "");
        } catch (e) {
          if (e instanceof ConfigError) throw e;
          throw new NetworkError(
            `${remote}/assets/config/config.prod.json names a library API that is not a URL (${
              JSON.stringify(uri)
            })`,
          );
        }
      })();
      p.catch(() => apis.delete(remote));
      apis.set(remote, p);
    }
    return p;
  }

  const apiCache = new Map<string, LibraryApi>();
  function apiFor(base: string): LibraryApi {
    let a = apiCache.get(base);
    if (!a) apiCache.set(base, a = openApi(ctx, base, token));
    return a;
  }

  function auth(base: string): Authorizer {
    return apiFor(base).auth;
  }

  function api<T>(base: string, path: string, init: { method?: string; body?: unknown } = {}) {
    return apiFor(base).call<T>(path, init);
  }

  function positive(name: string, fallback: number, unit = 1): number {
    const raw = get(name);
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) {
      throw new UsageError(`${name}=${JSON.stringify(raw)} is not a whole number above 0`);
    }
    return n * unit;
  }

  function archOf(platform: string | undefined): string {
    return parsePlatform(platform ?? hostPlatform()).architecture;
  }

  async function ociRedirect(
    lib: string,
    ref: LibraryRef,
    push: boolean,
  ): Promise<Redirect | undefined> {
    const q = new URLSearchParams({
      namespace: refPath(ref),
      mapped: "1",
      accessTypes: push ? "pull,push" : "pull",
    });
    try {
      const r = await api<Redirect>(lib, `v1/oci-redirect?${q}`);
      if (!r?.url) return undefined;
      if (r.token) ctx.log.addSecret(r.token);
      return { ...r, name: r.name || refPath(ref) };
    } catch (e) {
      if (e instanceof NotFoundError) {
        ctx.log.verbose(`${lib} offers no OCI redirect; using the library's own transfer`);
        return undefined;
      }
      throw e;
    }
  }

  function ociConnection(r: Redirect, tag: string): Connection {
    const u = new URL(r.url);
    const scheme = u.protocol === "http:" ? "http" : "https";
    const registry = createRegistry({
      http: ctx.http,
      log: ctx.log,
      host: u.host,
      scheme,
      auth: staticRegistryAuth(r.token, u.origin),
      signal: ctx.signal,
      credentialHint: "SREGISTRY_LIBRARY_TOKEN",
    });
    return {
      ref: { registry: u.host, repository: r.name, tag, explicitRegistry: true },
      registry,
    };
  }

  function name(ref: LibraryRef, tag = ref.tags[0]): string {
    return `${ref.host ? `${ref.host}/` : ""}${refPath(ref)}:${tag}`;
  }

  async function imageRecord(lib: string, ref: LibraryRef, arch: string): Promise<ImageRecord> {
    return await api<ImageRecord>(lib, `v1/images/${refPath(ref)}:${ref.tags[0]}?arch=${arch}`);
  }

  /**
   * The architecture record and delete use: `--platform`/`--arch` when given; else this machine's
   * when the tag has an image for it, else the only architecture the container's arch tags give it.
   */
  async function archForTag(lib: string, ref: LibraryRef, platform?: string): Promise<string> {
    if (platform) return archOf(platform);
    const host = archOf(undefined);
    const tag = ref.tags[0];
    if (tag.startsWith("sha256.")) return host;
    let archTags: Record<string, Record<string, string> | undefined> | undefined;
    try {
      archTags = (await api<{ archTags?: typeof archTags }>(lib, `v1/containers/${refPath(ref)}`))
        ?.archTags;
    } catch (e) {
      if (e instanceof NotFoundError) return host;
      throw e;
    }
    const archs = Object.entries(archTags ?? {})
      .filter(([, tags]) => tags && Object.hasOwn(tags, tag))
      .map(([a]) => a);
    if (archs.length === 0 || archs.includes(host)) return host;
    if (archs.length === 1) {
      ctx.log.info(
        `library://${name(ref)} is ${archs[0]} only (this machine is ${host}): using it`,
      );
      return archs[0];
    }
    throw new NotFoundError(
      `library://${name(ref)} has no ${host} image, only ${
        archs.join(", ")
      }: choose one with --arch (or --platform linux/<arch>), or name the image by its hash (:sha256.<hex>, see search)`,
    );
  }

  async function pull(image: string, into: PullTarget): Promise<PulledImage> {
    const ref = parseLibraryRef(image);
    const lib = await libraryApi(remoteFor(ref));
    const arch = archOf(into.platform);
    const tag = ref.tags[0];
    const redirect = await ociRedirect(lib, ref, false);
    if (redirect) {
      const conn = ociConnection(redirect, tag);
      const img = await resolveImage(conn, `linux/${arch}`);
      const where = `library://${name(ref)}`;
      if (img.manifest.config.mediaType !== MediaType.sifConfig) {
        throw new FormatError(
          `${where} is not a SIF image: its config is ${img.manifest.config.mediaType}, not ${MediaType.sifConfig}`,
        );
      }
      if (img.manifest.layers.length !== 1) {
        throw new FormatError(
          `${where} has ${img.manifest.layers.length} layers; a library image has exactly one`,
        );
      }
      const layer = img.manifest.layers[0];
      await downloadBlob(ctx, conn.registry, redirect.name, layer, into.path, ref.container);
      const out = pulledSifLayer(into, img, layer, name(ref));
      return { ...out, url: `library://${name(ref)}`, platform: `linux/${arch}` };
    }
    const rec = await imageRecord(lib, ref, arch);
    const hex = rec.hash?.startsWith("sha256.") ? rec.hash.slice(7) : undefined;
    await download({
      http: ctx.http,
      url: `${lib}/v1/imagefile/${refPath(ref)}:${tag}?arch=${arch}`,
      dest: into.resumable,
      // Bound to the library's origin: the presigned URL it redirects to gets no Authorization.
      auth: auth(lib),
      // Ranged parallel streams for a large file (SREGISTRY_WORKERS caps them), when the object
      // store advertises ranges.
      parallel: Math.min(ctx.globals.workers, MAX_STREAMS),
      expectedDigest: hex ? `sha256:${hex}` : undefined,
      expectedSize: rec.size,
      progress: ctx.progress,
      label: ref.container,
      signal: ctx.signal,
    });
    await Deno.rename(into.resumable, into.path);
    const got = hex ? { digest: `sha256:${hex}`, size: rec.size } : await hashFile(into.path);
    return {
      file: into.path,
      format: "sif",
      digest: got.digest,
      size: got.size ?? (await Deno.stat(into.path)).size,
      url: `library://${name(ref)}`,
      suggestedName: name(ref),
      platform: `linux/${arch}`,
      metadata: { hash: rec.hash, arch: rec.arch, signed: rec.signed },
    };
  }

  return {
    name: "library",
    pull,
    async push(path, options: PushOptions) {
      const file = resolve(path);
      try {
        if (!(await Deno.stat(file)).isFile) throw new Error();
      } catch {
        throw new NotFoundError(`Cannot find ${JSON.stringify(path)}: check the path`);
      }
      const ref = parseLibraryRef(options.name);
      if (options.tag) ref.tags = options.tag.split(",");
      const lib = await libraryApi(remoteFor(ref));
      // The image's own architecture, unless the caller names one (--platform/--arch).
      const facts = await sifFacts(file);
      const wanted = options.platform;
      const arch = wanted ? archOf(wanted) : facts?.arch ?? archOf(undefined);
      if (!wanted && !facts?.arch) {
        ctx.log.verbose(`${basename(file)} names no architecture; pushing it as ${arch}`);
      }
      const redirect = await ociRedirect(lib, ref, true);
      if (!redirect) {
        const r = await legacyPush({
          ctx,
          api: apiFor(lib),
          ref,
          file,
          arch,
          threshold: positive("SREGISTRY_LIBRARY_MULTIPART_THRESHOLD", MULTIPART_THRESHOLD, MiB),
          concurrency: positive("SREGISTRY_LIBRARY_CONCURRENCY", 4),
          memory: PART_MEMORY,
          label: basename(file),
        });
        return { url: `library://${name(ref)}`, ...r };
      }
      const conn = ociConnection(redirect, ref.tags[0]);
      const repo = redirect.name;
      const layer = await hashFile(file);
      const r = await conn.registry.uploadBlob(repo, file, layer, {
        progress: ctx.progress,
        label: basename(file),
      });
      if (r.skipped) {
        ctx.log.info(`The library already has ${layer.digest}; not uploading it again`);
      }
      const config = JSON.stringify({
        architecture: arch,
        os: "linux",
        rootfs: layer.digest,
        signed: facts?.signed ?? false,
        encrypted: facts?.encrypted ?? false,
      });
      const cfgPath = join(ctx.globals.tmpDir, `sregistry-library-${crypto.randomUUID()}.json`);
      await Deno.mkdir(ctx.globals.tmpDir, { recursive: true });
      await Deno.writeTextFile(cfgPath, config);
      try {
        const cfg = { digest: sha256Digest(config), size: new TextEncoder().encode(config).length };
        await conn.registry.uploadBlob(repo, cfgPath, cfg);
        const manifest = new TextEncoder().encode(JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.sifConfig, ...cfg },
          layers: [{
            mediaType: MediaType.sifLayer,
            digest: layer.digest,
            size: layer.size,
            annotations: { "org.opencontainers.image.title": basename(file) },
          }],
        }));
        const hashRef = `sha256.${layer.digest.slice(7)}`;
        const mdigest = await conn.registry.putManifest(
          repo,
          hashRef,
          manifest,
          MediaType.ociManifest,
        );
        const index = new TextEncoder().encode(JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociIndex,
          manifests: [{
            mediaType: MediaType.ociManifest,
            digest: mdigest,
            size: manifest.length,
            platform: { architecture: arch, os: "linux" },
          }],
        }));
        for (const tag of ref.tags) {
          await conn.registry.putManifest(repo, tag, index, MediaType.ociIndex);
        }
      } finally {
        await Deno.remove(cfgPath).catch(() => {});
      }
      return { url: `library://${name(ref)}`, digest: layer.digest, size: layer.size };
    },
    async search(query, options) {
      const value = query ? query.replace(/^library:\/\//, "") : "";
      if (value.length < 3) {
        throw new UsageError(
          `Search ${JSON.stringify(value)} is too short: the library needs at least 3 characters`,
        );
      }
      // --endpoint: another remote than SREGISTRY_LIBRARY_BASE (a URL, or a host).
      const endpoint = options?.endpoint?.trim().replace(/\/+$/, "");
      const lib = await libraryApi(
        endpoint && /^https?:\/\//i.test(endpoint) ? endpoint : remoteFor({
          host: endpoint || undefined,
          entity: "",
          collection: "",
          container: "",
          tags: [],
        }),
      );
      const found = await api<Record<string, Record<string, unknown>[] | undefined>>(
        lib,
        `v1/search?${new URLSearchParams({ value })}`,
      );
      const hits: SearchHit[] = [];
      for (const kind of ["entity", "collection", "container", "image"]) {
        for (const item of found?.[kind] ?? []) {
          const s = (k: string) => typeof item[k] === "string" ? item[k] as string : undefined;
          // An image is named by its hash as a tag (`:sha256.<hex>`), which pull accepts.
          const parts = kind === "entity"
            ? [s("name")]
            : kind === "collection"
            ? [s("entityName"), s("name")]
            : kind === "container"
            ? [s("entityName"), s("collectionName"), s("name")]
            : [s("entityName"), s("collectionName"), s("containerName")];
          if (parts.some((p) => !p) || (kind === "image" && !s("hash"))) continue;
          const path = `${parts.join("/")}${kind === "image" ? `:${s("hash")}` : ""}`;
          hits.push({
            uri: `library://${path}`,
            details: { kind, description: s("description"), arch: s("arch") },
          });
        }
      }
      return hits;
    },
    async delete(image, options) {
      const ref = parseLibraryRef(image);
      if (ref.tags.length !== 1) {
        throw new UsageError(`Delete one tag at a time, not ${JSON.stringify(ref.tags.join(","))}`);
      }
      const lib = await libraryApi(remoteFor(ref));
      const arch = await archForTag(lib, ref, options.platform);
      const rec = await imageRecord(lib, ref, arch);
      // Deleting the image removes every tag that names it: say which before they go.
      const others: string[] = [];
      try {
        const c = await api<{
          imageTags?: Record<string, string>;
          archTags?: Record<string, Record<string, string>>;
        }>(lib, `v1/containers/${refPath(ref)}`);
        for (const map of [c?.imageTags ?? {}, c?.archTags?.[arch] ?? {}]) {
          for (const [t, id] of Object.entries(map)) {
            if (id === rec.id && t !== ref.tags[0] && !others.includes(t)) others.push(t);
          }
        }
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e;
      }
      const uris = [ref.tags[0], ...others].map((t) => `library://${name(ref, t)}`);
      if (others.length) {
        const list = uris.slice(1).join(", ");
        if (options.force) ctx.log.warning(`Also deleting ${list}: they name the same image`);
        else if (
          !(await ctx.prompt.confirm(`${list} name the same image and go with it. Delete them?`, {
            default: false,
          }))
        ) return { deleted: [] };
      }
      await api(lib, `v1/images/${refPath(ref)}:${ref.tags[0]}?arch=${encodeURIComponent(arch)}`, {
        method: "DELETE",
      });
      return { deleted: uris };
    },
    async record(image, options): Promise<RemoteRecord> {
      const ref = parseLibraryRef(image);
      const lib = await libraryApi(remoteFor(ref));
      const arch = await archForTag(lib, ref, options?.platform);
      const rec = await imageRecord(lib, ref, arch);
      const hex = rec.hash?.startsWith("sha256.") ? rec.hash.slice(7) : undefined;
      return {
        url: `library://${name(ref)}`,
        digest: hex ? `sha256:${hex}` : undefined,
        size: rec.size,
        suggestedName: name(ref),
        platform: `linux/${rec.arch ?? arch}`,
        format: "sif",
        metadata: { hash: rec.hash, arch: rec.arch, signed: rec.signed },
      };
    },
  };
}

/** The library:// client. */
export const libraryFactory: ClientFactory = {
  scheme: "library",
  description: "The Sylabs library API (cloud.sylabs.io, Singularity Registry Server)",
  settings: [
    {
      name: "SREGISTRY_LIBRARY_BASE",
      description: "Default remote (its /assets/config/config.prod.json names the library API)",
      default: DEFAULT_LIBRARY,
    },
    { name: "SREGISTRY_LIBRARY_TOKEN", description: "Library access token", secret: true },
    {
      name: "SREGISTRY_LIBRARY_NOHTTPS",
      description: "true: plain http for a host in the URI; false: https even on loopback",
    },
    {
      name: "SREGISTRY_LIBRARY_MULTIPART_THRESHOLD",
      description: "Legacy upload: files over this many MiB go up in parallel multipart parts",
      default: "64",
    },
    {
      name: "SREGISTRY_LIBRARY_CONCURRENCY",
      description: "Legacy upload: multipart parts in flight at once (within 1 GiB of buffers)",
      default: "4",
    },
  ],
  create: (ctx) => createLibraryClient(ctx),
};
