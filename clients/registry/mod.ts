/**
 * Singularity Registry Server (`registry://`): pull (public and private collections), push, delete,
 * search, labels, build and record, with the `SREGISTRY-HMAC-SHA256` signed header
 * (core/auth/hmac.ts). Wire behaviour follows ../shared/reference/registry-server-behaviour.md.
 *
 * The original's bugs, fixed here: the signature is made per attempt and re-made once when a
 * refusal comes after the hour turned; listings follow `next` and end; a name-only or
 * collection/name search works; the upload and builder URLs are computed on the URL's path
 * segments, not by string surgery; a host in the URI is honoured by every command; `@version` is
 * honoured on pull; the weekly limit's HTTP 200 body `429` is a clear error, not a crash.
 * @module
 */

import type {
  Client,
  ClientFactory,
  Context,
  DeleteResult,
  PulledImage,
  PullTarget,
  PushResult,
  RemoteRecord,
  SearchHit,
} from "../types.ts";
import {
  hmacTimestamp,
  type RegistryCredentials,
  registryHmacAuth,
  type RegistryHmacAuthorizer,
  type RegistrySignatureKind,
  type SignedImage,
} from "../../core/auth/hmac.ts";
import {
  AuthError,
  ConfigError,
  IntegrityError,
  NetworkError,
  NotFoundError,
  UsageError,
} from "../../core/errors.ts";
import { readBody } from "../../core/http.ts";
import { type ParsedName, parseImageName, removeUri } from "../../core/names.ts";
import { nextProgressId } from "../../core/progress_events.ts";
import { download } from "../../core/transfer/mod.ts";
import type { Metadata } from "../../db/types.ts";
import { type Endpoints, resolveEndpoints } from "./_endpoints.ts";
import { md5File, newBoundary, streamForm } from "./_multipart.ts";

export { endpointsOf, resolveEndpoints } from "./_endpoints.ts";

const SCHEME = "registry";

/** The most listing pages followed: a server whose `next` never ends stops here. */
export const MAX_PAGES = 10_000;

/** Build states of the server's Google Cloud Build plugin that end a build unsuccessfully. */
const FAILED_STATES = new Set(["FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"]);

/** A container as the server's API answers it (`SingleContainerSerializer`). */
export interface RegistryContainer {
  id?: number;
  name?: string;
  image?: string | null;
  tag?: string;
  version?: string | null;
  collection?: string;
  frozen?: boolean;
  metadata?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Options of {@link createRegistryFactory}. */
export interface RegistryFactoryOptions {
  /** The clock for signatures, in ms (tests cross an hour with it). */
  now?: () => number;
  /** First pause between build status checks in ms (default 2000). */
  buildInterval?: number;
}

const detailOf = (text: string): string => {
  try {
    const j = JSON.parse(text);
    if (j && typeof j.detail === "string") return j.detail;
    if (j && typeof j.message === "string") return j.message;
  } catch {
    // not JSON
  }
  const t = text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
  return t.length > 120 ? `${t.slice(0, 117)}...` : t;
};

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** The factory with injected clock and poll interval (tests); {@link registryFactory} is the default. */
export function createRegistryFactory(options: RegistryFactoryOptions = {}): ClientFactory {
  const now = options.now ?? Date.now;
  return {
    scheme: SCHEME,
    description: "Singularity Registry Server: pull, push, delete, search, labels, build, record",
    settings: [
      {
        name: "SREGISTRY_REGISTRY_BASE",
        description:
          "the server's URL (https://host or https://host/api); the secrets file's legacy registry.base is read too",
      },
      {
        name: "SREGISTRY_REGISTRY_USERNAME",
        description: "user name for signed requests (legacy key registry.username)",
      },
      {
        name: "SREGISTRY_REGISTRY_TOKEN",
        description: "API token for signed requests (legacy key registry.token)",
        secret: true,
      },
      {
        name: "SREGISTRY_REGISTRY_NOHTTPS",
        description:
          "true: plain http for a host named in the URI (default: https, http on loopback)",
      },
    ],
    create: (ctx) => createRegistryClient(ctx, now, options.buildInterval ?? 2000),
  };
}

/** The registry client factory. */
export const registryFactory: ClientFactory = createRegistryFactory();

function createRegistryClient(ctx: Context, now: () => number, buildInterval: number): Client {
  const legacy = (key: string): string | undefined => {
    const v = ctx.settings.all()[key];
    return typeof v === "string" && v !== "" ? v : undefined;
  };
  const base = () => {
    const b = ctx.settings.get("SREGISTRY_REGISTRY_BASE") || legacy("base");
    if (b !== undefined && !ctx.settings.all().SREGISTRY_REGISTRY_BASE) {
      // As the original: a base given once is kept in the secrets file (it is no secret).
      ctx.settings.update("SREGISTRY_REGISTRY_BASE", b);
    }
    return b;
  };
  const noHttps = () => ctx.settings.get("SREGISTRY_REGISTRY_NOHTTPS");

  /** The user and token, or undefined; the token is redacted from every message. */
  function credentials(): RegistryCredentials | undefined {
    const username = ctx.settings.get("SREGISTRY_REGISTRY_USERNAME") || legacy("username");
    const token = ctx.settings.get("SREGISTRY_REGISTRY_TOKEN") || legacy("token");
    if (token) ctx.log.addSecret(token);
    return username && token ? { username, token } : undefined;
  }
  function requireCredentials(what: string): RegistryCredentials {
    const c = credentials();
    if (!c) {
      throw new ConfigError(
        `To ${what} the registry client needs SREGISTRY_REGISTRY_USERNAME and SREGISTRY_REGISTRY_TOKEN (the server's Token page): export them, or run "sregistry backend add registry USERNAME <user>" and "sregistry backend add registry TOKEN <token>"`,
      );
    }
    return c;
  }

  function target(image: string, tag?: string): { names: ParsedName; ep: Endpoints } {
    const names = parseImageName(removeUri(image), tag ? { tag } : {});
    return { names, ep: resolveEndpoints(names.registry, base(), noHttps()) };
  }
  const signedImage = (n: ParsedName): SignedImage => ({
    collection: n.collection,
    name: n.image,
    tag: n.tag,
  });
  const displayName = (n: ParsedName) =>
    `${n.registry ? `${n.registry}/` : ""}${n.collection}/${n.image}:${n.tag}`;

  /**
   * Send a signed request; when the server refuses it and the hour has turned since it was
   * signed (signed at 13:59:59, checked at 14:00:00), sign it again for the new hour, once.
   */
  async function signed(
    kind: RegistrySignatureKind,
    image: SignedImage,
    ep: Endpoints,
    creds: RegistryCredentials,
    send: (auth: RegistryHmacAuthorizer) => Promise<Response>,
    refused: (res: Response) => boolean,
  ): Promise<Response> {
    const auth = registryHmacAuth({
      kind,
      image,
      credentials: creds,
      origin: ep.api.origin,
      now,
      log: ctx.log,
    });
    const res = await send(auth);
    if (refused(res) && auth.signedHour !== hmacTimestamp(now())) {
      await res.body?.cancel().catch(() => {});
      ctx.log.debug(`The hour turned after ${kind} was signed; signing again for the new hour`);
      return await send(auth);
    }
    return res;
  }

  async function text(res: Response, what: string): Promise<string> {
    return new TextDecoder().decode(
      await readBody(ctx.http, res, { limit: 1024 * 1024, what, signal: ctx.signal }),
    );
  }

  /** The container's JSON, signed with `pull` when the collection turns out private. */
  async function container(
    names: ParsedName,
    ep: Endpoints,
  ): Promise<{ url: URL; c: RegistryContainer }> {
    const url = new URL(
      `container/${names.collection}/${names.image}:${names.tag}${
        names.version ? `@${names.version}` : ""
      }`,
      ep.api,
    );
    const accept = (s: number) => s === 200 || s === 403;
    const get = (auth?: RegistryHmacAuthorizer) =>
      ctx.http.request(url, {
        headers: { accept: "application/json" },
        accept,
        auth,
        signal: ctx.signal,
      });
    let res = await get();
    let sentCredentials = false;
    if (res.status === 403) {
      const why = detailOf(await text(res, `The answer for ${displayName(names)}`));
      const creds = credentials();
      if (!creds) {
        throw new AuthError(
          `The registry at ${ep.api.host} refuses ${
            displayName(names)
          } (403: ${why}): it is private, set SREGISTRY_REGISTRY_USERNAME and SREGISTRY_REGISTRY_TOKEN to pull it`,
        );
      }
      sentCredentials = true;
      res = await signed("pull", signedImage(names), ep, creds, get, (r) => r.status === 403);
      if (res.status === 403) {
        const why2 = detailOf(await text(res, `The answer for ${displayName(names)}`));
        throw new AuthError(
          `Permission denied (403: ${why2}) for ${
            displayName(names)
          } on ${ep.api.host}; check SREGISTRY_REGISTRY_USERNAME and SREGISTRY_REGISTRY_TOKEN, the clock (signatures are good for the current UTC hour), and that the user may read the collection`,
        );
      }
    }
    const body = await text(res, `The answer for ${displayName(names)}`);
    let c: unknown;
    try {
      c = JSON.parse(body);
    } catch {
      throw new NetworkError(
        `The registry at ${ep.api.host} answered something that is not JSON for ${
          displayName(names)
        } (${detailOf(body)}); check SREGISTRY_REGISTRY_BASE`,
      );
    }
    // The server's Response(429) and Response(400) arrive as HTTP 200 with a bare number.
    if (c === 429) {
      throw new NetworkError(
        `The registry at ${ep.api.host} says ${
          displayName(names)
        } reached its download limit (it answered 429): try again later, or ask the administrator to raise the limit`,
        { status: 429 },
      );
    }
    if (c === 400) {
      const msg = `The registry at ${ep.api.host} answered "400" (a bad request) for ${
        displayName(names)
      }; ${
        sentCredentials
          ? "check the name"
          : "if the collection is private, set SREGISTRY_REGISTRY_USERNAME and SREGISTRY_REGISTRY_TOKEN"
      }`;
      throw sentCredentials ? new NetworkError(msg, { status: 400 }) : new AuthError(msg);
    }
    if (typeof c !== "object" || c === null || Array.isArray(c)) {
      throw new NetworkError(
        `The registry at ${ep.api.host} answered ${
          JSON.stringify(body.slice(0, 40))
        } instead of the container ${displayName(names)}`,
      );
    }
    return { url, c: c as RegistryContainer };
  }

  function describe(names: ParsedName, url: URL, c: RegistryContainer): RemoteRecord {
    const version = typeof c.version === "string" ? c.version : undefined;
    const sha = version ? /^sha256[.:]([0-9a-f]{64})$/.exec(version) : null;
    const collection = typeof c.collection === "string" && c.collection
      ? c.collection
      : names.collection;
    const name = typeof c.name === "string" && c.name ? c.name : names.image;
    const tag = typeof c.tag === "string" && c.tag ? c.tag : names.tag;
    return {
      ...(typeof c.image === "string" && c.image ? { url: c.image } : {}),
      ...(sha ? { digest: `sha256:${sha[1]}` } : {}),
      metadata: { ...(c as Metadata), selfLink: url.href },
      suggestedName: parseImageName(
        `${names.registry ? `${names.registry}/` : ""}${collection}/${name}:${tag}`,
      ).uri,
      format: "sif",
    };
  }

  /** Every item of a listing: a bare list, `{results, next}` pages, or `{containers}`. */
  async function listAll(first: URL): Promise<unknown[]> {
    const out: unknown[] = [];
    const seen = new Set<string>();
    let next: string | undefined = first.href;
    for (let page = 0; next && page < MAX_PAGES; page++) {
      if (seen.has(next)) break;
      const at: URL = new URL(next);
      // A `next` on another origin would take the listing (and nothing else) elsewhere: stop.
      if (at.origin !== first.origin) break;
      seen.add(next);
      const body: unknown = await ctx.http.json(at, { signal: ctx.signal });
      if (Array.isArray(body)) {
        out.push(...body);
        break;
      }
      if (!body || typeof body !== "object") break;
      const o = body as { results?: unknown; next?: unknown };
      if (Array.isArray(o.results)) out.push(...o.results);
      else if (Object.keys(o).length) out.push(o);
      next = typeof o.next === "string" && o.next ? o.next : undefined;
    }
    return out;
  }

  const hostPrefix = (ep: Endpoints, explicit: boolean) => explicit ? `${ep.api.host}/` : "";

  return {
    name: SCHEME,

    async pull(image: string, into: PullTarget): Promise<PulledImage> {
      const { names, ep } = target(image);
      const { url, c } = await container(names, ep);
      const rec = describe(names, url, c);
      if (!rec.url) {
        throw new NotFoundError(
          `The registry has no image file for ${displayName(names)} yet${
            c.metadata?.build_metadata ? " (its build is not finished)" : ""
          }`,
        );
      }
      const version = typeof c.version === "string" ? c.version.toLowerCase() : "";
      // The download URL carries the collection's secret: no credentials go with it.
      const r = await download({
        http: ctx.http,
        url: rec.url,
        dest: into.resumable,
        expectedDigest: rec.digest,
        progress: ctx.progress,
        signal: ctx.signal,
        label: displayName(names),
      }).catch((e) => {
        // No credentials went with it, so a 403 is the server's weekly download limit (which
        // HEAD and GET both count) or a collection secret that changed since the lookup.
        if (e instanceof AuthError) {
          throw new NetworkError(
            `The registry at ${new URL(rec.url!).host} refused the download of ${
              displayName(names)
            } (403): its weekly download limit for the container is probably reached, or the collection's secret changed; try again later`,
            { status: 403 },
          );
        }
        throw e;
      });
      if (/^[0-9a-f]{32}$/.test(version)) {
        const got = await md5File(r.path);
        if (got !== version) {
          await Deno.remove(r.path).catch(() => {});
          throw new IntegrityError(
            `The file of ${
              displayName(names)
            } has md5 ${got}, not the version ${version} the registry gives; it was removed, pull again`,
          );
        }
      }
      await Deno.rename(r.path, into.path);
      return { ...rec, file: into.path, format: "sif", digest: r.digest, size: r.size };
    },

    async record(image: string): Promise<RemoteRecord> {
      const { names, ep } = target(image);
      const { url, c } = await container(names, ep);
      return describe(names, url, c);
    },

    async push(path: string, opts): Promise<PushResult> {
      const { names, ep } = target(opts.name, opts.tag);
      const creds = requireCredentials("push");
      const image = signedImage(names);
      const size = (await Deno.stat(path)).size;

      // 1. The collection check (and creation): signed `push`.
      const checkUrl = new URL("upload/chunked_upload", ep.api);
      const check = await signed("push", image, ep, creds, (auth) =>
        ctx.http.request(checkUrl, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify(image),
          auth,
          accept: (s) => s === 200 || s === 400 || s === 403 || s === 500,
          signal: ctx.signal,
        }), (r) => r.status === 500);
      const checkText = await text(check, "The collection check");
      if (check.status !== 200) {
        const why = detailOf(checkText);
        if (check.status === 403) {
          throw new AuthError(
            `The registry at ${ep.api.host} refuses a push to ${
              displayName(names)
            } (403: ${why}); the user needs push rights on the collection`,
          );
        }
        if (check.status === 500) throw signatureRefused(ep, "push", why);
        throw new UsageError(`The registry refuses ${displayName(names)} (400: ${why})`);
      }
      let cid: unknown;
      try {
        cid = JSON.parse(checkText).cid;
      } catch {
        // handled below
      }
      if (typeof cid !== "number" && typeof cid !== "string") {
        throw new NetworkError(
          `The registry's collection check answered no collection id (${detailOf(checkText)})`,
        );
      }

      // 2. The upload, streamed from disk: signed `upload`, the signature also in SREGISTRY_EVENT.
      const uploadUrl = new URL("upload", ep.root);
      const boundary = newBoundary();
      const id = nextProgressId();
      const label = displayName(names);
      let started = false;
      let form: ReturnType<typeof streamForm> | undefined;
      const uploadOnce = (auth: RegistryHmacAuthorizer) =>
        ctx.http.request(uploadUrl, {
          method: "POST",
          headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
          auth,
          retries: 0,
          accept: () => true,
          signal: ctx.signal,
          bodyFactory: () => {
            if (!started) {
              started = true;
              ctx.progress.emit({ type: "start", id, label, total: size });
            } else ctx.progress.emit({ type: "restart", id });
            form = streamForm(
              boundary,
              [
                ["SREGISTRY_EVENT", auth.header()],
                ["name", names.image],
                ["collection", String(cid)],
                ["tag", names.tag],
              ],
              {
                field: "file1",
                filename: `${names.image}:${names.tag}.sif`,
                contentType: "text/plain",
                path,
                size,
              },
              (n) => ctx.progress.emit({ type: "advance", id, bytes: n }),
            );
            return form.stream;
          },
        });
      const result = (digests?: { sha256: string }): PushResult => ({
        url: new URL(`container/${names.collection}/${names.image}:${names.tag}`, ep.api).href,
        ...(digests ? { digest: `sha256:${digests.sha256}` } : {}),
        size,
      });
      try {
        for (let attempt = 0;; attempt++) {
          let res: Response | undefined;
          let failure: unknown;
          try {
            res = await signed("upload", image, ep, creds, uploadOnce, (r) => r.status === 500);
          } catch (e) {
            if (!(e instanceof NetworkError)) throw e;
            failure = e;
          }
          const digests = form?.digests();
          if (res?.ok) {
            const body = await text(res, "The upload's answer");
            ctx.log.debug(`Upload answer: ${detailOf(body)}`);
            return result(digests);
          }
          const why = res ? detailOf(await text(res, "The upload's answer")) : "";
          if (res?.status === 413) {
            throw new NetworkError(
              `The registry's proxy refused the upload of ${label} (${
                mib(size)
              }): 413 Request Entity Too Large. The image is over the server's upload limit (nginx client_max_body_size for /upload, 10 GB in Singularity Registry Server's shipped nginx.conf); ask the administrator of ${ep.root.host} to raise it`,
              { status: 413 },
            );
          }
          if (res?.status === 500) throw signatureRefused(ep, "upload", why);
          const gateway = res && [502, 503, 504].includes(res.status);
          if (!gateway && res) {
            throw new NetworkError(
              `The registry answered ${res.status} to the upload of ${label}${
                why ? ` (${why})` : ""
              }`,
              { status: res.status },
            );
          }
          // A proxy timeout after the last byte: the server may have stored the image anyway.
          if (digests && await arrived(names, ep, digests)) {
            ctx.log.info(
              `The upload of ${label} ended with ${
                res ? res.status : "a dropped connection"
              }, but the registry has the image (same md5/sha256): done`,
            );
            return result(digests);
          }
          if (attempt >= ctx.http.retries) {
            if (failure) throw failure;
            throw new NetworkError(
              `The registry answered ${res!.status} to the upload of ${label} after ${
                attempt + 1
              } attempts and does not have the image; try again later`,
              { status: res!.status },
            );
          }
          ctx.log.warning(
            `The upload of ${label} failed (${
              res ? res.status : (failure as Error).message
            }); retrying (${attempt + 1}/${ctx.http.retries})`,
          );
          await ctx.http.backoff(attempt + 1, res?.headers.get("retry-after"), ctx.signal);
        }
      } finally {
        if (started) ctx.progress.emit({ type: "end", id });
      }
    },

    async delete(image: string): Promise<DeleteResult> {
      const { names, ep } = target(image);
      const creds = requireCredentials("delete");
      const url = new URL(`container/${names.collection}/${names.image}:${names.tag}`, ep.api);
      const res = await signed(
        "delete",
        signedImage(names),
        ep,
        creds,
        (auth) =>
          ctx.http.request(url, {
            method: "DELETE",
            auth,
            accept: (s) => [200, 204, 403, 404, 500].includes(s),
            signal: ctx.signal,
          }),
        (r) => r.status === 500,
      );
      const why = detailOf(await text(res, "The delete's answer"));
      if (res.status === 404) {
        throw new NotFoundError(
          `The registry at ${ep.api.host} has no ${displayName(names)} (404: ${why})`,
        );
      }
      if (res.status === 403) {
        throw new AuthError(
          `The registry at ${ep.api.host} refuses to delete ${displayName(names)} (403: ${why})`,
        );
      }
      if (res.status === 500) {
        throw new NetworkError(
          `The registry at ${ep.api.host} answered 500 to the delete of ${
            displayName(names)
          }: either the signature was refused (check SREGISTRY_REGISTRY_USERNAME, SREGISTRY_REGISTRY_TOKEN and the clock) or the released server's delete failed (a known server bug); "sregistry search ${names.collection}/${names.image}" shows whether it is gone`,
          { status: 500 },
        );
      }
      return { deleted: [`${SCHEME}://${displayName(names)}`] };
    },

    async search(query, options): Promise<SearchHit[]> {
      let q = (query ?? "").trim().toLowerCase();
      // A host named in the query or --endpoint: search that server (the original used the base).
      let host: string | undefined;
      const first = q.split("/")[0];
      if (q.includes("/") && /[.:]/.test(first) && !first.includes("@")) {
        host = first;
        q = q.slice(first.length + 1);
      }
      const explicit = options?.endpoint !== undefined || host !== undefined;
      const ep = options?.endpoint !== undefined
        ? resolveEndpoints(undefined, options.endpoint, noHttps())
        : resolveEndpoints(host, base(), noHttps());
      const prefix = `${SCHEME}://${hostPrefix(ep, explicit)}`;
      const hitOf = (c: Record<string, unknown>): SearchHit | undefined => {
        const uri = typeof c.uri === "string"
          ? c.uri
          : c.collection && c.name
          ? `${c.collection}/${c.name}:${c.tag ?? "latest"}`
          : undefined;
        if (!uri) return undefined;
        const details: Record<string, string> = {};
        if (c.tag) details.tag = String(c.tag);
        if (c.detail) details.detail = String(c.detail);
        if (typeof c.version === "string") details.version = c.version;
        return { uri: `${prefix}${uri}`, details };
      };
      // Collections carry their containers; container searches answer containers (or
      // `{containers: [...]}`).
      const containersOf = (items: unknown[]) =>
        items.flatMap((x) => {
          if (!x || typeof x !== "object") return [];
          const cs = (x as { containers?: unknown }).containers;
          return Array.isArray(cs)
            ? cs as Record<string, unknown>[]
            : [x as Record<string, unknown>];
        });
      const enc = encodeURIComponent;
      let items: Record<string, unknown>[];
      if (q === "") {
        items = containersOf(await listAll(new URL("collections/", ep.api)));
      } else if (q.endsWith("/") || (!q.includes("/") && !q.includes(":"))) {
        const name = q.replace(/\/+$/, "");
        items = containersOf(await listAll(new URL(`collection/${enc(name)}`, ep.api)));
      } else {
        const m = /^(?:([^/]*)\/)?([^/:]+)(?::([^/:]+))?$/.exec(q);
        if (!m) {
          throw new UsageError(
            `Cannot search the registry for ${
              JSON.stringify(query)
            }: use collection, collection/name[:tag] or /name[:tag]`,
          );
        }
        const [, collection, name, tag] = m;
        const path = `container/search/${collection ? `collection/${enc(collection)}/` : ""}name/${
          enc(name)
        }${tag ? `/tag/${enc(tag)}` : ""}`;
        items = containersOf(await listAll(new URL(path, ep.api)));
      }
      return items.map(hitOf).filter((h): h is SearchHit => h !== undefined);
    },

    async labels(opts): Promise<Metadata[]> {
      const ep = resolveEndpoints(undefined, base(), noHttps());
      const key = opts.key?.toLowerCase();
      const value = opts.value?.toLowerCase();
      const enc = encodeURIComponent;
      const path = `labels/search${key ? `/${enc(key)}/key` : ""}${
        value ? `/${enc(value)}/value` : ""
      }`;
      const items = await listAll(new URL(path, ep.api));
      return items.filter((x): x is Metadata => !!x && typeof x === "object");
    },

    async build(recipe: string, opts): Promise<Metadata> {
      const { names, ep } = target(opts.name);
      const creds = requireCredentials("build");
      let size: number;
      try {
        const st = await Deno.stat(recipe);
        if (!st.isFile) throw new UsageError(`The recipe ${JSON.stringify(recipe)} is not a file`);
        size = st.size;
      } catch (e) {
        if (e instanceof UsageError) throw e;
        throw new NotFoundError(`The recipe ${JSON.stringify(recipe)} does not exist`);
      }
      const url = new URL("google_build/build/", ep.root);
      const boundary = newBoundary();
      const res = await signed(
        "build",
        signedImage(names),
        ep,
        creds,
        (auth) =>
          ctx.http.request(url, {
            method: "POST",
            headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
            auth,
            accept: (s) => [200, 201, 400, 403, 500].includes(s),
            signal: ctx.signal,
            bodyFactory: () =>
              streamForm(boundary, [
                ["SREGISTRY_EVENT", auth.header()],
                ["name", names.image],
                ["collection", names.collection],
                ["tag", names.tag],
              ], {
                field: "datafile",
                filename: `Singularity.${names.collection}-${names.image}-${names.tag}`,
                contentType: "text/plain",
                path: recipe,
                size,
              }, () => {}).stream,
          }),
        (r) => r.status === 500,
      );
      const why = detailOf(await text(res, "The builder's answer"));
      if (res.status === 500) throw signatureRefused(ep, "build", why);
      if (res.status === 403) {
        throw new AuthError(`The registry's builder refuses ${displayName(names)} (403: ${why})`);
      }
      if (res.status === 400) {
        throw new UsageError(`The registry's builder refuses ${displayName(names)} (400: ${why})`);
      }
      const done = await ctx.poll<RegistryContainer>({
        label: `build of ${displayName(names)}`,
        interval: buildInterval,
        signal: ctx.signal,
        check: async () => {
          let c: RegistryContainer;
          try {
            c = (await container(names, ep)).c;
          } catch (e) {
            // The container appears once the build is queued.
            if (e instanceof NotFoundError) return { done: false, status: "SUBMITTED" };
            throw e;
          }
          const meta = c.metadata?.build_metadata as { status?: unknown } | undefined;
          const status = typeof meta?.status === "string"
            ? meta.status.toUpperCase()
            : c.image
            ? "SUCCESS"
            : "QUEUED";
          if (FAILED_STATES.has(status)) {
            throw new NetworkError(
              `The build of ${
                displayName(names)
              } ended with status ${status} on ${ep.root.host}; see the build's logs on the server`,
            );
          }
          return { done: status === "SUCCESS" && !!c.image, status, value: c };
        },
      });
      return {
        name: `${SCHEME}://${displayName(names)}`,
        status: "SUCCESS",
        ...(done?.image ? { image: done.image } : {}),
        ...(typeof done?.version === "string" ? { version: done.version } : {}),
        ...(done?.id !== undefined ? { id: done.id } : {}),
      };
    },
  };

  async function arrived(
    names: ParsedName,
    ep: Endpoints,
    digests: { md5: string; sha256: string },
  ): Promise<boolean> {
    try {
      const { c } = await container({ ...names, version: undefined }, ep);
      const v = typeof c.version === "string" ? c.version.toLowerCase() : "";
      return v === digests.md5 || v === `sha256.${digests.sha256}`;
    } catch (e) {
      if (e instanceof NotFoundError || e instanceof NetworkError) return false;
      throw e;
    }
  }
}

function signatureRefused(ep: Endpoints, kind: string, why: string): AuthError {
  return new AuthError(
    `The registry at ${ep.api.host} refused the signed ${kind} request (500${
      why ? `: ${why}` : ""
    }): Singularity Registry Server answers 500 to a bad signature; check SREGISTRY_REGISTRY_USERNAME, SREGISTRY_REGISTRY_TOKEN and the clock (signatures are good for the current UTC hour)`,
  );
}
