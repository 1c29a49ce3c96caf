/**
 * The swift:// client: OpenStack Swift (and Ceph RGW's Swift API), with sregistry-cli's layout and
 * settings, so either tool finds what the other pushed: one container per collection, the object
 * named `image:tag[@version].sif`. We add the file's sha256 as `X-Object-Meta-Sha256`, read back on
 * pull to verify; an object without it (pushed by the original) is checked by size.
 *
 * Unlike the original: pulls stream to disk through core/transfer (resumable), objects above the
 * segment threshold (5 GiB) go up as a static large object with segments in parallel, search reads
 * full listings, a missing container is exit 3 naming the containers there, and delete exists.
 * @module
 */

import { AuthError, NotFoundError, UsageError } from "../../core/errors.ts";
import { readBody } from "../../core/http.ts";
import { hashFile } from "../../core/hasher.ts";
import { isLoopback } from "../../core/http.ts";
import { pool } from "../../core/pool.ts";
import { download, MAX_STREAMS, multipartUpload, upload } from "../../core/transfer/mod.ts";
import type {
  Client,
  ClientFactory,
  Context,
  DeleteResult,
  PulledImage,
  PullTarget,
  PushOptions,
  PushResult,
  RemoteRecord,
  SearchHit,
} from "../types.ts";
import { LISTING_LIMIT, missingContainer, type SwiftApi, swiftApi } from "./_api.ts";
import { type SwiftAuth, swiftAuth } from "./_auth.ts";
import { locate, objectUrl, segmentContainer, type SwiftLocation, uriOf } from "./_layout.ts";

const SCHEME = "swift";
/** Our digest of the whole file, `sha256:<hex>`. */
export const DIGEST_HEADER = "x-object-meta-sha256";
/** Swift's largest single object is 5 GiB: larger files go up as a static large object. */
export const SEGMENT_THRESHOLD = 5 * 1024 * 1024 * 1024;
/** Default segment size: memory in flight is this times the parallel segments. */
export const SEGMENT_SIZE = 64 * 1024 * 1024;
/** Files up to this size are hashed before their PUT, so the digest arrives with the object. */
export const HASH_FIRST_LIMIT = 64 * 1024 * 1024;
/** Swift's default `max_manifest_segments`: larger files get larger segments. */
const MAX_SEGMENTS = 1000;

/** Parse a positive byte count setting (`1073741824`, `64M`, `1G`). */
export function parseBytes(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const m = value.trim().match(/^(\d+)\s*([kmgt]i?b?)?$/i);
  const unit = m?.[2]?.[0]?.toLowerCase();
  const scale = unit ? 1024 ** ("kmgt".indexOf(unit) + 1) : 1;
  const n = m ? Number(m[1]) * scale : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(
      `${name} ${JSON.stringify(value)} is not a size in bytes: use e.g. 67108864 or 64M`,
    );
  }
  return n;
}

function digestOf(headers: Headers): string | undefined {
  const v = headers.get(DIGEST_HEADER)?.trim().toLowerCase();
  if (!v) return undefined;
  const hex = v.startsWith("sha256:") ? v.slice(7) : v;
  return /^[0-9a-f]{64}$/.test(hex) ? `sha256:${hex}` : undefined;
}

function sizeOf(headers: Headers): number | undefined {
  const n = Number(headers.get("content-length") ?? NaN);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function suggestedName(loc: SwiftLocation): string {
  const n = loc.names;
  return `${n.collection}/${n.image}:${n.tag}${n.version ? `@${n.version}` : ""}`;
}

function createSwiftClient(ctx: Context): Client {
  // Nothing is read before a capability runs (no eager I/O).
  let state: { auth: SwiftAuth; api: SwiftApi } | undefined;
  const connect = () => {
    if (!state) {
      const auth = swiftAuth(ctx);
      const page = ctx.settings.get("SREGISTRY_SWIFT_PAGE_SIZE");
      const api = swiftApi(
        ctx,
        auth,
        parseBytes("SREGISTRY_SWIFT_PAGE_SIZE", page, LISTING_LIMIT),
      );
      state = { auth, api };
    }
    return state;
  };

  /** Say which variables to fix when Swift refuses the token (the core's message names the host). */
  const named = async <T>(fn: (api: SwiftApi) => Promise<T>): Promise<T> => {
    const { auth, api } = connect();
    try {
      return await fn(api);
    } catch (e) {
      const err = e as Error & { exitCode?: number };
      if (e instanceof AuthError && !/check SREGISTRY_SWIFT_/.test(err.message)) {
        throw new AuthError(
          `${err.message.replace(/; (check|set) the .*$/, "")}; check ${auth.hint}`,
          { cause: e },
        );
      }
      throw e;
    }
  };

  /** HEAD an object; exit 3 naming the missing container or near object names. */
  const headObject = async (api: SwiftApi, loc: SwiftLocation): Promise<Response> => {
    const res = await api.head(loc.container, loc.object);
    if (res) return res;
    if (!(await api.head(loc.container))) throw await missingContainer(api, loc.container);
    const near = (await api.list(loc.container, { prefix: `${loc.names.image}:` }))
      .map((e) => uriOf(loc.container, e.name)).filter((u): u is string => u !== undefined);
    throw new NotFoundError(
      `No object ${JSON.stringify(loc.object)} in Swift container ${JSON.stringify(loc.container)}${
        near.length ? `; there is ${near.slice(0, 5).join(", ")}` : ""
      }`,
    );
  };

  const streamsFor = (url: URL): number =>
    isLoopback(url.host) ? 1 : Math.min(ctx.globals.workers, MAX_STREAMS);

  return {
    name: SCHEME,

    pull: (image: string, into: PullTarget): Promise<PulledImage> =>
      named(async (api) => {
        const loc = locate(image);
        const head = await headObject(api, loc);
        const url = objectUrl(await api.storageUrl(), loc.container, loc.object);
        const expectedDigest = digestOf(head.headers);
        const r = await download({
          http: ctx.http,
          url,
          dest: into.resumable,
          auth: connect().auth.authorizer,
          expectedDigest,
          expectedSize: sizeOf(head.headers),
          parallel: streamsFor(url),
          progress: ctx.progress,
          signal: ctx.signal,
          label: `${loc.container}/${loc.object}`,
        });
        await Deno.rename(into.resumable, into.path);
        const etag = r.etag ?? head.headers.get("etag") ?? undefined;
        return {
          file: into.path,
          format: "sif",
          url: url.href,
          digest: r.digest,
          size: r.size,
          suggestedName: suggestedName(loc),
          metadata: {
            ...objectMetadata(url, loc, etag, r.lastModified),
            verified: expectedDigest ? "sha256" : "size",
          },
        };
      }),

    push: (path: string, options: PushOptions): Promise<PushResult> =>
      named(async (api) => {
        const loc = locate(options.name, { tag: options.tag });
        const size = (await Deno.stat(path)).size;
        const threshold = parseBytes(
          "SREGISTRY_SWIFT_SEGMENT_THRESHOLD",
          ctx.settings.get("SREGISTRY_SWIFT_SEGMENT_THRESHOLD"),
          SEGMENT_THRESHOLD,
        );
        await api.ensureContainer(loc.container);
        const url = objectUrl(await api.storageUrl(), loc.container, loc.object);
        const label = `${loc.container}/${loc.object}`;
        const previous = await api.head(loc.container, loc.object);
        const old = previous?.headers.get("x-static-large-object")?.toLowerCase() === "true"
          ? await segmentsOf(ctx, api, loc).catch(() => [])
          : [];
        let digest: string;
        if (size <= threshold) {
          const send = (headers: Record<string, string>) =>
            upload({
              http: ctx.http,
              url,
              file: path,
              headers,
              auth: connect().auth.authorizer,
              contentType: "application/octet-stream",
              progress: ctx.progress,
              label,
              signal: ctx.signal,
            }).then((res) => res.body?.cancel());
          if (size <= HASH_FIRST_LIMIT) {
            // Small: the digest goes with the object in one PUT.
            digest = (await hashFile(path)).digest;
            await send({ [DIGEST_HEADER]: digest });
          } else {
            // Large: hashing first would add a whole read (sha256 runs at about the speed of a
            // loopback PUT), so the file is hashed while it goes up and the digest follows as
            // metadata (a POST sets the object's metadata; it has none of its own yet).
            [digest] = await Promise.all([hashFile(path).then((h) => h.digest), send({})]);
            const res = await api.request((s) => objectUrl(s, loc.container, loc.object), {
              method: "POST",
              headers: { [DIGEST_HEADER]: digest },
            });
            await res.body?.cancel().catch(() => {});
          }
        } else {
          digest = await pushSegmented(ctx, api, loc, path, size, label);
        }
        if (old.length) {
          await removeSegments(ctx, api, old).catch((e) =>
            ctx.log.warning(
              `The segments of the object ${label} replaced stay in Swift: ${(e as Error).message}`,
            )
          );
        }
        return { url: url.href, digest, size };
      }),

    search: (query: string | undefined): Promise<SearchHit[]> =>
      named(async (api) => {
        const q = (query ?? "").replace(/^swift:\/\//i, "").toLowerCase();
        const containers = (await api.list()).filter((c) => !c.name.endsWith("_segments"));
        const listings = await pool(
          containers,
          Math.max(1, Math.min(ctx.globals.workers, 8)),
          (c) => api.list(c.name),
          ctx.signal,
        );
        const hits: SearchHit[] = [];
        containers.forEach((c, i) => {
          for (const o of listings[i]) {
            const uri = uriOf(c.name, o.name);
            if (!uri) continue;
            if (q && !`${c.name}/${o.name}`.toLowerCase().includes(q)) continue;
            hits.push({
              uri,
              details: { size: o.bytes, last_modified: o.last_modified, etag: o.hash },
            });
          }
        });
        return hits;
      }),

    record: (image: string): Promise<RemoteRecord> =>
      named(async (api) => {
        const loc = locate(image);
        const head = await headObject(api, loc);
        const url = objectUrl(await api.storageUrl(), loc.container, loc.object);
        const etag = head.headers.get("etag");
        const modified = head.headers.get("last-modified");
        return {
          url: url.href,
          ...(digestOf(head.headers) ? { digest: digestOf(head.headers) } : {}),
          ...(sizeOf(head.headers) !== undefined ? { size: sizeOf(head.headers) } : {}),
          format: "sif",
          suggestedName: suggestedName(loc),
          metadata: objectMetadata(url, loc, etag, modified),
        };
      }),

    delete: (image: string): Promise<DeleteResult> =>
      named(async (api) => {
        const loc = locate(image);
        const head = await headObject(api, loc);
        const slo = head.headers.get("x-static-large-object")?.toLowerCase() === "true";
        const res = await api.request((s) => {
          const u = objectUrl(s, loc.container, loc.object);
          // A large object's segments go with its manifest.
          if (slo) u.searchParams.set("multipart-manifest", "delete");
          return u;
        }, { method: "DELETE" });
        await res.body?.cancel().catch(() => {});
        return { deleted: [uriOf(loc.container, loc.object)!] };
      }),
  };
}

/** Upload a file above the threshold as parallel segments and a static large object manifest. */
async function pushSegmented(
  ctx: Context,
  api: SwiftApi,
  loc: SwiftLocation,
  path: string,
  size: number,
  label: string,
): Promise<string> {
  const configured = parseBytes(
    "SREGISTRY_SWIFT_SEGMENT_SIZE",
    ctx.settings.get("SREGISTRY_SWIFT_SEGMENT_SIZE"),
    SEGMENT_SIZE,
  );
  const segmentSize = Math.max(configured, Math.ceil(size / MAX_SEGMENTS));
  const segments = segmentContainer(loc.container);
  await api.ensureContainer(segments);
  // The `swift` command's naming: <object>/slo/<mtime>/<size>/<segment size>/<index>.
  const mtime = ((await Deno.stat(path)).mtime?.getTime() ?? Date.now()) / 1000;
  const prefix = `${loc.object}/slo/${mtime.toFixed(6)}/${size}/${segmentSize}/`;
  const name = (i: number) => `${prefix}${String(i).padStart(8, "0")}`;
  // The digest is read while the segments go up; the manifest, sent last, carries it.
  const [digest, etags] = await Promise.all([
    hashFile(path).then((h) => h.digest),
    multipartUpload({
      file: path,
      partSize: segmentSize,
      concurrency: Math.max(1, Math.min(ctx.globals.workers, MAX_STREAMS)),
      progress: ctx.progress,
      label,
      signal: ctx.signal,
      async uploadPart(part) {
        const res = await api.request((s) => objectUrl(s, segments, name(part.index)), {
          method: "PUT",
          body: part.body as Uint8Array<ArrayBuffer>,
          headers: { "content-type": "application/octet-stream" },
        });
        await res.body?.cancel().catch(() => {});
        return (res.headers.get("etag") ?? "").replaceAll('"', "");
      },
    }),
  ]);
  const manifest = etags.map((etag, i) => ({
    path: `/${segments}/${name(i)}`,
    ...(etag ? { etag } : {}),
    size_bytes: Math.min(segmentSize, size - i * segmentSize),
  }));
  const res = await api.request((s) => {
    const u = objectUrl(s, loc.container, loc.object);
    u.searchParams.set("multipart-manifest", "put");
    return u;
  }, {
    method: "PUT",
    body: JSON.stringify(manifest),
    headers: { "content-type": "application/octet-stream", [DIGEST_HEADER]: digest },
  });
  await res.body?.cancel().catch(() => {});
  return digest;
}

/** The segment paths (`/container/name`) of a static large object's manifest. */
async function segmentsOf(ctx: Context, api: SwiftApi, loc: SwiftLocation): Promise<string[]> {
  const res = await api.request((s) => {
    const u = objectUrl(s, loc.container, loc.object);
    u.searchParams.set("multipart-manifest", "get");
    u.searchParams.set("format", "raw");
    return u;
  });
  const bytes = await readBody(ctx.http, res, {
    limit: 8 * 1024 * 1024,
    what: `The manifest of ${loc.container}/${loc.object}`,
    signal: ctx.signal,
  });
  const list = JSON.parse(new TextDecoder().decode(bytes)) as { path?: string }[];
  return list.map((e) => e.path).filter((p): p is string => typeof p === "string");
}

/** Delete the segments of a large object that a push has just replaced. */
async function removeSegments(ctx: Context, api: SwiftApi, paths: string[]): Promise<void> {
  await pool(paths, 4, async (p) => {
    const [container, ...rest] = p.replace(/^\//, "").split("/");
    const res = await api.request((s) => objectUrl(s, container, rest.join("/")), {
      method: "DELETE",
      accept: (st) => (st >= 200 && st < 300) || st === 404,
    });
    await res.body?.cancel().catch(() => {});
  }, ctx.signal);
  ctx.log.debug(`Deleted ${paths.length} segments of the replaced object`);
}

/** The swift:// client factory. */
/** What the catalog records of an object, for pull and record alike. */
function objectMetadata(
  url: URL,
  loc: { container: string; object: string },
  etag: string | null | undefined,
  lastModified: string | null | undefined,
): Record<string, string> {
  return {
    url: url.href,
    container: loc.container,
    object: loc.object,
    ...(etag ? { etag } : {}),
    ...(lastModified ? { last_modified: lastModified } : {}),
  };
}

export const swiftFactory: ClientFactory = {
  scheme: SCHEME,
  description:
    "OpenStack Swift (and Ceph RGW): push, pull, search, record and delete, one container per collection",
  settings: [
    {
      name: "SREGISTRY_SWIFT_AUTHTYPE",
      description:
        "preauth, keystonev3, or anything else (or unset) for the legacy v1 auth at SREGISTRY_SWIFT_URL/auth/",
    },
    {
      name: "SREGISTRY_SWIFT_URL",
      description:
        "v1 auth: the base the auth URL is SREGISTRY_SWIFT_URL + /auth/ of (tempauth: http://host:8080/auth/v1.0); keystonev3: the Keystone root",
    },
    { name: "SREGISTRY_SWIFT_USER", description: "v1 and keystonev3: the user (v1: account:user)" },
    {
      name: "SREGISTRY_SWIFT_TOKEN",
      description: "v1 and keystonev3: the key or password",
      secret: true,
    },
    {
      name: "SREGISTRY_SWIFT_OS_AUTH_TOKEN",
      description: "preauth: the X-Auth-Token to send",
      secret: true,
    },
    {
      name: "SREGISTRY_SWIFT_OS_STORAGE_URL",
      description: "preauth: the account's storage URL (https://host/v1/AUTH_account)",
    },
    {
      name: "SREGISTRY_SWIFT_PROJECT",
      description: "keystonev3: the project to scope the token to",
      default: "Default",
    },
    {
      name: "SREGISTRY_SWIFT_DOMAIN",
      description: "keystonev3: the user's and the project's domain",
      default: "Default",
    },
    {
      name: "SREGISTRY_SWIFT_REGION",
      description:
        "keystonev3: the catalog region of the object-store endpoint (default: the first)",
    },
    {
      name: "SREGISTRY_SWIFT_SEGMENT_THRESHOLD",
      description: "files larger than this go up as a static large object (bytes, or 64M, 5G)",
      default: "5G",
    },
    {
      name: "SREGISTRY_SWIFT_SEGMENT_SIZE",
      description:
        "the segment size of a static large object (raised to keep 1000 segments at most)",
      default: "64M",
    },
    {
      name: "SREGISTRY_SWIFT_PAGE_SIZE",
      description: "names per listing request (Swift's own maximum is 10000)",
      default: "10000",
    },
  ],
  create: createSwiftClient,
};
