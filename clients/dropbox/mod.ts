/**
 * The dropbox:// client: images as files at `/<collection>/<image>:<tag>[@version].sif` in a
 * Dropbox (an App-folder app scopes them to `/Apps/<app>/`), the original's layout. Pull goes
 * through core/transfer (GET on the content-download endpoint, which allows ranges); push is one
 * `/2/files/upload` up to the threshold and an upload session above it, resuming from the offset
 * the server reports on `incorrect_offset`. Auth: SREGISTRY_DROPBOX_TOKEN, or the app key and a
 * refresh token kept in the credential store.
 * @module
 */

import { oauth2RefreshAuth, type OAuth2Tokens } from "../../core/auth/oauth2.ts";
import { bearerToken } from "../../core/auth/basic.ts";
import { forgetRefusedSignIn } from "../../core/auth/forget_refused.ts";
import type { Authorizer } from "../../core/auth/types.ts";
import { createHash } from "node:crypto";
import { AuthError, ConfigError, IntegrityError, NotFoundError } from "../../core/errors.ts";
import { hashFile } from "../../core/hasher.ts";
import { MAX_JSON_BYTES, readBody } from "../../core/http.ts";
import { type ParsedName, parseImageName, removeUri } from "../../core/names.ts";
import { download } from "../../core/transfer/mod.ts";
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
  baseUrl,
  content,
  contentHash,
  type DropboxApi,
  dropboxAuthError,
  DropboxEndpointError,
  type DropboxError,
  type FileMetadata,
  headerJson,
  rpc,
} from "./api.ts";

const SCHEME = "dropbox";
const TOKEN = "SREGISTRY_DROPBOX_TOKEN";
const APP_KEY = "SREGISTRY_DROPBOX_APP_KEY";
const API_BASE = "SREGISTRY_DROPBOX_API_BASE";
const CONTENT_BASE = "SREGISTRY_DROPBOX_CONTENT_BASE";
const THRESHOLD = "SREGISTRY_DROPBOX_UPLOAD_THRESHOLD";
const CHUNK = "SREGISTRY_DROPBOX_CHUNK_SIZE";
/** Where the user allows the app (opened in a browser, never fetched). */
const AUTHORIZE_URL = "https://www.dropbox.com/oauth2/authorize";

/** Dropbox's limit for one `/2/files/upload`. */
export const SINGLE_UPLOAD_LIMIT = 150 * 1024 * 1024;
/** Default upload-session chunk. */
export const DEFAULT_CHUNK = 64 * 1024 * 1024;

/** A byte count setting (bytes, or with K/M suffix). */
export function parseBytes(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const m = value.trim().match(/^(\d+)\s*(k|ki|kib|m|mi|mib)?$/i);
  const n = m ? Number(m[1]) * (m[2] ? (/^k/i.test(m[2]) ? 1024 : 1024 * 1024) : 1) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0 || n > SINGLE_UPLOAD_LIMIT) {
    throw new ConfigError(
      `${name} ${JSON.stringify(value)} is not a size up to 150M; use for example 8M or 4194304`,
    );
  }
  return n;
}

/**
 * The upload-session lookup error of a failed append or finish: append answers it as is
 * (`incorrect_offset/`, `not_found/`), finish inside `lookup_failed` (`lookup_failed/not_found/`).
 */
export function lookupError(
  e: unknown,
): { ".tag"?: string; correct_offset?: number } | undefined {
  const answer = (e as { answer?: DropboxError } | undefined)?.answer;
  if (!(e instanceof DropboxEndpointError || e instanceof NotFoundError) || !answer?.error) {
    return undefined;
  }
  const err = answer.error as { ".tag"?: string; lookup_failed?: { ".tag"?: string } };
  return (err[".tag"] === "lookup_failed" ? err.lookup_failed : err) as {
    ".tag"?: string;
    correct_offset?: number;
  };
}

/** The Dropbox path of an image: `"/" + names.storage`. */
export function dropboxPath(names: ParsedName): string {
  return `/${names.storage}`;
}

function createDropboxClient(ctx: Context): Client {
  let apiCache: DropboxApi | undefined;

  function authorizer(apiBase: string): Authorizer {
    const token = ctx.settings.getAndUpdate(TOKEN);
    if (token) return bearerToken(token, { log: ctx.log });
    const appKey = ctx.settings.get(APP_KEY);
    const kept = ctx.credentials.get<OAuth2Tokens>("oauth2");
    if (appKey && kept?.refreshToken) {
      return forgetRefusedSignIn(
        oauth2RefreshAuth({
          http: ctx.http,
          tokenUrl: `${apiBase}/oauth2/token`,
          clientId: appKey,
          ...kept,
          onTokens: (t) => ctx.credentials.set("oauth2", t),
          log: ctx.log,
          signal: ctx.signal,
        }),
        () => ctx.credentials.delete("oauth2"),
      );
    }
    if (appKey) return pkceLogin(appKey, apiBase);
    throw new ConfigError(
      `No Dropbox credentials: set ${TOKEN} (an access token), or ${APP_KEY} with a refresh token in the credential store`,
    );
  }

  /** First use with only the app key: the PKCE code flow, then the refresh-token authorizer. */
  function pkceLogin(appKey: string, apiBase: string): Authorizer {
    let pending: Promise<Authorizer> | undefined;
    const inner = () => pending ??= login(appKey, apiBase);
    return {
      async authorize(request) {
        await (await inner()).authorize(request);
      },
      async onChallenge(response, request) {
        return await (await inner()).onChallenge?.(response, request) ?? false;
      },
    };
  }

  async function login(appKey: string, apiBase: string): Promise<Authorizer> {
    const b64url = (b: Uint8Array) =>
      btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const verifier = b64url(crypto.getRandomValues(new Uint8Array(48)));
    const challenge = b64url(createHash("sha256").update(verifier).digest());
    const url = new URL(AUTHORIZE_URL);
    url.search = new URLSearchParams({
      client_id: appKey,
      response_type: "code",
      code_challenge: challenge,
      code_challenge_method: "S256",
      token_access_type: "offline",
    }).toString();
    const code = (await ctx.prompt.readCode(
      url.href,
      "Open this URL, allow sregistry, and paste the code Dropbox shows",
    )).trim();
    ctx.log.addSecret(code);
    const res = await ctx.http.request(`${apiBase}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        client_id: appKey,
        code_verifier: verifier,
      }).toString(),
      // A refused code is a 400 with {error, error_description}: read it, not a bare status.
      accept: (st) => st < 500 && st !== 408 && st !== 429,
      signal: ctx.signal,
    });
    const text = new TextDecoder().decode(
      await readBody(ctx.http, res, {
        limit: MAX_JSON_BYTES,
        what: "The token endpoint's answer",
        signal: ctx.signal,
      }),
    );
    let data: {
      access_token?: string;
      refresh_token?: string;
      expires_in?: number;
      error?: unknown;
      error_description?: unknown;
    } = {};
    try {
      data = JSON.parse(text) ?? {};
    } catch {
      // A refusal without JSON is reported by its status below.
    }
    if (!res.ok) {
      const why = typeof data.error === "string"
        ? `${data.error}${
          typeof data.error_description === "string" ? `: ${data.error_description}` : ""
        }`
        : `HTTP ${res.status}`;
      throw new AuthError(
        `Dropbox refused the authorization code (${why}); run the command again and paste a new code`,
      );
    }
    if (!data.access_token || !data.refresh_token) {
      throw new AuthError("Dropbox returned no refresh token for the code; sign in again");
    }
    ctx.log.addSecret(data.access_token);
    ctx.log.addSecret(data.refresh_token);
    const tokens: OAuth2Tokens = {
      accessToken: data.access_token,
      refreshToken: data.refresh_token,
      expiresAt: Date.now() + (data.expires_in ?? 14400) * 1000,
    };
    ctx.credentials.set("oauth2", tokens);
    return oauth2RefreshAuth({
      http: ctx.http,
      tokenUrl: `${apiBase}/oauth2/token`,
      clientId: appKey,
      ...tokens,
      onTokens: (t) => ctx.credentials.set("oauth2", t),
      log: ctx.log,
      signal: ctx.signal,
    });
  }

  const api = (): DropboxApi => {
    if (apiCache) return apiCache;
    const apiBase = baseUrl(API_BASE, ctx.settings.get(API_BASE) ?? "https://api.dropboxapi.com");
    const contentBase = baseUrl(
      CONTENT_BASE,
      ctx.settings.get(CONTENT_BASE) ?? "https://content.dropboxapi.com",
    );
    apiCache = {
      http: ctx.http,
      apiBase,
      contentBase,
      auth: authorizer(apiBase),
      signal: ctx.signal,
    };
    return apiCache;
  };

  async function metadata(names: ParsedName): Promise<FileMetadata> {
    try {
      return await rpc<FileMetadata>(api(), "/2/files/get_metadata", { path: dropboxPath(names) });
    } catch (e) {
      if (e instanceof NotFoundError) {
        throw new NotFoundError(
          `No image ${SCHEME}://${names.uri} in Dropbox (${
            JSON.stringify(dropboxPath(names))
          }); list them with "sregistry search ${SCHEME}://"`,
        );
      }
      throw e;
    }
  }

  function describe(names: ParsedName, m: FileMetadata): RemoteRecord {
    return {
      url: `${api().contentBase}/2/files/download`,
      ...(typeof m.size === "number" ? { size: m.size } : {}),
      metadata: {
        path: m.path_display ?? dropboxPath(names),
        ...(m.id ? { id: m.id } : {}),
        ...(m.rev ? { rev: m.rev } : {}),
        ...(m.content_hash ? { content_hash: m.content_hash } : {}),
        ...(m.server_modified ? { server_modified: m.server_modified } : {}),
      },
      suggestedName: names.version
        ? `${names.url}:${names.tag}@${names.version}`
        : `${names.url}:${names.tag}`,
    };
  }

  const uriOf = (path: string) =>
    `${SCHEME}://${path.replace(/^\//, "").replace(/\.(sif|simg)$/, "")}`;

  async function pushSession(
    path: string,
    size: number,
    target: string,
    chunk: number,
    key: string,
    digest: string,
  ): Promise<FileMetadata> {
    const a = api();
    const file = await Deno.open(path, { read: true });
    try {
      const read = async (offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> => {
        const buf = new Uint8Array(new ArrayBuffer(Math.min(length, size - offset)));
        await file.seek(offset, Deno.SeekMode.Start);
        let got = 0;
        while (got < buf.length) {
          const n = await file.read(buf.subarray(got));
          if (n === null) break;
          got += n;
        }
        return buf.subarray(0, got);
      };
      const kept = ctx.credentials.get<{ session?: string; offset?: number; digest?: string }>(key);
      let session = kept?.digest === digest ? kept.session : undefined;
      let offset = session ? kept?.offset ?? 0 : 0;
      // A session from an earlier run may have expired (Dropbox keeps them 7 days): start anew once.
      let resumed = session !== undefined;
      if (resumed) {
        ctx.log.verbose(`Continuing the upload session of ${target} at byte ${offset} of ${size}`);
      }
      const start = async () => {
        const first = await read(0, chunk);
        const r = await content<{ session_id: string }>(
          a,
          "/2/files/upload_session/start",
          { close: false },
          () => first,
        );
        ctx.credentials.set(key, { session: r.session_id, offset: first.length, digest });
        return { session: r.session_id, offset: first.length };
      };
      if (!session) ({ session, offset } = await start());
      const commit = { path: target, mode: "overwrite", autorename: false, mute: true };
      for (;;) {
        const bytes = await read(offset, chunk);
        const last = offset + bytes.length >= size;
        try {
          if (last) {
            return await content<FileMetadata>(a, "/2/files/upload_session/finish", {
              cursor: { session_id: session, offset },
              commit,
            }, () => bytes);
          }
          await content(a, "/2/files/upload_session/append_v2", {
            cursor: { session_id: session, offset },
            close: false,
          }, () => bytes);
          offset += bytes.length;
          ctx.credentials.set(key, { session, offset, digest });
        } catch (e) {
          const err = lookupError(e);
          if (resumed && err?.[".tag"] === "not_found") {
            ctx.log.verbose(`The kept upload session of ${target} is gone; starting a new one`);
            resumed = false;
            ({ session, offset } = await start());
            continue;
          }
          if (
            err?.[".tag"] === "incorrect_offset" && typeof err.correct_offset === "number" &&
            err.correct_offset !== offset && err.correct_offset <= size
          ) {
            ctx.log.verbose(
              `Dropbox has ${err.correct_offset} bytes of the session; continuing there`,
            );
            offset = err.correct_offset;
            continue;
          }
          throw e;
        }
      }
    } finally {
      file.close();
    }
  }

  return {
    name: SCHEME,

    async pull(image: string, into: PullTarget): Promise<PulledImage> {
      const names = parseImageName(removeUri(image));
      const m = await metadata(names);
      const record = describe(names, m);
      const a = api();
      // Content-download endpoints take GET with ranges; the argument is in the header.
      const r = await download({
        http: ctx.http,
        url: `${a.contentBase}/2/files/download`,
        headers: { "dropbox-api-arg": headerJson({ path: dropboxPath(names) }) },
        dest: into.resumable,
        auth: a.auth,
        expectedSize: record.size,
        parallel: 1,
        progress: ctx.progress,
        label: removeUri(image),
        signal: ctx.signal,
      }).catch((e) => {
        throw dropboxAuthError(e);
      });
      // Dropbox's own hash of the file: a spliced or damaged resume does not get stored.
      if (m.content_hash) {
        const got = await contentHash(into.resumable);
        if (got !== m.content_hash.toLowerCase()) {
          await Deno.remove(into.resumable).catch(() => {});
          throw new IntegrityError(
            `The download of ${SCHEME}://${names.uri} does not match Dropbox's content_hash (${
              m.content_hash.slice(0, 12)
            }..., got ${got.slice(0, 12)}...); nothing was kept, pull it again`,
          );
        }
      }
      await Deno.rename(into.resumable, into.path);
      return { ...record, file: into.path, format: "unknown", digest: r.digest, size: r.size };
    },

    async record(image: string): Promise<RemoteRecord> {
      const names = parseImageName(removeUri(image));
      return describe(names, await metadata(names));
    },

    async push(path, options) {
      const names = parseImageName(options.name, { tag: options.tag });
      const threshold = parseBytes(THRESHOLD, ctx.settings.get(THRESHOLD), SINGLE_UPLOAD_LIMIT);
      const chunk = parseBytes(CHUNK, ctx.settings.get(CHUNK), DEFAULT_CHUNK);
      const target = dropboxPath(names);
      const { digest, size } = await hashFile(path);
      const a = api();
      let made: FileMetadata;
      if (size <= threshold) {
        made = await content<FileMetadata>(
          a,
          "/2/files/upload",
          {
            path: target,
            mode: "overwrite",
            autorename: false,
            mute: true,
            strict_conflict: false,
          },
          async () => await Deno.readFile(path),
        );
      } else {
        const key = `upload:${target}`;
        made = await pushSession(path, size, target, chunk, key, digest);
        ctx.credentials.delete(key);
      }
      // What Dropbox committed, by its own hash: a chunk damaged on the way, or a resumed session
      // that spliced the wrong bytes, is caught here rather than at someone's pull.
      const local = await contentHash(path);
      if (made?.content_hash && made.content_hash.toLowerCase() !== local) {
        throw new IntegrityError(
          `Dropbox holds other bytes than were sent for ${SCHEME}://${names.uri} (content_hash ${
            made.content_hash.slice(0, 12)
          }..., expected ${local.slice(0, 12)}...); push it again`,
        );
      }
      return { url: `${SCHEME}://${names.uri}`, digest, size };
    },

    async search(query: string | undefined): Promise<SearchHit[]> {
      const a = api();
      const entries: FileMetadata[] = [];
      let page = await rpc<{ entries: FileMetadata[]; cursor: string; has_more: boolean }>(
        a,
        "/2/files/list_folder",
        { path: "", recursive: true },
      );
      entries.push(...page.entries);
      while (page.has_more) {
        page = await rpc(a, "/2/files/list_folder/continue", { cursor: page.cursor });
        entries.push(...page.entries);
      }
      const q = query === undefined ? undefined : removeUri(query).toLowerCase();
      return entries
        .filter((e) => e[".tag"] === "file" && /\.(sif|simg)$/.test(e.name))
        .map((e) => ({ e, uri: uriOf(e.path_display ?? e.path_lower ?? e.name) }))
        .filter(({ uri }) => !q || uri.toLowerCase().includes(q))
        .map(({ e, uri }) => ({
          uri,
          details: { size: e.size, modified: e.server_modified },
        }));
    },

    async delete(image: string) {
      const names = parseImageName(removeUri(image));
      await metadata(names);
      await rpc(api(), "/2/files/delete_v2", { path: dropboxPath(names) });
      return { deleted: [`${SCHEME}://${names.uri}`] };
    },

    async share(image: string): Promise<string> {
      const names = parseImageName(removeUri(image));
      await metadata(names);
      const path = dropboxPath(names);
      try {
        const r = await rpc<{ url: string }>(
          api(),
          "/2/sharing/create_shared_link_with_settings",
          { path },
        );
        return r.url;
      } catch (e) {
        const err = (e as DropboxEndpointError).answer?.error as
          | { ".tag"?: string; shared_link_already_exists?: { metadata?: { url?: string } } }
          | undefined;
        if (
          !(e instanceof DropboxEndpointError) || err?.[".tag"] !== "shared_link_already_exists"
        ) {
          throw e;
        }
        const existing = err.shared_link_already_exists?.metadata?.url;
        if (existing) return existing;
        const r = await rpc<{ links: { url: string }[] }>(
          api(),
          "/2/sharing/list_shared_links",
          { path, direct_only: true },
        );
        if (!r.links[0]) throw e;
        return r.links[0].url;
      }
    },
  };
}

/** The dropbox client factory. */
export const dropboxFactory: ClientFactory = {
  scheme: SCHEME,
  description: "Dropbox files (access token, or app key with a refresh token)",
  settings: [
    { name: TOKEN, description: "a Dropbox access token", secret: true },
    { name: APP_KEY, description: "the app key, for the refresh-token flow" },
    {
      name: API_BASE,
      description: "the RPC host (also /oauth2/token)",
      default: "https://api.dropboxapi.com",
    },
    {
      name: CONTENT_BASE,
      description: "the content host (uploads, downloads)",
      default: "https://content.dropboxapi.com",
    },
    {
      name: THRESHOLD,
      description: "files larger than this use an upload session",
      default: String(SINGLE_UPLOAD_LIMIT),
    },
    { name: CHUNK, description: "upload session chunk size", default: String(DEFAULT_CHUNK) },
  ],
  create: createDropboxClient,
};
