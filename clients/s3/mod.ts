/**
 * The s3:// client: images in an S3 bucket (AWS, or a compatible server through SREGISTRY_S3_BASE)
 * under sregistry-cli's keys and metadata, so either tool finds what the other pushed:
 * `collection/image:tag[@version].sif` with `x-amz-meta-sizemb`, `x-amz-meta-client: sregistry`
 * and `x-amz-meta-type: container`, plus our `x-amz-meta-digest` (sha256), checked on pull.
 *
 * Unlike the original: a missing bucket is created only on push and with a LocationConstraint
 * outside us-east-1 (`--force` skips the question); large pushes are parallel, resumable multipart
 * uploads; pulls are parallel ranged, resumable and verified; search follows every ListObjectsV2
 * page and reads metadata in parallel for the rows it shows only; credentials are never written to
 * the secrets file.
 * @module
 */

import { basename } from "node:path";
import { sigV4Auth } from "../../core/auth/sigv4.ts";
import { AuthError, ConfigError, NotFoundError, UnsupportedError } from "../../core/errors.ts";
import { createHttp, type Http, isLoopback } from "../../core/http.ts";
import { hashFile } from "../../core/hasher.ts";
import { parseImageName, removeUri } from "../../core/names.ts";
import { pool } from "../../core/pool.ts";
import { download, MAX_STREAMS } from "../../core/transfer/mod.ts";
import type {
  Client,
  ClientFactory,
  Context,
  PulledImage,
  PullTarget,
  PushOptions,
  PushResult,
  RemoteRecord,
  SearchHit,
} from "../types.ts";
import { listObjects, objectUrl, s3Request, type S3Target, userMetadata } from "./api.ts";
import { findCredentials } from "./credentials.ts";
import { multipartPush, savedUploadFor } from "./multipart.ts";

const MiB = 1024 * 1024;
/** Files at least this large are pushed as multipart uploads (default). */
export const MULTIPART_THRESHOLD = 64 * MiB;
/** Default part size. */
export const PART_SIZE = 16 * MiB;
/** S3's smallest part (but the last). */
const MIN_PART = 5 * MiB;
/** The most parts: AWS allows 10,000, Swift's s3api 1,000 by default. */
const MAX_PARTS = 1000;

const ADJECTIVES = [
  "bloated",
  "boopy",
  "butterscotch",
  "chocolate",
  "confused",
  "crusty",
  "cowy",
  "dinosaur",
  "doopy",
  "expensive",
  "fugly",
  "fuzzy",
  "gassy",
  "goodbye",
  "grated",
  "hairy",
  "hello",
  "misunderstood",
  "muffled",
  "nerdy",
  "peachy",
  "persnickety",
  "phat",
  "placid",
  "psycho",
  "quirky",
  "red",
  "rainbow",
  "salted",
  "scruptious",
  "sticky",
  "strawberry",
  "swampy",
  "tart",
  "tasty",
  "wobbly",
  "wonky",
  "yummy",
  "zesty",
]; // deno-fmt-ignore
const NOUNS = [
  "avocado", "bicycle", "buttface", "cat", "cattywampus", "chair", "cupcake", "destiny",
  "earthworm", "egg", "frito", "fork", "general", "hobbit", "house", "kitty", "leader", "lemon",
  "lettuce", "lizard", "malarkey", "mango", "muffin", "noodle", "nunchucks", "omelette", "onion",
  "parrot", "peanut", "pancake", "pastry", "peas", "pencil", "platanos", "poo", "puppy", "rabbit",
  "salad", "sundae", "taco", "toaster", "train", "underoos", "van", "voodoo", "wigglebottom",
]; // deno-fmt-ignore

/** The original's default bucket name: `sregistry-<adjective>-<noun>-<4 digits>`. */
export function robotBucketName(random: () => number = Math.random): string {
  const pick = (a: string[]) => a[Math.floor(random() * a.length)];
  const digits = String(Math.floor(random() * 10000)).padStart(4, "0");
  return `sregistry-${pick(ADJECTIVES)}-${pick(NOUNS)}-${digits}`;
}

function positiveInt(ctx: Context, name: string, fallback: number, unit = 1): number {
  const raw = ctx.settings.get(name);
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    throw new ConfigError(`${name} must be a positive number, not "${raw}"`);
  }
  return Math.round(n * unit);
}

/** The object key of an image name, as sregistry-cli wrote it. */
export function keyOf(name: string, tag?: string): string {
  return parseImageName(removeUri(name), tag ? { tag } : {}).storage;
}

/** Levenshtein distance, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** "M-D-YYYY", the original's date column. */
function shortDate(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? ""
    : `${d.getUTCMonth() + 1}-${d.getUTCDate()}-${d.getUTCFullYear()}`;
}

function createS3Client(ctx: Context): Client {
  // Everything is resolved on first use: create() does no I/O.
  let target: S3Target | undefined;
  let warnedAnonymous = false;

  function resolve(): S3Target {
    if (target) return target;
    const signature = ctx.settings.get("SREGISTRY_S3_SIGNATURE");
    if (signature && !/^(s3v4|v4|4)$/i.test(signature)) {
      throw new UnsupportedError(
        `SREGISTRY_S3_SIGNATURE="${signature}" asks for SigV2, which is not supported; unset it or set it to s3v4`,
      );
    }
    const found = findCredentials(ctx.settings, ctx.env);
    if (found.incomplete) {
      ctx.log.warning(
        `${found.incomplete} is not set, so AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are ignored`,
      );
    }
    const region = ctx.env.get("AWS_REGION") || ctx.env.get("AWS_DEFAULT_REGION") ||
      found.profileRegion || "us-east-1";
    const base = ctx.settings.get("SREGISTRY_S3_BASE");
    const endpoint = base ? base.replace(/\/+$/, "") : `https://s3.${region}.amazonaws.com`;
    let bucket = ctx.settings.get("SREGISTRY_S3_BUCKET");
    if (!bucket) {
      // Sticky, as in the original: generated once, then kept in the secrets file.
      bucket = robotBucketName();
      ctx.settings.update("SREGISTRY_S3_BUCKET", bucket);
      ctx.log.info(`Using new bucket name "${bucket}" (saved as SREGISTRY_S3_BUCKET)`);
    }
    const creds = found.credentials;
    if (creds) {
      ctx.log.addSecret(creds.secretAccessKey);
      ctx.log.addSecret(creds.sessionToken);
    } else if (!warnedAnonymous) {
      warnedAnonymous = true;
      ctx.log.warning(
        "No AWS credentials found (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials): sending anonymous unsigned requests",
      );
    }
    const caBundle = ctx.env.get("AWS_CA_BUNDLE");
    const http: Http = caBundle
      ? createHttp({
        log: ctx.http.log,
        caFile: caBundle,
        caFileSetting: "AWS_CA_BUNDLE",
        insecure: ctx.globals.httpsNoVerify,
        env: ctx.env,
      })
      : ctx.http;
    const hint = found.source === "environment"
      ? "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)"
      : found.source === "none"
      ? "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (none are set: requests were anonymous)"
      : `the keys of ${found.source} (AWS_PROFILE), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`;
    const pathStyle = !!base || bucket.includes(".");
    target = {
      http,
      endpoint,
      pathStyle,
      bucket,
      region,
      credentialHint: hint,
      signal: ctx.signal,
      auth: creds
        ? {
          ...sigV4Auth({ credentials: creds, region, service: "s3", log: ctx.log }),
          origin: objectUrl({ endpoint, pathStyle, bucket } as S3Target).origin,
        }
        : undefined,
    };
    return target;
  }

  /** HEAD an object: its headers, or exit 3 with near names. */
  async function head(t: S3Target, key: string): Promise<Response> {
    const res = await s3Request(t, { method: "HEAD", key, ok: [404] });
    if (res.status !== 404) return res;
    // A HEAD 404 does not say whether the bucket exists.
    const bucket = await s3Request(t, { method: "HEAD", ok: [404] });
    if (bucket.status === 404) {
      throw new NotFoundError(
        `Bucket "${t.bucket}" does not exist at ${
          new URL(t.endpoint).host
        }; check SREGISTRY_S3_BUCKET`,
      );
    }
    const near = (await listObjects(t).catch(() => []))
      .map((o) => o.key)
      .map((k) => ({ k, d: distance(k, key) }))
      .filter((x) => x.d <= Math.max(3, key.length / 3))
      .sort((a, b) => a.d - b.d)
      .slice(0, 3)
      .map((x) => `s3://${x.k.replace(/\.sif$/, "")}`);
    throw new NotFoundError(
      `Cannot find "${key}" in bucket "${t.bucket}"${
        near.length
          ? `; did you mean ${near.join(", ")}?`
          : "; list the images with sregistry search s3://"
      }`,
    );
  }

  function recordOf(t: S3Target, key: string, res: Response): RemoteRecord {
    const meta = userMetadata(res.headers);
    const size = Number(res.headers.get("content-length") ?? NaN);
    const digest = /^sha256:[0-9a-f]{64}$/.test(meta.digest ?? "") ? meta.digest : undefined;
    const etag = res.headers.get("etag") ?? undefined;
    return {
      url: objectUrl(t, key).href,
      digest,
      size: Number.isFinite(size) ? size : undefined,
      suggestedName: key.replace(/\.sif$/, ""),
      metadata: {
        ...meta,
        ...(etag ? { etag } : {}),
        ...(res.headers.get("last-modified")
          ? { last_modified: res.headers.get("last-modified")! }
          : {}),
      },
    };
  }

  async function ensureBucket(t: S3Target, force: boolean) {
    const res = await s3Request(t, { method: "HEAD", ok: [404] });
    await res.body?.cancel();
    if (res.status !== 404) return;
    if (!t.auth) {
      throw new AuthError(
        `Bucket "${t.bucket}" does not exist, and creating it needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
      );
    }
    if (
      !force &&
      !(await ctx.prompt.confirm(`Bucket "${t.bucket}" does not exist. Create it?`, {
        default: false,
      }))
    ) {
      throw new NotFoundError(
        `Bucket "${t.bucket}" does not exist; answer yes, pass --force to create it, or set SREGISTRY_S3_BUCKET`,
      );
    }
    const body = t.region === "us-east-1" ? undefined : new TextEncoder().encode(
      `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>${t.region}</LocationConstraint></CreateBucketConfiguration>`,
    );
    const made = await s3Request(t, { method: "PUT", body, ok: [409] });
    await made.body?.cancel();
    ctx.log.info(`Created bucket "${t.bucket}"`);
  }

  const streamsFor = (url: URL) =>
    isLoopback(url.host) ? 1 : Math.min(ctx.globals.workers, MAX_STREAMS);

  return {
    name: ctx.name,

    async pull(image: string, into: PullTarget): Promise<PulledImage> {
      const t = resolve();
      const key = keyOf(image);
      const res = await head(t, key);
      const rec = recordOf(t, key, res);
      const url = objectUrl(t, key);
      // Objects pushed by sregistry-cli carry no digest: their size is still checked.
      const r = await download({
        http: t.http,
        url,
        dest: into.resumable,
        auth: t.auth,
        expectedDigest: rec.digest,
        expectedSize: rec.size,
        progress: ctx.progress,
        signal: ctx.signal,
        parallel: positiveInt(ctx, "SREGISTRY_S3_STREAMS", streamsFor(url)),
        serverDigest: false,
        label: basename(key),
      });
      await Deno.rename(into.resumable, into.path);
      return { ...rec, file: into.path, format: "unknown", digest: r.digest, size: r.size };
    },

    async record(image: string): Promise<RemoteRecord> {
      const t = resolve();
      const key = keyOf(image);
      const res = await head(t, key);
      return recordOf(t, key, res);
    },

    async push(path: string, options: PushOptions): Promise<PushResult> {
      const t = resolve();
      const key = keyOf(options.name, options.tag);
      await ensureBucket(t, options.force ?? false);
      const stat = await Deno.stat(path);
      const size = stat.size;
      const mtimeMs = stat.mtime?.getTime() ?? 0;
      const threshold = positiveInt(
        ctx,
        "SREGISTRY_S3_MULTIPART_THRESHOLD",
        MULTIPART_THRESHOLD,
        MiB,
      );
      let partSize = Math.max(MIN_PART, positiveInt(ctx, "SREGISTRY_S3_PART_SIZE", PART_SIZE, MiB));
      partSize = Math.max(partSize, Math.ceil(size / MAX_PARTS));
      const concurrency = positiveInt(ctx, "SREGISTRY_S3_CONCURRENCY", 4);
      const multipart = size >= threshold && size > partSize;
      // A resumed upload already knows the file's digest: no second pass over a big file.
      const saved = multipart
        ? savedUploadFor({ target: t, key, store: ctx.credentials, size, mtimeMs })
        : undefined;
      const digest = saved?.digest ?? (await hashFile(path)).digest;
      const headers: Record<string, string> = {
        "content-type": "application/octet-stream",
        "x-amz-meta-sizemb": String(Math.floor(size / MiB)),
        "x-amz-meta-client": "sregistry",
        "x-amz-meta-type": "container",
        "x-amz-meta-digest": digest,
      };
      const acl = ctx.settings.get("SREGISTRY_S3_OBJECT_ACL");
      if (acl) headers["x-amz-acl"] = acl;
      if (multipart) {
        await multipartPush({
          target: t,
          key,
          file: path,
          size,
          mtimeMs,
          digest,
          headers,
          partSize,
          concurrency,
          store: ctx.credentials,
          progress: ctx.progress,
          label: basename(key),
          signal: ctx.signal,
          debug: (m) => ctx.log.debug(m),
        });
      } else {
        const body = await Deno.readFile(path);
        const res = await s3Request(t, { method: "PUT", key, headers, body });
        await res.body?.cancel();
      }
      return { url: `s3://${key.replace(/\.sif$/, "")}`, digest, size };
    },

    async search(query: string | undefined): Promise<SearchHit[]> {
      const t = resolve();
      const all = await listObjects(t);
      // The original's filter: a plain substring of the key.
      const rows = query ? all.filter((o) => o.key.includes(query)) : all;
      const metas = await pool(rows, 16, async (o) => {
        try {
          const res = await s3Request(t, { method: "HEAD", key: o.key });
          return userMetadata(res.headers);
        } catch (e) {
          if (e instanceof AuthError) throw e;
          ctx.log.warning(`Cannot read the metadata of "${o.key}": ${(e as Error).message}`);
          return undefined;
        }
      }, ctx.signal);
      return rows.map((o, i) => ({
        uri: `s3://${o.key.replace(/\.sif$/, "")}`,
        details: {
          date: shortDate(o.lastModified),
          size: metas[i]?.sizemb !== undefined
            ? `${metas[i]!.sizemb}MB`
            : `${Math.floor(o.size / MiB)}MB`,
        },
      }));
    },

    async delete(image: string): Promise<{ deleted: string[] }> {
      const t = resolve();
      const key = keyOf(image);
      const res = await head(t, key);
      await res.body?.cancel();
      const del = await s3Request(t, { method: "DELETE", key });
      await del.body?.cancel();
      return { deleted: [`s3://${key.replace(/\.sif$/, "")}`] };
    },
  };
}

/** The s3:// client. */
export const s3Factory: ClientFactory = {
  scheme: "s3",
  description: "Amazon S3 or a compatible object store (MinIO, Ceph, Swift s3api)",
  settings: [
    {
      name: "SREGISTRY_S3_BASE",
      description: "Endpoint of an S3-compatible server (path-style addressing); unset for AWS",
    },
    {
      name: "SREGISTRY_S3_BUCKET",
      description:
        "The bucket; a generated sregistry-<adjective>-<noun>-<digits> name is saved when unset",
    },
    { name: "SREGISTRY_S3_OBJECT_ACL", description: "Canned ACL given on push, e.g. public-read" },
    {
      name: "SREGISTRY_S3_SIGNATURE",
      description: "s3v4 (the only one supported; the original's s3 = SigV2 is refused)",
      default: "s3v4",
    },
    {
      name: "SREGISTRY_S3_MULTIPART_THRESHOLD",
      description: "Files of at least this many MiB are pushed in parts",
      default: "64",
    },
    { name: "SREGISTRY_S3_PART_SIZE", description: "Part size in MiB (at least 5)", default: "16" },
    { name: "SREGISTRY_S3_CONCURRENCY", description: "Parts uploaded at once", default: "4" },
    {
      name: "SREGISTRY_S3_STREAMS",
      description: "Parallel ranged streams per pull (default: 1 on loopback, else up to 4)",
    },
    { name: "AWS_ACCESS_KEY_ID", description: "Access key id (else AWS_PROFILE's shared files)" },
    { name: "AWS_SECRET_ACCESS_KEY", description: "Secret access key", secret: true },
    {
      name: "AWS_SESSION_TOKEN",
      description: "Session token of temporary credentials",
      secret: true,
    },
  ],
  create: createS3Client,
};
