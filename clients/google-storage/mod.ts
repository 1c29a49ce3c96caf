/**
 * The google-storage:// client: images as objects in a Google Cloud Storage bucket, laid out and
 * described exactly as sregistry-cli's client wrote them (see layout.ts), so either tool finds what
 * the other pushed. Push is a resumable upload that survives dropped chunks (and, through the
 * credential store, a new run); pull goes through core/transfer (ranges, resume) and is verified
 * against the `sha256sum` we store; search lists the objects whose metadata says `type: container`.
 *
 * Authentication is the service account of GOOGLE_APPLICATION_CREDENTIALS, exchanged for an access
 * token with the JWT-bearer grant (core/auth/jwt_bearer.ts) at the key file's `token_uri`; the
 * token is kept in the credential store until shortly before it expires. Unlike the original,
 * private objects can be pulled (every call carries the token), and a `google-storage://` prefix
 * works for delete. STORAGE_EMULATOR_HOST sends every call to an emulator.
 * @module
 */

import { createHash } from "node:crypto";
import {
  type AccessToken,
  jwtBearerAuth,
  type JwtBearerAuthorizer,
  readServiceAccount,
} from "../../core/auth/jwt_bearer.ts";
import { ConfigError, NotFoundError } from "../../core/errors.ts";
import { hashFile } from "../../core/hasher.ts";
import { isLoopback } from "../../core/http.ts";
import { type ParsedName, parseImageName, removeUri } from "../../core/names.ts";
import { download, MAX_STREAMS } from "../../core/transfer/mod.ts";
import type {
  Client,
  ClientFactory,
  Context,
  PulledImage,
  PullTarget,
  RemoteRecord,
  SearchHit,
} from "../types.ts";
import {
  type Api,
  bucketExists,
  createBucket,
  deleteObject,
  getObject,
  listObjects,
  makePublic,
  mediaUrl,
  type ObjectResource,
} from "./api.ts";
import { EMULATOR_VARIABLE, storageEndpoint } from "./endpoint.ts";
import { digestOf, isContainer, isVersionOf, pushMetadata } from "./layout.ts";
import { CHUNK_QUANTUM, DEFAULT_CHUNK_SIZE, resumableUpload } from "./resumable_upload.ts";

const SCHEME = "google-storage";
const CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS";
const BUCKET = "SREGISTRY_GOOGLE_STORAGE_BUCKET";
const PROJECT = "SREGISTRY_GOOGLE_PROJECT";
const PRIVATE = "SREGISTRY_GOOGLE_STORAGE_PRIVATE";
const CHUNK = "SREGISTRY_GOOGLE_STORAGE_CHUNK_SIZE";

/** The scopes Google's storage library asks for (the original's). */
export const STORAGE_SCOPES: readonly string[] = [
  "https://www.googleapis.com/auth/devstorage.full_control",
  "https://www.googleapis.com/auth/devstorage.read_only",
  "https://www.googleapis.com/auth/devstorage.read_write",
];

/** Parse a chunk size: bytes, or with a K/KiB or M/MiB suffix; a multiple of 256 KiB. */
export function parseChunkSize(value: string | undefined): number {
  if (value === undefined || value.trim() === "") return DEFAULT_CHUNK_SIZE;
  const m = value.trim().match(/^(\d+)\s*(k|ki|kib|m|mi|mib)?$/i);
  const n = m ? Number(m[1]) * (m[2] ? (/^k/i.test(m[2]) ? 1024 : 1024 * 1024) : 1) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0 || n % CHUNK_QUANTUM !== 0) {
    throw new ConfigError(
      `${CHUNK} ${
        JSON.stringify(value)
      } is not a multiple of 256 KiB; use for example 256K, 8M or 16777216`,
    );
  }
  return n;
}

/** Whether SREGISTRY_GOOGLE_STORAGE_PRIVATE asks for private objects (any value but a false one). */
export function isPrivate(value: string | undefined): boolean {
  return value !== undefined && !/^(|false|no|0|off)$/i.test(value.trim());
}

/** The version part of an object name (`url:tag@<version>.sif`), if any. */
function versionOfName(objectName: string): string | undefined {
  return objectName.match(/@([^/@]+)\.sif$/)?.[1];
}

function createGoogleStorageClient(ctx: Context): Client {
  let authz: JwtBearerAuthorizer | undefined;
  let apiCache: Api | undefined;

  const credentialsPath = () => ctx.settings.require(CREDENTIALS);
  const bucketName = (): string => {
    const set = ctx.settings.getAndUpdate(BUCKET);
    if (set) return set;
    const user = ctx.env.get("USER");
    if (!user) {
      throw new ConfigError(
        `No bucket: set ${BUCKET} (the default sregistry-$USER needs USER, which is unset)`,
      );
    }
    return `sregistry-${user.toLowerCase()}`;
  };

  const api = (): Api => {
    if (apiCache) return apiCache;
    const endpoint = storageEndpoint(ctx.env.get(EMULATOR_VARIABLE));
    const path = credentialsPath();
    let mtime = "";
    try {
      mtime = String(Deno.statSync(path).mtime?.getTime() ?? "");
    } catch {
      // reported when the key is read
    }
    // The kept token belongs to this key file (as it was) and these scopes only.
    const fingerprint = createHash("sha256")
      .update(`${path}\n${mtime}\n${STORAGE_SCOPES.join(" ")}`).digest("hex");
    const kept = ctx.credentials.get<AccessToken & { for?: string }>("access_token");
    authz = jwtBearerAuth({
      http: ctx.http,
      account: () => readServiceAccount(path, CREDENTIALS),
      scopes: STORAGE_SCOPES,
      origin: endpoint.origin,
      cached: kept?.for === fingerprint && typeof kept.accessToken === "string"
        ? { accessToken: kept.accessToken, expiresAt: kept.expiresAt }
        : undefined,
      onToken: (t) => ctx.credentials.set("access_token", { ...t, for: fingerprint }),
      source: `${JSON.stringify(path)} (${CREDENTIALS})`,
      log: ctx.log,
      signal: ctx.signal,
    });
    apiCache = { http: ctx.http, endpoint, auth: authz, signal: ctx.signal };
    return apiCache;
  };

  const uriOf = (o: ObjectResource): string =>
    `${SCHEME}://${o.metadata?.uri ?? o.name.replace(/\.sif$/, "")}`;

  /** The objects an image name means, newest first: its exact object, or every version of a tag. */
  async function resolve(image: string): Promise<{ names: ParsedName; objects: ObjectResource[] }> {
    const names = parseImageName(removeUri(image));
    const a = api();
    const bucket = bucketName();
    if (names.version) {
      const o = await getObject(a, bucket, names.storage);
      return { names, objects: o ? [o] : [] };
    }
    const listed = await listObjects(a, bucket, `${names.url}:${names.tag}`);
    const exact = `${names.url}:${names.tag}.sif`;
    const objects = listed
      .filter((o) => isVersionOf(o.name, names) && (o.name === exact || isContainer(o.metadata)))
      .sort((x, y) => (y.updated ?? "").localeCompare(x.updated ?? ""));
    return { names, objects };
  }

  async function notFound(names: ParsedName): Promise<NotFoundError> {
    const bucket = bucketName();
    let near: string[] = [];
    try {
      near = (await listObjects(api(), bucket, `${names.collection}/`))
        .filter((o) => isContainer(o.metadata)).slice(0, 5).map(uriOf);
    } catch {
      // the suggestion is optional
    }
    return new NotFoundError(
      `No image ${SCHEME}://${names.uri} in bucket ${JSON.stringify(bucket)}${
        near.length
          ? `; near names: ${near.join(", ")}`
          : `; list them with "sregistry search ${SCHEME}://"`
      }`,
    );
  }

  async function one(image: string): Promise<{ names: ParsedName; object: ObjectResource }> {
    const { names, objects } = await resolve(image);
    if (objects.length === 0) throw await notFound(names);
    return { names, object: objects[0] };
  }

  function describe(names: ParsedName, o: ObjectResource): RemoteRecord {
    const a = api();
    const url = o.mediaLink ?? mediaUrl(a, o).href;
    let suggested = `${names.url}:${names.tag}`;
    const version = names.version ?? versionOfName(o.name);
    if (version) suggested += `@${version}`;
    const size = Number(o.size);
    return {
      url,
      digest: digestOf(o.metadata),
      ...(Number.isSafeInteger(size) ? { size } : {}),
      metadata: {
        ...o.metadata,
        bucket: o.bucket,
        object: o.name,
        generation: o.generation,
        ...(o.selfLink ? { selfLink: o.selfLink } : {}),
        ...(o.md5Hash ? { md5Hash: o.md5Hash } : {}),
        url,
      },
      suggestedName: suggested,
    };
  }

  return {
    name: SCHEME,

    async pull(image: string, into: PullTarget): Promise<PulledImage> {
      const { names, object } = await one(image);
      const a = api();
      const record = describe(names, object);
      const url = mediaUrl(a, object);
      const r = await download({
        http: ctx.http,
        url,
        dest: into.resumable,
        auth: a.auth,
        expectedDigest: record.digest,
        expectedSize: record.size,
        parallel: isLoopback(url.host) ? 1 : Math.min(ctx.globals.workers, MAX_STREAMS),
        progress: ctx.progress,
        label: removeUri(image),
        signal: ctx.signal,
      });
      await Deno.rename(into.resumable, into.path);
      return { ...record, file: into.path, format: "unknown", digest: r.digest, size: r.size };
    },

    async record(image: string): Promise<RemoteRecord> {
      const { names, object } = await one(image);
      return describe(names, object);
    },

    async push(path, options) {
      const given = parseImageName(options.name, { tag: options.tag });
      const chunkSize = parseChunkSize(ctx.settings.get(CHUNK));
      const a = api();
      const bucket = bucketName();
      const { digest, size } = await hashFile(path);
      const hex = digest.slice("sha256:".length);
      const names = parseImageName(options.name, {
        tag: options.tag,
        version: given.version ?? hex,
      });
      if (!(await bucketExists(a, bucket))) {
        const project = ctx.settings.getAndUpdate(PROJECT) ??
          (await readServiceAccount(credentialsPath(), CREDENTIALS)).project_id;
        if (!project) {
          throw new ConfigError(
            `The bucket ${
              JSON.stringify(bucket)
            } does not exist and no project is known to create it in: set ${PROJECT}`,
          );
        }
        await createBucket(a, bucket, project);
        ctx.log.info(`Created bucket ${bucket} in project ${project}`);
      }
      let labels: Record<string, unknown> = {};
      try {
        labels = await ctx.metadata(path);
      } catch (e) {
        ctx.log.verbose(`No labels read from ${path}: ${(e as Error).message}`);
      }
      const { metadata, dropped } = pushMetadata(names, hex, labels);
      if (dropped.length) {
        ctx.log.warning(
          `Labels left out of the object metadata (GCS keeps 8 KiB): ${dropped.join(", ")}`,
        );
      }
      // A session of an earlier, interrupted push of the same bytes to the same name continues.
      const key = `upload:${bucket}/${names.storage}`;
      const kept = ctx.credentials.get<{ session?: string; digest?: string; size?: number }>(key);
      const secretOf = (s: string) =>
        ctx.log.addSecret(new URL(s).searchParams.get("upload_id") ?? s);
      const session = kept?.digest === digest && kept.size === size ? kept.session : undefined;
      if (session) secretOf(session);
      const object = await resumableUpload({
        http: ctx.http,
        auth: a.auth,
        uploadRoot: a.endpoint.upload,
        bucket,
        name: names.storage,
        file: path,
        metadata,
        chunkSize,
        session,
        onSession: (s) => {
          secretOf(s);
          ctx.credentials.set(key, { session: s, digest, size });
        },
        progress: ctx.progress,
        label: names.uri,
        signal: ctx.signal,
      });
      ctx.credentials.delete(key);
      if (!isPrivate(ctx.settings.get(PRIVATE))) {
        const refused = await makePublic(a, bucket, object.name);
        if (refused) {
          ctx.log.warning(
            `${object.name} stays private: the bucket refused a public ACL (${refused}); set ${PRIVATE}=true to skip this`,
          );
        }
      }
      return { url: object.mediaLink ?? mediaUrl(a, object).href, digest, size };
    },

    async search(query: string | undefined): Promise<SearchHit[]> {
      const objects = await listObjects(api(), bucketName());
      const q = query?.toLowerCase();
      return objects
        .filter((o) => isContainer(o.metadata))
        .filter((o) =>
          !q || o.name.toLowerCase().includes(q) ||
          Object.values(o.metadata ?? {}).some((v) => String(v).toLowerCase().includes(q))
        )
        .map((o) => ({
          uri: uriOf(o),
          details: {
            size: `${Math.round(Number(o.size) / 1024 / 1024)} MB`,
            updated: o.updated,
          },
        }));
    },

    async delete(image: string, options: { force?: boolean }) {
      const { names, objects } = await resolve(image);
      if (objects.length === 0) throw await notFound(names);
      if (objects.length > 1 && !options.force) {
        const ok = await ctx.prompt.confirm(
          `${SCHEME}://${names.uri} names ${objects.length} objects (${
            objects.map((o) => o.name).join(", ")
          }); delete them all?`,
          { default: false },
        );
        if (!ok) return { deleted: [] };
      }
      const a = api();
      const deleted: string[] = [];
      for (const o of objects) {
        if (await deleteObject(a, o.bucket, o.name)) deleted.push(uriOf(o));
      }
      return { deleted };
    },
  };
}

/** The google-storage client factory. */
export const googleStorageFactory: ClientFactory = {
  scheme: SCHEME,
  aliases: ["google_storage"],
  description: "Google Cloud Storage bucket (service account key; resumable uploads)",
  settings: [
    {
      name: CREDENTIALS,
      description: "path to the service account key JSON (client_email, private_key, token_uri)",
      required: true,
    },
    { name: BUCKET, description: "the bucket (created on first push)", default: "sregistry-$USER" },
    {
      name: PROJECT,
      description: "project a missing bucket is created in",
      default: "the key's project_id",
    },
    { name: PRIVATE, description: "any value but false: do not make pushed objects public" },
    {
      name: CHUNK,
      description: "resumable upload chunk size, a multiple of 256 KiB",
      default: String(DEFAULT_CHUNK_SIZE),
    },
    {
      name: EMULATOR_VARIABLE,
      description: "host[:port] or URL of a storage emulator; every call goes there",
    },
  ],
  create: createGoogleStorageClient,
};
