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
 *
 * The JSON API, the resumable upload and the object layout are in clients/gcs/ (shared with
 * google-build).
 * @module
 */

import { readServiceAccount } from "../../core/auth/jwt_bearer.ts";
import { serviceAccountAuth } from "../../core/auth/service_account.ts";
import { ConfigError, NotFoundError } from "../../core/errors.ts";
import { hashFile } from "../../core/hasher.ts";
import { type ParsedName, parseImageName, removeUri } from "../../core/names.ts";
import type {
  Client,
  ClientFactory,
  Context,
  PulledImage,
  PullTarget,
  RemoteRecord,
  SearchHit,
} from "../types.ts";
import { type Api, listObjects, makePublic, mediaUrl, type ObjectResource } from "../gcs/api.ts";
import { EMULATOR_VARIABLE, storageEndpoint } from "../gcs/endpoint.ts";
import { isContainer, objectUri, pushMetadata, pushNames } from "../gcs/layout.ts";
import {
  deleteObjects,
  describeObject,
  ensureBucket,
  findObjects,
  pullObject,
  searchHits,
} from "../gcs/objects.ts";
import { CHUNK_QUANTUM, DEFAULT_CHUNK_SIZE, resumableUpload } from "../gcs/resumable_upload.ts";

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

function createGoogleStorageClient(ctx: Context): Client {
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
    const auth = serviceAccountAuth(ctx, {
      setting: CREDENTIALS,
      path: credentialsPath(),
      scopes: STORAGE_SCOPES,
      origin: endpoint.origin,
    });
    apiCache = { http: ctx.http, endpoint, auth, signal: ctx.signal };
    return apiCache;
  };

  /** The objects an image name means, newest first: its exact object, or every version of a tag. */
  async function resolve(image: string): Promise<{ names: ParsedName; objects: ObjectResource[] }> {
    const names = parseImageName(removeUri(image));
    const a = api();
    const objects = await findObjects(a, bucketName(), names, { untypedExact: true });
    return { names, objects };
  }

  async function notFound(names: ParsedName): Promise<NotFoundError> {
    const bucket = bucketName();
    let near: string[] = [];
    try {
      near = (await listObjects(api(), bucket, `${names.collection}/`))
        .filter((o) => isContainer(o.metadata)).slice(0, 5).map((o) => objectUri(SCHEME, o));
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

  const describe = (names: ParsedName, o: ObjectResource): RemoteRecord =>
    describeObject(api(), o, names, ["selfLink", "md5Hash"]);

  return {
    name: SCHEME,

    async pull(image: string, into: PullTarget): Promise<PulledImage> {
      const { names, object } = await one(image);
      return await pullObject(ctx, api(), object, describe(names, object), into, removeUri(image));
    },

    async record(image: string): Promise<RemoteRecord> {
      const { names, object } = await one(image);
      return describe(names, object);
    },

    async push(path, options) {
      const chunkSize = parseChunkSize(ctx.settings.get(CHUNK));
      const a = api();
      const bucket = bucketName();
      const { digest, size } = await hashFile(path);
      const hex = digest.slice("sha256:".length);
      const names = pushNames(options.name, options.tag, hex);
      await ensureBucket(ctx, a, bucket, async () => {
        const project = ctx.settings.getAndUpdate(PROJECT) ??
          (await readServiceAccount(credentialsPath(), CREDENTIALS)).project_id;
        if (!project) {
          throw new ConfigError(
            `The bucket ${
              JSON.stringify(bucket)
            } does not exist and no project is known to create it in: set ${PROJECT}`,
          );
        }
        return project;
      });
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
      return searchHits(SCHEME, await listObjects(api(), bucketName()), query);
    },

    async delete(image: string, options: { force?: boolean }) {
      const { names, objects } = await resolve(image);
      if (objects.length === 0) throw await notFound(names);
      return await deleteObjects(ctx, api(), SCHEME, names, objects, options.force);
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
