/**
 * oras://: SIF files as OCI artifacts (the layout SingularityCE and Apptainer use): push with the
 * SIF layer and config media types, pull the SIF back (the core stores it), delete, and search.
 * @module
 */

import { basename, join, resolve } from "node:path";
import type { Client, ClientFactory, Context, PulledImage, PullTarget } from "../types.ts";
import { FormatError, NotFoundError, UsageError } from "../../core/errors.ts";
import { removeUri } from "../../core/names.ts";
import { SIF_MAGIC } from "../../core/sif.ts";
import { hashFile } from "../../core/hasher.ts";
import {
  connect,
  credentialsFromSettings,
  downloadBlob,
  type OciClientConfig,
  type OciDeps,
  resolveImage,
  searchRegistry,
  suggestedName,
} from "../oci/client.ts";
import { dockerConfigCredentials, dockerConfigPath, readDockerConfig } from "../oci/auth.ts";
import { MediaType } from "../oci/manifest.ts";
import { DOCKER_HUB } from "../oci/reference.ts";
import { sha256Digest } from "../oci/registry.ts";

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
        readDockerConfig(dockerConfigPath(ctx.env, ctx.settings.home)),
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
    return {
      file: into.path,
      format: "sif",
      url: img.url,
      digest: layer.digest,
      size: layer.size,
      suggestedName: suggestedName(ref, config.defaultRegistry, img.digest),
      metadata: {
        digest: img.digest,
        mediaType: img.mediaType,
        layerDigest: layer.digest,
        layerMediaType: layer.mediaType,
        ...(layer.annotations?.["org.opencontainers.image.title"]
          ? { title: layer.annotations["org.opencontainers.image.title"] }
          : {}),
      },
    };
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
        ctx.settings.tmpDir,
        `sregistry-oras-config-${crypto.randomUUID().slice(0, 8)}.json`,
      );
      await Deno.mkdir(ctx.settings.tmpDir, { recursive: true });
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
    async delete(image) {
      const { ref, registry } = connect(ctx, config, image, deps);
      const digest = ref.digest ?? await registry.headManifest(ref.repository, ref.tag ?? "latest");
      if (!digest) {
        throw new NotFoundError(
          `${ref.registry}/${ref.repository}:${ref.tag} was not found; check the name and tag`,
        );
      }
      await registry.deleteManifest(ref.repository, digest);
    },
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
