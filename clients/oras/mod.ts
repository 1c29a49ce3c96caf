/**
 * oras://: SIF files as OCI artifacts (the layout SingularityCE and Apptainer use): push with the
 * SIF layer and config media types, pull the SIF back (the core stores it), delete, and search.
 * @module
 */

import { basename, join, resolve } from "node:path";
import type {
  Client,
  ClientFactory,
  Context,
  DeleteResult,
  PulledImage,
  PullTarget,
} from "../types.ts";
import {
  AuthError,
  FormatError,
  NetworkError,
  NotFoundError,
  UsageError,
} from "../../core/errors.ts";
import { pool } from "../../core/pool.ts";
import { removeUri } from "../../core/names.ts";
import { SIF_MAGIC } from "../../core/sif.ts";
import { hashFile } from "../../core/hasher.ts";
import {
  connect,
  type Connection,
  credentialsFromSettings,
  downloadBlob,
  type OciClientConfig,
  type OciDeps,
  pulledSifLayer,
  resolveImage,
  searchRegistry,
  suggestedName,
} from "../oci/client.ts";
import { dockerConfigCredentials, dockerConfigPath, readDockerConfig } from "../oci/auth.ts";
import { MediaType } from "../oci/manifest.ts";
import { DOCKER_HUB } from "../oci/reference.ts";
import { registryError, sha256Digest } from "../oci/registry.ts";

/** The SIF config blob: literally `{}`. */
export const SIF_CONFIG = "{}";

/** Parse a chunk size: bytes, or with a K/M/G suffix (powers of 1024). 0 = monolithic. */
export function parseChunkSize(value: string | undefined): number {
  if (value === undefined || value.trim() === "") return 0;
  const m = /^\s*(\d+)\s*([kmg]i?b?)?\s*$/i.exec(value);
  if (!m) {
    throw new UsageError(
      `SREGISTRY_ORAS_CHUNK_SIZE ${JSON.stringify(value)} is not a size: use bytes or e.g. 16M`,
    );
  }
  const mult = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[
    (m[2] ?? "").charAt(0).toLowerCase() as "" | "k" | "m" | "g"
  ];
  return Number(m[1]) * mult;
}

/** The oras client's OCI configuration. */
export function orasConfig(ctx: Context): OciClientConfig {
  const get = (name: string) => ctx.clientSettings.get(name);
  return {
    scheme: "oras",
    defaultRegistry: get("SREGISTRY_ORAS_BASE") ?? DOCKER_HUB,
    noHttps: get("SREGISTRY_ORAS_NOHTTPS"),
    credentialHint: "SREGISTRY_ORAS_USERNAME and SREGISTRY_ORAS_PASSWORD (or docker login)",
    async credentials(host) {
      const s = credentialsFromSettings(get, [[
        "SREGISTRY_ORAS_USERNAME",
        "SREGISTRY_ORAS_PASSWORD",
      ]]);
      if (s) return s;
      return await dockerConfigCredentials(
        readDockerConfig(dockerConfigPath(ctx.env, ctx.globals.home)),
        host,
      );
    },
  };
}

async function startsWithSifMagic(path: string): Promise<boolean> {
  const f = await Deno.open(path);
  try {
    const buf = new Uint8Array(42);
    let got = 0;
    while (got < buf.length) {
      const n = await f.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    return new TextDecoder("latin1").decode(buf.subarray(32, 42)) === `${SIF_MAGIC}\0`;
  } finally {
    f.close();
  }
}

/**
 * Delete a tag without silently taking the manifest's other tags along (sregistry-cli deleted the
 * manifest, and every tag on it went). When other tags share the digest, the tag alone is deleted
 * where the registry allows it (`DELETE /v2/<repo>/manifests/<tag>`, OCI distribution 1.1);
 * otherwise the user is asked, and under --force the other tags are named in a warning.
 */
async function deleteImage(
  ctx: Context,
  { ref, registry }: Connection,
  options: { force?: boolean },
): Promise<DeleteResult> {
  const repo = ref.repository;
  const where = `${ref.registry}/${repo}`;
  const uri = (t: string) => `oras://${where}${t.startsWith("sha256:") ? "@" : ":"}${t}`;
  const digestOf = async (t: string) =>
    await registry.headManifest(repo, t) ??
      // A registry without Docker-Content-Digest on HEAD: hash the manifest instead.
      (await registry.getManifest(repo, t).catch(() => undefined))?.digest;
  const tagsOn = async (digest: string, except?: string): Promise<string[]> => {
    const tags = (await registry.tags(repo)).filter((t) => t !== except);
    const digests = await pool(tags, 8, (t) => digestOf(t).catch(() => undefined), ctx.signal);
    return tags.filter((_, i) => digests[i] === digest).sort();
  };
  if (ref.digest) {
    // Naming the manifest deletes it with all its tags; say which went.
    const others = await tagsOn(ref.digest);
    await registry.deleteManifest(repo, ref.digest);
    return { deleted: [uri(ref.digest), ...others.map(uri)] };
  }
  const tag = ref.tag ?? "latest";
  const digest = await digestOf(tag);
  if (!digest) throw new NotFoundError(`${where}:${tag} was not found; check the name and tag`);
  const others = await tagsOn(digest, tag);
  if (others.length === 0) {
    await registry.deleteManifest(repo, digest);
    return { deleted: [uri(tag)] };
  }
  const list = others.map((t) => `:${t}`).join(", ");
  const res = await registry.send(
    `${registry.base}/v2/${repo}/manifests/${tag}`,
    `repository:${repo}:delete`,
    { method: "DELETE" },
  );
  const detail = res.ok ? "" : await registryError(res);
  await res.body?.cancel().catch(() => {});
  if (res.ok) {
    // Some registries implement a tag delete as a manifest delete: check that the others stayed.
    const gone = (await Promise.all(others.map(async (t) => (await digestOf(t)) ? [] : [t])))
      .flat();
    if (gone.length) {
      ctx.log.warning(
        `Registry ${ref.registry} also deleted ${
          gone.map((t) => `:${t}`).join(", ")
        } with ${where}:${tag}`,
      );
    } else ctx.log.verbose(`Deleted the tag ${tag} alone; ${list} still name ${digest}`);
    return { deleted: [uri(tag), ...gone.map(uri)] };
  }
  if (res.status === 401 || res.status === 403) {
    throw new AuthError(`Registry ${ref.registry} denied deleting ${where}:${tag} (${detail})`);
  }
  if (![400, 404, 405, 501].includes(res.status)) {
    throw new NetworkError(
      `Registry ${ref.registry} answered HTTP ${res.status} to deleting ${where}:${tag}${
        detail ? ` (${detail})` : ""
      }`,
      { status: res.status },
    );
  }
  ctx.log.debug(`Registry ${ref.registry} cannot delete a tag alone: HTTP ${res.status} ${detail}`);
  const why = `Registry ${ref.registry} cannot delete the tag ${tag} alone: deleting its manifest ${
    digest.slice(0, 19)
  } also deletes ${list}`;
  if (options.force) ctx.log.warning(why);
  else if (!(await ctx.prompt.confirm(`${why}. Delete them all?`, { default: false }))) {
    return { deleted: [] };
  }
  await registry.deleteManifest(repo, digest);
  return { deleted: [uri(tag), ...others.map(uri)] };
}

/** Build an oras client. */
export function createOrasClient(ctx: Context, deps: OciDeps = {}): Client {
  const config = orasConfig(ctx);

  async function pull(image: string, into: PullTarget): Promise<PulledImage> {
    const conn = connect(ctx, config, image, deps);
    const { ref, registry } = conn;
    const img = await resolveImage(conn, into.platform);
    const where = `${ref.registry}/${ref.repository}:${ref.tag ?? ref.digest}`;
    const layers = img.manifest.layers;
    if (layers.length !== 1) {
      throw new FormatError(
        `${where} has ${layers.length} layers; a SIF artifact has exactly one (pull container images with docker://)`,
      );
    }
    const layer = layers[0];
    const sifType = layer.mediaType === MediaType.sifLayer ||
      layer.mediaType === MediaType.sifLayerTypo;
    await downloadBlob(ctx, registry, ref.repository, layer, into.path, basename(ref.repository));
    if (!(await startsWithSifMagic(into.path))) {
      throw new FormatError(
        `${where} is not a SIF artifact: its layer (${layer.mediaType}) is not a SIF file`,
      );
    }
    if (!sifType) {
      ctx.log.warning(
        `${where}: the layer's media type is ${layer.mediaType}, not ${MediaType.sifLayer}, but the file is a SIF; accepting it`,
      );
    }
    return pulledSifLayer(into, img, layer, suggestedName(ref, config.defaultRegistry, img.digest));
  }

  return {
    name: "oras",
    pull,
    async push(path, options) {
      const file = resolve(path);
      let st: Deno.FileInfo;
      try {
        st = await Deno.stat(file);
      } catch {
        throw new NotFoundError(`Cannot find ${JSON.stringify(path)}: check the path`);
      }
      if (!st.isFile) throw new UsageError(`${JSON.stringify(path)} is not a file`);
      if (!(await startsWithSifMagic(file))) {
        throw new FormatError(
          `${JSON.stringify(path)} is not a SIF image (no SIF_MAGIC at offset 32)`,
        );
      }
      const name = options.tag
        ? `${removeUri(options.name).replace(/:[^/:@]+$/, "")}:${options.tag}`
        : options.name;
      const conn = connect(ctx, config, name, deps);
      const { ref, registry } = conn;
      if (ref.digest) throw new UsageError(`Cannot push to a digest (${ref.digest}): give a tag`);
      const chunkSize = parseChunkSize(ctx.clientSettings.get("SREGISTRY_ORAS_CHUNK_SIZE"));
      const cfgPath = join(
        ctx.globals.tmpDir,
        `sregistry-oras-config-${crypto.randomUUID().slice(0, 8)}.json`,
      );
      await Deno.mkdir(ctx.globals.tmpDir, { recursive: true });
      await Deno.writeTextFile(cfgPath, SIF_CONFIG);
      try {
        const cfg = { digest: sha256Digest(SIF_CONFIG), size: SIF_CONFIG.length };
        await registry.uploadBlob(ref.repository, cfgPath, cfg);
        const layer = await hashFile(file);
        const r = await registry.uploadBlob(ref.repository, file, layer, {
          chunkSize,
          progress: ctx.progress,
          label: basename(file),
        });
        if (r.skipped) {
          ctx.log.info(`The registry already has ${layer.digest}; not uploading it again`);
        }
        const manifest = {
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.sifConfig, digest: cfg.digest, size: cfg.size },
          layers: [{
            mediaType: MediaType.sifLayer,
            digest: layer.digest,
            size: layer.size,
            annotations: { "org.opencontainers.image.title": basename(file) },
          }],
        };
        const bytes = new TextEncoder().encode(JSON.stringify(manifest));
        const digest = await registry.putManifest(
          ref.repository,
          ref.tag ?? "latest",
          bytes,
          MediaType.ociManifest,
        );
        return {
          url: `oras://${ref.registry}/${ref.repository}:${ref.tag ?? "latest"}`,
          digest,
          size: layer.size,
        };
      } finally {
        await Deno.remove(cfgPath).catch(() => {});
      }
    },
    delete: (image, options) => deleteImage(ctx, connect(ctx, config, image, deps), options),
    search: (query) => searchRegistry(ctx, config, query, deps),
  };
}

/** The oras:// client. */
export const orasFactory: ClientFactory = {
  scheme: "oras",
  description: "SIF images as OCI artifacts in any OCI registry: push, pull, delete, search",
  settings: [
    { name: "SREGISTRY_ORAS_BASE", description: "Default registry host", default: DOCKER_HUB },
    {
      name: "SREGISTRY_ORAS_NOHTTPS",
      description: "true: plain http; false: https even on loopback",
    },
    { name: "SREGISTRY_ORAS_USERNAME", description: "Registry user" },
    { name: "SREGISTRY_ORAS_PASSWORD", description: "Registry password or token", secret: true },
    {
      name: "SREGISTRY_ORAS_CHUNK_SIZE",
      description: "Upload in chunks of this size (bytes, or 16M); 0 or unset: one request",
    },
  ],
  create: (ctx) => createOrasClient(ctx),
};
