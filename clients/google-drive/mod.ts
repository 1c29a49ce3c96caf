/**
 * The google-drive:// client: images as files in a Drive folder (`sregistry` by default), each
 * with the `properties` sregistry-cli wrote (its names, `type: container`, the image's labels) and
 * a thumbnail. Push is a resumable upload session; pull goes through core/transfer (ranged,
 * resumable); search lists the folder with a `properties has {…}` query as the original did.
 *
 * Authentication: a service account (GOOGLE_APPLICATION_CREDENTIALS, the JWT-bearer grant at the
 * key's `token_uri`), or the OAuth installed-app flow (SREGISTRY_GOOGLE_DRIVE_CREDENTIALS, a client
 * secrets file): the consent URL is printed, the code read through the prompt, and the refresh
 * token kept in the credential store.
 * @module
 */

import { createHash } from "node:crypto";
import { forgetRefusedSignIn } from "../../core/auth/forget_refused.ts";
import { serviceAccountAuth } from "../../core/auth/service_account.ts";
import { oauth2RefreshAuth, type OAuth2Tokens } from "../../core/auth/oauth2.ts";
import type { Authorizer } from "../../core/auth/types.ts";
import {
  AuthError,
  ConfigError,
  IntegrityError,
  NetworkError,
  NotFoundError,
} from "../../core/errors.ts";
import { hashFile } from "../../core/hasher.ts";
import { isLoopback, MAX_JSON_BYTES, readBody } from "../../core/http.ts";
import { serviceBase } from "../../core/base_url.ts";
import { type ParsedName, parseImageName, removeUri } from "../../core/names.ts";
import { download } from "../../core/transfer/mod.ts";
import { SESSION_QUANTUM, sessionUpload } from "../../core/transfer/resumable_session.ts";
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
  deleteFile,
  type DriveApi,
  type DriveFile,
  driveUrl,
  ensureFolder,
  findFolder,
  hasProperty,
  listFiles,
  quote,
  shareFile,
  startUpload,
} from "./api.ts";

const SCHEME = "google-drive";
const SERVICE_ACCOUNT = "GOOGLE_APPLICATION_CREDENTIALS";
const CLIENT_SECRETS = "SREGISTRY_GOOGLE_DRIVE_CREDENTIALS";
const ROOT = "SREGISTRY_GOOGLE_DRIVE_ROOT";
const BASE = "SREGISTRY_GOOGLE_DRIVE_BASE";
const CHUNK = "SREGISTRY_GOOGLE_DRIVE_CHUNK_SIZE";
/** The default upload chunk: 8 MiB. */
export const DEFAULT_CHUNK = 32 * SESSION_QUANTUM;
const DEFAULT_BASE = "https://www.googleapis.com";
const DEFAULT_AUTH_URI = "https://accounts.google.com/o/oauth2/auth";
const DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token";
/** Where Google sends the browser with the code (a loopback address, RFC 8252). */
const REDIRECT_URI = "http://127.0.0.1";
/** The original's scope. */
export const DRIVE_SCOPE = "https://www.googleapis.com/auth/drive";
/** Drive keeps at most 124 bytes of key + value per property. */
export const PROPERTY_LIMIT = 124;
const MEDIA = "application/octet-stream";

/** The base URL: https, or http to a loopback host only (a path prefix is kept). */
export function driveBase(value: string | undefined): URL {
  return new URL(`${serviceBase(BASE, value?.trim() || DEFAULT_BASE, DEFAULT_BASE)}/`);
}

/** The properties sregistry-cli set: names, type container, then labels that fit Drive's limit. */
export function driveProperties(
  names: ParsedName,
  digest: string,
  labels: Record<string, unknown>,
): { properties: Record<string, string>; dropped: string[] } {
  const properties: Record<string, string> = {
    collection: names.collection,
    image: names.image,
    tag: names.tag,
    url: names.url,
    uri: names.uri,
    storage: names.storage,
    original: names.original,
    type: "container",
    sha256sum: digest,
  };
  if (names.version) properties.version = names.version;
  const dropped: string[] = [];
  const size = (k: string, v: string) => new TextEncoder().encode(k + v).length;
  for (const [k, v] of Object.entries(labels)) {
    const value = typeof v === "string" ? v : JSON.stringify(v);
    if (k in properties) continue;
    if (size(k, value) > PROPERTY_LIMIT) dropped.push(k);
    else properties[k] = value;
  }
  for (const [k, v] of Object.entries(properties)) {
    if (size(k, v) > PROPERTY_LIMIT) {
      delete properties[k];
      dropped.push(k);
    }
  }
  return { properties, dropped };
}

/** Drive takes thumbnails of at most 2 MB. */
export const THUMBNAIL_LIMIT = 2 * 1024 * 1024;
/** The thumbnail formats Drive takes. */
const THUMBNAIL_TYPES = new Set(["image/png", "image/gif", "image/jpeg"]);

/**
 * The thumbnail to send, or why there is none: Drive refuses the whole upload for a thumbnail over
 * 2 MB or in a format other than PNG, GIF or JPEG, so such a file is left out with a warning.
 */
export function driveThumbnail(
  thumb: { name: string; mediaType: string; bytes: Uint8Array },
): { image: string; mimeType: string } | { skipped: string } {
  if (!THUMBNAIL_TYPES.has(thumb.mediaType)) {
    return { skipped: `${thumb.name} is not a PNG, GIF or JPEG image` };
  }
  if (thumb.bytes.length > THUMBNAIL_LIMIT) {
    return { skipped: `${thumb.name} is ${thumb.bytes.length} bytes, more than Drive's 2 MB` };
  }
  return { image: base64Url(thumb.bytes), mimeType: thumb.mediaType };
}

/** Whether `a` is older than `b` (by modifiedTime, then id): a total order, so one file is newest. */
export function isOlder(a: DriveFile, b: DriveFile): boolean {
  const [x, y] = [a.modifiedTime ?? "", b.modifiedTime ?? ""];
  return x !== y ? x < y : a.id < b.id;
}

/** SREGISTRY_GOOGLE_DRIVE_CHUNK_SIZE: bytes, or with a K or M suffix; a multiple of 256 KiB. */
export function chunkSetting(value: string | undefined): number {
  if (value === undefined || value.trim() === "") return DEFAULT_CHUNK;
  const m = value.trim().match(/^(\d+)\s*(k|ki|kib|m|mi|mib)?$/i);
  const n = m ? Number(m[1]) * (m[2] ? (/^k/i.test(m[2]) ? 1024 : 1024 * 1024) : 1) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0 || n % SESSION_QUANTUM !== 0 || n > 1024 ** 3) {
    throw new ConfigError(
      `${CHUNK} ${
        JSON.stringify(value)
      } is not a multiple of 256K up to 1G; use for example 8M or 262144`,
    );
  }
  return n;
}

/** Bytes as URL-safe base64 (what contentHints.thumbnail.image takes). */
function base64Url(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_");
}

/**
 * The code in what the user pasted: the code itself, or the address of the page the consent
 * screen sent them to (`http://127.0.0.1/?code=...&scope=...`), whose `code` is URL-encoded.
 */
export function pastedCode(pasted: string): string {
  const text = pasted.trim();
  if (/^https?:\/\//i.test(text) || text.startsWith("/?") || text.startsWith("?")) {
    try {
      return new URL(text, "http://127.0.0.1").searchParams.get("code")?.trim() ?? "";
    } catch {
      return "";
    }
  }
  const value = text.replace(/^code=/, "").replace(/&.*$/, "");
  // Google's codes hold "/": an address bar may show it as %2F.
  return /%[0-9A-Fa-f]{2}/.test(value) ? decodeURIComponent(value) : value;
}

interface ClientSecrets {
  client_id: string;
  client_secret?: string;
  auth_uri?: string;
  token_uri?: string;
}

async function readClientSecrets(path: string): Promise<ClientSecrets> {
  let parsed: Record<string, ClientSecrets> & ClientSecrets;
  try {
    parsed = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new ConfigError(
      `Cannot read ${CLIENT_SECRETS} ${JSON.stringify(path)}: ${(e as Error).message}`,
    );
  }
  const s = parsed.installed ?? parsed.web ?? parsed;
  if (typeof s?.client_id !== "string") {
    throw new ConfigError(
      `${CLIENT_SECRETS} ${
        JSON.stringify(path)
      } has no client_id; download the OAuth client (Desktop app) JSON`,
    );
  }
  // The token endpoint gets the client secret, the code and the refresh token: never in clear
  // text to a host that is not this machine.
  for (const field of ["token_uri", "auth_uri"] as const) {
    const value = s[field];
    if (value === undefined) continue;
    let u: URL | undefined;
    try {
      u = new URL(value);
    } catch {
      u = undefined;
    }
    if (!u || !(u.protocol === "https:" || (u.protocol === "http:" && isLoopback(u.host)))) {
      throw new ConfigError(
        `The ${field} ${JSON.stringify(value)} in ${CLIENT_SECRETS} ${
          JSON.stringify(path)
        } is not an https URL (plain http only for a loopback host); download the JSON again`,
      );
    }
  }
  return s;
}

function createGoogleDriveClient(ctx: Context): Client {
  let apiCache: DriveApi | undefined;

  /**
   * The installed-app flow (RFC 8252 with PKCE, S256): print the consent URL, read the code the
   * user pastes (the `code=` value, or the whole address of the page Google sent them to), and
   * trade it with its verifier for a refresh token.
   */
  async function authorizationCode(
    secrets: ClientSecrets,
    tokenUrl: string,
  ): Promise<OAuth2Tokens> {
    const verifier = base64Url(crypto.getRandomValues(new Uint8Array(48))).replace(/=+$/, "");
    const challenge = base64Url(createHash("sha256").update(verifier).digest()).replace(/=+$/, "");
    const url = new URL(secrets.auth_uri ?? DEFAULT_AUTH_URI);
    url.searchParams.set("client_id", secrets.client_id);
    url.searchParams.set("redirect_uri", REDIRECT_URI);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("scope", DRIVE_SCOPE);
    url.searchParams.set("access_type", "offline");
    url.searchParams.set("prompt", "consent");
    url.searchParams.set("code_challenge", challenge);
    url.searchParams.set("code_challenge_method", "S256");
    const code = pastedCode(
      await ctx.prompt.readCode(
        url.href,
        "Open this URL, allow access, and paste the code= value (or the whole address) of the page it sends you to:",
      ),
    );
    if (!code) throw new AuthError("No authorization code given; run the command again");
    ctx.log.addSecret(code);
    const form = new URLSearchParams({
      grant_type: "authorization_code",
      code,
      client_id: secrets.client_id,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    });
    if (secrets.client_secret) form.set("client_secret", secrets.client_secret);
    const res = await ctx.http.request(tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: form.toString(),
      // OAuth2 refusals are 400/401 with {error, error_description}: read them, not a bare status.
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
    let parsed: unknown = {};
    try {
      parsed = JSON.parse(text);
    } catch {
      // A refusal without JSON is reported by its status below.
    }
    const data = (parsed ?? {}) as {
      access_token?: unknown;
      refresh_token?: unknown;
      expires_in?: unknown;
      error?: unknown;
      error_description?: unknown;
    };
    if (!res.ok || typeof parsed !== "object") {
      const why = typeof data.error === "string"
        ? `${data.error}${
          typeof data.error_description === "string" ? `: ${data.error_description}` : ""
        }`
        : `HTTP ${res.status}`;
      throw new AuthError(
        `Google refused the authorization code (${why}); run the command again and paste a new code`,
      );
    }
    if (typeof data.refresh_token !== "string" || typeof data.access_token !== "string") {
      throw new AuthError("The token endpoint gave no refresh token; run the command again");
    }
    ctx.log.addSecret(data.access_token);
    ctx.log.addSecret(data.refresh_token);
    return {
      refreshToken: data.refresh_token,
      accessToken: data.access_token,
      expiresAt: Date.now() + (typeof data.expires_in === "number" ? data.expires_in : 3600) * 1000,
    };
  }

  async function installedAppAuth(path: string): Promise<Authorizer> {
    const secrets = await readClientSecrets(path);
    const tokenUrl = secrets.token_uri ?? DEFAULT_TOKEN_URI;
    const key = `oauth:${secrets.client_id}`;
    let kept = ctx.credentials.get<OAuth2Tokens>(key);
    if (!kept?.refreshToken) {
      kept = await authorizationCode(secrets, tokenUrl);
      ctx.credentials.set(key, kept);
    }
    return forgetRefusedSignIn(
      oauth2RefreshAuth({
        http: ctx.http,
        tokenUrl,
        clientId: secrets.client_id,
        clientSecret: secrets.client_secret,
        ...kept,
        onTokens: (tokens) => ctx.credentials.set(key, tokens),
        log: ctx.log,
        signal: ctx.signal,
      }),
      () => ctx.credentials.delete(key),
    );
  }

  async function api(): Promise<DriveApi> {
    if (apiCache) return apiCache;
    const base = driveBase(ctx.settings.get(BASE));
    const secrets = ctx.settings.get(CLIENT_SECRETS);
    const account = ctx.settings.get(SERVICE_ACCOUNT);
    let auth: Authorizer;
    if (secrets) auth = await installedAppAuth(secrets);
    else if (account) {
      auth = serviceAccountAuth(ctx, {
        setting: SERVICE_ACCOUNT,
        path: account,
        scopes: [DRIVE_SCOPE],
        origin: base.origin,
      });
    } else {
      throw new ConfigError(
        `No Google credentials: set ${CLIENT_SECRETS} (an OAuth client JSON) or ${SERVICE_ACCOUNT} (a service account key)`,
      );
    }
    apiCache = { http: ctx.http, base, auth, signal: ctx.signal };
    return apiCache;
  }

  const rootName = () => ctx.settings.get(ROOT)?.trim() || "sregistry";

  const containers = (folder: string) =>
    `mimeType=${quote(MEDIA)} and ${hasProperty("type", "container")} and ${
      quote(folder)
    } in parents and trashed=false`;

  const uriOf = (f: DriveFile) =>
    `${SCHEME}://${f.properties?.uri ?? f.name.replace(/\.(sif|simg)$/, "")}`;

  /** The files an image name means, newest first. */
  async function resolve(image: string): Promise<{ names: ParsedName; files: DriveFile[] }> {
    const names = parseImageName(removeUri(image));
    const a = await api();
    const folder = await findFolder(a, rootName());
    if (!folder) return { names, files: [] };
    let q = `${containers(folder)} and ${hasProperty("url", names.url)} and ${
      hasProperty("tag", names.tag)
    }`;
    if (names.version) q += ` and ${hasProperty("version", names.version)}`;
    const files = (await listFiles(a, q))
      .sort((x, y) => (y.modifiedTime ?? "").localeCompare(x.modifiedTime ?? ""));
    return { names, files };
  }

  async function one(image: string): Promise<{ names: ParsedName; file: DriveFile }> {
    const { names, files } = await resolve(image);
    if (!files.length) {
      throw new NotFoundError(
        `No image ${SCHEME}://${names.uri} in the Drive folder ${
          JSON.stringify(rootName())
        }; list them with "sregistry search ${SCHEME}://"`,
      );
    }
    return { names, file: files[0] };
  }

  async function describe(names: ParsedName, f: DriveFile): Promise<RemoteRecord> {
    const a = await api();
    const url = driveUrl(a, `drive/v3/files/${encodeURIComponent(f.id)}`, { alt: "media" }).href;
    const size = Number(f.size);
    // The original's property, else Drive's own checksum (a file another tool uploaded).
    const digest = f.properties?.sha256sum ?? f.sha256Checksum;
    const version = names.version ?? f.properties?.version;
    return {
      url,
      ...(digest ? { digest: digest.startsWith("sha256:") ? digest : `sha256:${digest}` } : {}),
      ...(Number.isSafeInteger(size) ? { size } : {}),
      metadata: { ...f.properties, id: f.id, name: f.name, modifiedTime: f.modifiedTime, url },
      suggestedName: `${names.url}:${names.tag}${version ? `@${version}` : ""}`,
    };
  }

  return {
    name: SCHEME,

    async pull(image: string, into: PullTarget): Promise<PulledImage> {
      const { names, file } = await one(image);
      const a = await api();
      const record = await describe(names, file);
      const r = await download({
        http: ctx.http,
        url: record.url!,
        dest: into.resumable,
        auth: a.auth,
        expectedDigest: record.digest,
        expectedSize: record.size,
        progress: ctx.progress,
        label: removeUri(image),
        signal: ctx.signal,
      });
      await Deno.rename(into.resumable, into.path);
      return { ...record, file: into.path, format: "unknown", digest: r.digest, size: r.size };
    },

    async record(image: string): Promise<RemoteRecord> {
      const { names, file } = await one(image);
      return await describe(names, file);
    },

    async push(path, options) {
      const given = parseImageName(options.name, { tag: options.tag });
      const a = await api();
      const { digest, size } = await hashFile(path);
      const hex = digest.slice("sha256:".length);
      const names = parseImageName(options.name, {
        tag: options.tag,
        version: given.version ?? hex,
      });
      let labels: Record<string, unknown> = {};
      try {
        labels = await ctx.metadata(path);
      } catch (e) {
        ctx.log.verbose(`No labels read from ${path}: ${(e as Error).message}`);
      }
      const { properties, dropped } = driveProperties(names, hex, labels);
      if (dropped.length) {
        ctx.log.warning(
          `Left out of the Drive properties (124 bytes each): ${dropped.join(", ")}`,
        );
      }
      const thumb = driveThumbnail(await ctx.thumbnail());
      if ("skipped" in thumb) {
        ctx.log.warning(
          `Pushing without a thumbnail: SREGISTRY_THUMBNAIL ${thumb.skipped}; point it at a PNG, GIF or JPEG of at most 2 MB`,
        );
      }
      const chunkSize = chunkSetting(ctx.settings.get(CHUNK));
      // A session of an earlier, interrupted push of the same bytes to the same name continues.
      const key = `upload:${rootName()}/${names.storage}`;
      const kept = ctx.credentials.get<{ session?: string; digest?: string; size?: number }>(key);
      let session = kept?.digest === digest && kept.size === size ? kept.session : undefined;
      let res: Response | undefined;
      for (let fresh = 0; !res; fresh++) {
        const resume = session !== undefined;
        if (!session) {
          if (fresh > 1) throw new NetworkError(`Drive keeps losing the upload of ${names.uri}`);
          const folder = await ensureFolder(a, rootName());
          session = await startUpload(a, {
            name: names.storage,
            mimeType: MEDIA,
            parents: [folder],
            properties,
            ...("skipped" in thumb ? {} : { contentHints: { thumbnail: thumb } }),
          }, size);
          ctx.credentials.set(key, { session, digest, size });
        }
        ctx.log.addSecret(new URL(session).searchParams.get("upload_id") ?? undefined);
        const r = await sessionUpload({
          http: ctx.http,
          session,
          resume,
          file: path,
          auth: a.auth,
          chunkSize,
          contentType: MEDIA,
          progress: ctx.progress,
          label: names.uri,
          signal: ctx.signal,
        });
        if ("gone" in r) {
          ctx.log.verbose(`The upload session of ${names.uri} expired; starting a new one`);
          session = undefined;
        } else res = r.done;
      }
      ctx.credentials.delete(key);
      const made = await res.json().catch(() => undefined) as DriveFile | undefined;
      if (!made?.id) throw new NetworkError(`Drive did not confirm the upload of ${names.uri}`);
      if (made.sha256Checksum && made.sha256Checksum.toLowerCase() !== hex) {
        // The damaged copy is not left to be pulled: the file is removed, the push can be redone.
        await deleteFile(a, made.id).catch(() => false);
        throw new IntegrityError(
          `Drive holds other bytes than were sent for ${names.uri} (sha256 ${
            made.sha256Checksum.slice(0, 12)
          }..., expected ${hex.slice(0, 12)}...); the file was removed, push it again`,
        );
      }
      // The original left a duplicate on every re-push of a name: the new file replaces the older
      // ones of the same name (same version) once it is complete, as a push elsewhere overwrites.
      // Only older ones: two pushes of one name at once keep the newer file, not neither.
      const folder = await findFolder(a, rootName());
      if (folder) {
        const older = (await listFiles(
          a,
          `${containers(folder)} and name=${quote(names.storage)}`,
        )).filter((f) => isOlder(f, made));
        for (const f of older) await deleteFile(a, f.id);
        if (older.length) {
          ctx.log.verbose(`Replaced ${older.length} older file(s) named ${names.storage}`);
        }
      }
      return {
        url: driveUrl(a, `drive/v3/files/${encodeURIComponent(made.id)}`, { alt: "media" }).href,
        digest,
        size,
      };
    },

    async search(query: string | undefined): Promise<SearchHit[]> {
      const a = await api();
      const folder = await findFolder(a, rootName());
      if (!folder) return [];
      const q = query ? removeUri(query).toLowerCase() : "";
      return (await listFiles(a, containers(folder)))
        .filter((f) =>
          !q || f.id.toLowerCase().includes(q) || f.name.toLowerCase().includes(q) ||
          Object.values(f.properties ?? {}).some((v) => v.toLowerCase().includes(q))
        )
        .map((f) => ({
          uri: uriOf(f),
          details: { id: f.id, size: f.size, modified: f.modifiedTime },
        }));
    },

    async share(image: string, options: { shareTo?: string }): Promise<string> {
      const email = options.shareTo?.trim();
      if (!email || !email.includes("@")) {
        throw new ConfigError(
          `Drive shares with a person: give --email (got ${JSON.stringify(email ?? "")})`,
        );
      }
      const { file } = await one(image);
      const id = await shareFile(await api(), file.id, email);
      return `Share to ${email} complete: ${id}`;
    },

    async delete(image: string, options: { force?: boolean }) {
      const { files, names } = await resolve(image);
      if (!files.length) await one(image);
      if (files.length > 1 && !options.force) {
        const ok = await ctx.prompt.confirm(
          `${SCHEME}://${names.uri} names ${files.length} files; delete them all?`,
          { default: false },
        );
        if (!ok) return { deleted: [] };
      }
      const a = await api();
      const deleted: string[] = [];
      for (const f of files) if (await deleteFile(a, f.id)) deleted.push(uriOf(f));
      return { deleted };
    },
  };
}

/** The google-drive client factory. */
export const googleDriveFactory: ClientFactory = {
  scheme: SCHEME,
  aliases: ["google_drive"],
  description: "Google Drive folder (OAuth installed app or service account; resumable uploads)",
  settings: [
    {
      name: CLIENT_SECRETS,
      description: "path to an OAuth client JSON (Desktop app); the refresh token is kept",
    },
    {
      name: SERVICE_ACCOUNT,
      description: "path to a service account key JSON (used when no OAuth client is set)",
    },
    { name: ROOT, description: "the Drive folder (created on first push)", default: "sregistry" },
    {
      name: BASE,
      description: "the API base; plain http only for loopback",
      default: DEFAULT_BASE,
    },
    {
      name: CHUNK,
      description: "resumable upload chunk size, a multiple of 256K",
      default: String(DEFAULT_CHUNK),
    },
  ],
  create: createGoogleDriveClient,
};
