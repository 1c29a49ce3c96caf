/**
 * The google-build:// client: images built by Google Cloud Build and stored in a Cloud Storage
 * bucket, as sregistry-cli's google_build client did.
 *
 * - `build` tars a recipe and its context (sha256-named, `source/<sha>.tar.gz` in the build bucket
 *   `<bucket>_cloudbuild`), or clones a git repository (the original's `build_repo`), fills the
 *   JSON template of templates/google-build/ (or SREGISTRY_GOOGLE_BUILD_TEMPLATE's), submits it,
 *   follows the build's log object and polls until it ends; on success the image object gets the
 *   original's metadata (plus the name fields google-storage reads) and the CLI records it.
 *   `--preview` returns the configuration; `--watch <id>` resumes watching a build; Ctrl-C leaves
 *   the build running and says how to resume.
 * - `search`, `pull`, `record`, `delete` and `push` work on the bucket's objects whose metadata says
 *   `type: container` (the original's pull and push crashed). Every call carries the token, so
 *   private objects can be pulled.
 *
 * Authentication is the service account of GOOGLE_APPLICATION_CREDENTIALS through the JWT-bearer
 * grant (core/auth/jwt_bearer.ts), one cloud-platform token for both APIs. The Cloud Storage side
 * (JSON API, uploads, object layout, search, pull, delete) is clients/gcs/, shared with
 * google-storage.
 * @module
 */

import { join } from "node:path";
import { type JwtBearerAuthorizer, readServiceAccount } from "../../core/auth/jwt_bearer.ts";
import { serviceAccountAuth } from "../../core/auth/service_account.ts";
import type { Authorizer } from "../../core/auth/types.ts";
import {
  ConfigError,
  InterruptedError,
  NetworkError,
  NotFoundError,
  UsageError,
} from "../../core/errors.ts";
import { hashFile } from "../../core/hasher.ts";
import { type ParsedName, parseImageName, removeUri } from "../../core/names.ts";
import type { Metadata } from "../../db/types.ts";
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
  type Build,
  type CloudBuild,
  cloudBuildOrigin,
  copyTarget,
  fillTemplate,
  getBuild,
  submitBuild,
  TERMINAL_STATES,
} from "./_cloudbuild.ts";
import {
  type Api,
  deleteObject,
  getObject,
  listObjects,
  makePublic,
  mediaUrl,
  type ObjectResource,
  patchMetadata,
  readFrom,
} from "../gcs/api.ts";
import { storageEndpoint } from "../gcs/endpoint.ts";
import { pushNames } from "../gcs/layout.ts";
import {
  deleteObjects,
  describeObject,
  ensureBucket,
  findObjects,
  pullObject,
  searchHits,
} from "../gcs/objects.ts";
import { uploadFile } from "../gcs/resumable_upload.ts";
import { collectEntries, writeTarGz } from "./_tar.ts";

const SCHEME = "google-build";
const CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS";
const PROJECT = "SREGISTRY_GOOGLE_PROJECT";
const BUCKET = "SREGISTRY_GOOGLE_STORAGE_BUCKET";
const PRIVATE = "SREGISTRY_GOOGLE_STORAGE_PRIVATE";
const EMULATOR = "STORAGE_EMULATOR_HOST";
const VERSION = "SREGISTRY_GOOGLE_BUILD_SINGULARITY_VERSION";
const CACHE = "SREGISTRY_GOOGLE_BUILD_CACHE";
const TIMEOUT = "SREGISTRY_GOOGLE_BUILD_TIMEOUT";
const BASE = "SREGISTRY_GOOGLE_BUILD_BASE";
const TEMPLATE = "SREGISTRY_GOOGLE_BUILD_TEMPLATE";
const REPO_TEMPLATE = "SREGISTRY_GOOGLE_BUILD_REPO_TEMPLATE";
const INTERVAL = "SREGISTRY_GOOGLE_BUILD_INTERVAL";
const WAIT = "SREGISTRY_GOOGLE_BUILD_WAIT";
/** What the error of a listing of a missing bucket says to do. */
const MISSING_BUCKET_FIX = `build an image to create it, or set ${BUCKET}`;

/** The scope of both APIs. */
export const CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform";

/** The original's default builder image tag. */
export const DEFAULT_SINGULARITY_VERSION = "v3.2.1-slim";

/** The original's build timeout: three hours. */
export const DEFAULT_TIMEOUT_S = 10800;

/**
 * The built-in templates. They are JSON modules imported with string literals, so `deno compile`
 * embeds them and a `jsr:` run fetches them with the code; users copy them from
 * templates/google-build/ and point a setting at the copy.
 */
const BUILTIN_TEMPLATES = {
  build: {
    file: "templates/google-build/build.json",
    load: () => import("../../templates/google-build/build.json", { with: { type: "json" } }),
  },
  repo: {
    file: "templates/google-build/build_repo.json",
    load: () => import("../../templates/google-build/build_repo.json", { with: { type: "json" } }),
  },
} as const;

/** Whether a setting's value means yes (set, and not a false word). */
export function isSet(value: string | undefined): boolean {
  return value !== undefined && !/^(|false|no|0|off)$/i.test(value.trim());
}

/**
 * A git repository argument: `https://host/owner/repo[.git][#ref]`, or `host/owner/repo` on
 * github.com or gitlab.com. Returns undefined for anything else (a local recipe).
 */
export function parseRepo(arg: string): { url: string; path: string; ref?: string } | undefined {
  const [spec, ref] = arg.split("#", 2);
  let s = spec;
  if (/^https?:\/\//i.test(s)) {
    s = s.replace(/^https?:\/\//i, "");
  } else if (!/^(github\.com|gitlab\.com)\//i.test(s)) {
    return undefined;
  }
  // A `.git` suffix, removed as a suffix (the original's rstrip(".git") ate letters).
  s = s.replace(/\/+$/, "").replace(/\.git$/i, "");
  if (!/^[^/\s]+\/[^\s]+$/.test(s)) return undefined;
  const path = s.slice(s.indexOf("/") + 1);
  return { url: `https://${s}.git`, path, ...(ref ? { ref } : {}) };
}

function seconds(value: string | undefined, setting: string, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value.trim().replace(/s$/, ""));
  if (!Number.isFinite(n) || n <= 0) {
    throw new ConfigError(
      `${setting} ${JSON.stringify(value)} is not a number of seconds; use for example 3600`,
    );
  }
  return n;
}

function createGoogleBuildClient(ctx: Context): Client {
  let authz: JwtBearerAuthorizer | undefined;

  const credentialsPath = () => ctx.settings.require(CREDENTIALS);

  const token = (): JwtBearerAuthorizer => {
    authz ??= serviceAccountAuth(ctx, {
      setting: CREDENTIALS,
      path: credentialsPath(),
      scopes: CLOUD_PLATFORM_SCOPE,
    });
    return authz;
  };

  /** The one token, bound to one origin per API (no token goes anywhere else). */
  const boundTo = (origin: string): Authorizer => {
    const t = token();
    return {
      origin,
      authorize: (r) => t.authorize(r),
      onChallenge: (res, r) => t.onChallenge!(res, r),
    };
  };

  let gcsCache: Api | undefined;
  const gcs = (): Api => {
    if (gcsCache) return gcsCache;
    const endpoint = storageEndpoint(ctx.env.get(EMULATOR));
    gcsCache = { http: ctx.http, endpoint, auth: boundTo(endpoint.origin), signal: ctx.signal };
    return gcsCache;
  };

  const project = async (): Promise<string> => {
    const set = ctx.settings.getAndUpdate(PROJECT);
    if (set) return set;
    const p = (await readServiceAccount(credentialsPath(), CREDENTIALS)).project_id;
    if (!p) {
      throw new ConfigError(`No Google Cloud project: set ${PROJECT} (the key names none)`);
    }
    return p;
  };

  let cbCache: CloudBuild | undefined;
  const cloudBuild = async (): Promise<CloudBuild> => {
    if (cbCache) return cbCache;
    const origin = cloudBuildOrigin(ctx.settings.get(BASE), BASE);
    cbCache = {
      http: ctx.http,
      origin,
      project: await project(),
      auth: boundTo(origin),
      signal: ctx.signal,
    };
    return cbCache;
  };

  const bucketName = (): string => {
    const set = ctx.settings.getAndUpdate(BUCKET);
    if (set) return set;
    let who = ctx.env.get("USER");
    if (!who) {
      try {
        who = Deno.hostname();
      } catch {
        // below
      }
    }
    if (!who) throw new ConfigError(`No bucket: set ${BUCKET}`);
    return `sregistry-gcloud-build-${who.toLowerCase().replace(/[^a-z0-9-]/g, "-")}`;
  };

  const ensure = (bucket: string) => ensureBucket(ctx, gcs(), bucket, project);

  const readTemplate = async (
    setting: string,
    builtin: keyof typeof BUILTIN_TEMPLATES,
  ): Promise<[unknown, string]> => {
    const custom = ctx.settings.get(setting);
    if (!custom) {
      const { file, load } = BUILTIN_TEMPLATES[builtin];
      // structuredClone: the module's object is shared, and filling placeholders must not touch it.
      return [structuredClone((await load()).default), file];
    }
    const source = `${JSON.stringify(custom)} (${setting})`;
    let text: string;
    try {
      text = await Deno.readTextFile(custom);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new ConfigError(
          `The build template ${source} does not exist: point ${setting} at a copy of ${
            BUILTIN_TEMPLATES[builtin].file
          }`,
        );
      }
      throw e;
    }
    try {
      return [JSON.parse(text), source];
    } catch (e) {
      throw new ConfigError(
        `The build template ${source} is not JSON (${(e as Error).message.split("\n")[0]})`,
      );
    }
  };

  /** The objects a name means, newest first: `url:tag.sif` and `url:tag@<version>.sif`. */
  async function resolve(image: string): Promise<{ names: ParsedName; objects: ObjectResource[] }> {
    const names = parseImageName(removeUri(image));
    const bucket = bucketName();
    return { names, objects: await findObjects(gcs(), bucket, names, { fix: MISSING_BUCKET_FIX }) };
  }

  async function one(image: string): Promise<{ names: ParsedName; object: ObjectResource }> {
    const { names, objects } = await resolve(image);
    if (objects.length === 0) {
      throw new NotFoundError(
        `No image ${SCHEME}://${names.uri} in bucket ${
          JSON.stringify(bucketName())
        }; list them with "sregistry search ${SCHEME}://"`,
      );
    }
    return { names, object: objects[0] };
  }

  const describe = (o: ObjectResource, names?: ParsedName): RemoteRecord =>
    describeObject(gcs(), o, names, ["md5Hash", "crc32c"]);

  /** Print the log lines written since `state.offset` (the log object grows while a build runs). */
  async function followLog(b: Build, state: { offset: number; partial: string; off?: boolean }) {
    if (state.off || !b.logsBucket) return;
    const bucket = b.logsBucket.replace(/^gs:\/\//, "").replace(/\/.*$/, "");
    let bytes: Uint8Array;
    try {
      bytes = await readFrom(gcs(), bucket, `log-${b.id}.txt`, state.offset);
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      state.off = true;
      ctx.log.warning(
        `Cannot follow the build's log in gs://${bucket} (${(e as Error).message}); see ${
          b.logUrl ?? "the Cloud Console"
        }`,
      );
      return;
    }
    state.offset += bytes.length;
    const text = state.partial + new TextDecoder().decode(bytes);
    const lines = text.split("\n");
    state.partial = lines.pop() ?? "";
    for (const l of lines) ctx.log.info(`[build] ${l}`);
  }

  /** After SUCCESS: the image object's metadata, as the original's finish_build wrote it. */
  async function finish(b: Build, names: ParsedName | undefined): Promise<Metadata> {
    const target = copyTarget(b);
    const g = gcs();
    const o = await getObject(g, target.bucket, target.object);
    if (!o) {
      throw new NotFoundError(
        `Build ${b.id} succeeded but gs://${target.bucket}/${target.object} is not there; see ${
          b.logUrl ?? "its log"
        }`,
      );
    }
    const stem = target.object.replace(/\.sif$/, "");
    const parsed = names ?? parseImageName(stem);
    const publicUrl = `${g.endpoint.origin}/${target.bucket}/${target.object}`;
    let isPublic = false;
    if (!isSet(ctx.settings.get(PRIVATE))) {
      const refused = await makePublic(g, target.bucket, target.object);
      if (refused) {
        ctx.log.warning(
          `${target.object} stays private: the bucket refused a public ACL (${refused}); set ${PRIVATE}=true to skip this`,
        );
      } else isPublic = true;
    }
    const step0 = b.steps?.find((s) => /singularity|apptainer/i.test(s.name)) ?? b.steps?.[0];
    const meta: Record<string, string> = {
      crc32c: o.crc32c ?? "",
      media_link: o.mediaLink ?? mediaUrl(g, o).href,
      self_link: o.selfLink ?? "",
      md5sum: o.md5Hash ?? "",
      size: o.size,
      type: "container",
      buildCommand: (step0?.args ?? []).join(" "),
      builder: step0?.name ?? "",
      storageSourceBucket: b.source?.storageSource?.bucket ?? "",
      storageSourceObject: b.source?.storageSource?.object ?? "",
      // The name fields google-storage and our pull read.
      collection: parsed.collection,
      image: parsed.image,
      tag: parsed.tag,
      url: parsed.url,
      uri: `${parsed.url}:${parsed.tag}`,
      storage: target.object,
      buildId: b.id,
    };
    const patched = await patchMetadata(g, target.bucket, target.object, meta);
    const src = b.source?.storageSource;
    if (src?.bucket && src.object && !isSet(ctx.settings.get(CACHE))) {
      await deleteObject(g, src.bucket, src.object).catch((e) =>
        ctx.log.warning(`The build context gs://${src.bucket}/${src.object} stays: ${e.message}`)
      );
    }
    const record = describe(patched);
    const uri = `${parsed.url}:${parsed.tag}`;
    return {
      id: b.id,
      status: b.status,
      name: `${SCHEME}://${uri}`,
      url: record.url,
      ...(isPublic ? { publicUrl } : {}),
      bucket: target.bucket,
      object: target.object,
      size: record.size,
      digest: record.digest,
      md5Hash: patched.md5Hash,
      logUrl: b.logUrl,
      createTime: b.createTime,
      finishTime: b.finishTime,
      built: {
        uri,
        url: record.url,
        digest: record.digest,
        size: record.size,
        metadata: {
          ...record.metadata,
          buildId: b.id,
          ...(b.logUrl ? { logUrl: b.logUrl } : {}),
          ...(b.results ? { results: b.results } : {}),
        },
      },
    };
  }

  /** Poll a build to its end, following its log; Ctrl-C leaves it running. */
  async function watch(id: string, names: ParsedName | undefined, display: string) {
    const cb = await cloudBuild();
    const log = { offset: 0, partial: "" };
    const interval = seconds(ctx.settings.get(INTERVAL), INTERVAL, 15) * 1000;
    const timeout = seconds(ctx.settings.get(TIMEOUT), TIMEOUT, DEFAULT_TIMEOUT_S) * 1000;
    let build: Build | undefined;
    try {
      build = await ctx.poll<Build>({
        label: `build ${id} of ${display}`,
        interval,
        maxInterval: Math.max(interval, 30_000),
        // Cloud Build ends the build at its own timeout; by default allow it time to say so.
        timeout: seconds(ctx.settings.get(WAIT), WAIT, timeout / 1000 + 600) * 1000,
        signal: ctx.signal,
        check: async () => {
          const b = await getBuild(cb, id);
          await followLog(b, log);
          const status = b.status ?? "STATUS_UNKNOWN";
          if (TERMINAL_STATES.has(status)) {
            if (log.partial) ctx.log.info(`[build] ${log.partial}`);
            log.partial = "";
            if (status !== "SUCCESS") {
              throw new NetworkError(
                `Build ${id} of ${display} ended ${status}: ${
                  b.statusDetail ?? "no detail given"
                }; logs: ${b.logUrl ?? `gs://${b.logsBucket ?? "?"}/log-${id}.txt`}`,
              );
            }
            return { done: true, value: b, status };
          }
          return { done: false, status };
        },
      });
    } catch (e) {
      const resume = `sregistry build --watch ${id} --name ${SCHEME}://${display}`;
      if (e instanceof InterruptedError || ctx.signal.aborted) {
        throw new InterruptedError(
          `Stopped watching build ${id}; it goes on in Cloud Build. Resume with: ${resume}`,
        );
      }
      if (e instanceof NetworkError && e.message.startsWith("Gave up waiting")) {
        throw new NetworkError(`${e.message}; resume watching with: ${resume}`);
      }
      throw e;
    }
    return await finish(build!, names);
  }

  return {
    name: SCHEME,

    async build(recipe, options): Promise<Metadata> {
      const given = removeUri(options.name).replace(/^\/+/, "");
      if (options.watch) {
        // The image is the one the build copies (its cp step), whatever --name says.
        const names = given ? parseImageName(given) : undefined;
        return await watch(options.watch, undefined, names ? `${names.url}:${names.tag}` : "");
      }
      const repo = parseRepo(recipe);
      const names = parseImageName(
        given || (repo?.path ?? ""),
        repo && !given ? { tag: options.extra[0]?.match(/\.([^./]+)$/)?.[1] } : {},
      );
      if (!given && !repo) {
        throw new UsageError(
          `Give the image a name: --name ${SCHEME}://<collection>/<image>[:tag]`,
        );
      }
      const display = `${names.url}:${names.tag}`;
      const containerName = `${names.image}:${names.tag}.sif`;
      const bucket = bucketName();
      const values: Record<string, string | undefined> = {
        SINGULARITY_VERSION: ctx.settings.get(VERSION) || DEFAULT_SINGULARITY_VERSION,
        CONTAINER_NAME: containerName,
        BUCKET: bucket,
        OBJECT: `${names.collection}/${containerName}`,
        COLLECTION: names.collection,
        IMAGE: names.image,
        TAG: names.tag,
        TIMEOUT: String(Math.round(seconds(ctx.settings.get(TIMEOUT), TIMEOUT, DEFAULT_TIMEOUT_S))),
      };
      let config: Record<string, unknown>;
      let context: { file: string; dir: string; bucket: string; object: string } | undefined;
      if (repo) {
        values.REPO_URL = repo.url;
        values.REF = repo.ref;
        values.RECIPE = options.extra[0] ?? "Singularity";
        const [tpl, source] = await readTemplate(REPO_TEMPLATE, "repo");
        config = fillTemplate(tpl, values, source);
      } else {
        try {
          if (!(await Deno.stat(recipe)).isFile) throw new Error();
        } catch {
          throw new NotFoundError(`The recipe ${JSON.stringify(recipe)} is not a file`);
        }
        const entries = await collectEntries(Deno.cwd(), [recipe, ...options.extra]);
        const recipeEntry = entries.find((e) => e.path === join(Deno.cwd(), recipe)) ??
          (await collectEntries(Deno.cwd(), [recipe]))[0];
        const dir = await Deno.makeTempDir({ dir: ctx.globals.tmpDir, prefix: "sregistry-gb-" });
        const file = join(dir, "build.tar.gz");
        const { sha256 } = await writeTarGz(entries, file);
        ctx.log.verbose(`Build context: ${entries.length} files, sha256 ${sha256}`);
        context = { file, dir, bucket: `${bucket}_cloudbuild`, object: `source/${sha256}.tar.gz` };
        values.RECIPE = recipeEntry.name;
        values.SOURCE_BUCKET = context.bucket;
        values.SOURCE_OBJECT = context.object;
        const [tpl, source] = await readTemplate(TEMPLATE, "build");
        config = fillTemplate(tpl, values, source);
      }
      try {
        if (options.preview) return { preview: true, name: `${SCHEME}://${display}`, config };
        const cb = await cloudBuild();
        if (context) {
          const g = gcs();
          await ensure(context.bucket);
          if (await getObject(g, context.bucket, context.object)) {
            ctx.log.verbose(`gs://${context.bucket}/${context.object} is there already`);
          } else {
            await uploadFile(g, context.bucket, context.object, context.file);
          }
        }
        await ensure(bucket);
        const b = await submitBuild(cb, config);
        ctx.log.info(
          `Build ${b.id} of ${display} submitted${b.logUrl ? `; logs: ${b.logUrl}` : ""}`,
        );
        return await watch(b.id, names, display);
      } finally {
        if (context) await Deno.remove(context.dir, { recursive: true }).catch(() => {});
      }
    },

    async pull(image: string, into: PullTarget): Promise<PulledImage> {
      const { names, object } = await one(image);
      return await pullObject(ctx, gcs(), object, describe(object, names), into, removeUri(image));
    },

    async record(image: string): Promise<RemoteRecord> {
      const { names, object } = await one(image);
      return describe(object, names);
    },

    async push(path, options) {
      const { digest, size } = await hashFile(path);
      const hex = digest.slice("sha256:".length);
      const names = pushNames(options.name, options.tag, hex);
      const bucket = bucketName();
      await ensure(bucket);
      const g = gcs();
      const uploaded = await uploadFile(
        g,
        bucket,
        names.storage,
        path,
        "application/octet-stream",
      );
      const o = await patchMetadata(g, bucket, uploaded.name, {
        collection: names.collection,
        image: names.image,
        tag: names.tag,
        url: names.url,
        version: names.version ?? hex,
        storage: names.storage,
        uri: names.uri,
        original: names.original,
        type: "container",
        sha256sum: hex,
      });
      if (!isSet(ctx.settings.get(PRIVATE))) {
        const refused = await makePublic(g, bucket, o.name);
        if (refused) ctx.log.warning(`${o.name} stays private (${refused})`);
      }
      return { url: o.mediaLink ?? mediaUrl(g, o).href, digest, size };
    },

    async search(query: string | undefined): Promise<SearchHit[]> {
      const objects = await listObjects(gcs(), bucketName(), undefined, MISSING_BUCKET_FIX);
      return searchHits(
        SCHEME,
        objects,
        query,
        (o) => o.metadata?.buildId ? { build: o.metadata.buildId } : {},
      );
    },

    async delete(image: string, options: { force?: boolean }) {
      const { names, objects } = await resolve(image);
      if (objects.length === 0) await one(image);
      return await deleteObjects(ctx, gcs(), SCHEME, names, objects, options.force);
    },
  };
}

/** The google-build client factory. */
export const googleBuildFactory: ClientFactory = {
  scheme: SCHEME,
  aliases: ["google_build"],
  description: "Google Cloud Build: build images remotely, stored in a Cloud Storage bucket",
  settings: [
    {
      name: CREDENTIALS,
      description: "path to the service account key JSON (client_email, private_key, token_uri)",
      required: true,
    },
    { name: PROJECT, description: "the project builds run in", default: "the key's project_id" },
    {
      name: BUCKET,
      description: "the bucket built images go to (the context goes to <bucket>_cloudbuild)",
      default: "sregistry-gcloud-build-$USER (or the host name)",
    },
    { name: PRIVATE, description: "any value but false: do not make built images public" },
    {
      name: VERSION,
      description: "tag of the singularityware/singularity builder image",
      default: DEFAULT_SINGULARITY_VERSION,
    },
    { name: CACHE, description: "any value but false: keep the uploaded build context" },
    {
      name: TIMEOUT,
      description: "the build's timeout in seconds",
      default: String(DEFAULT_TIMEOUT_S),
    },
    {
      name: INTERVAL,
      description: "first pause between build status checks, in seconds",
      default: "15",
    },
    {
      name: WAIT,
      description: "how long to watch a build before giving up (it goes on), in seconds",
      default: "the build's timeout + 600",
    },
    {
      name: BASE,
      description: "Cloud Build API origin (plain http only for loopback)",
      default: "https://cloudbuild.googleapis.com",
    },
    {
      name: TEMPLATE,
      description: "a JSON build template for local recipes",
      default: "templates/google-build/build.json",
    },
    {
      name: REPO_TEMPLATE,
      description: "a JSON build template for git repositories",
      default: "templates/google-build/build_repo.json",
    },
    { name: EMULATOR, description: "host[:port] or URL of a storage emulator (tests)" },
  ],
  create: createGoogleBuildClient,
};
