/**
 * Dropbox API v2 calls: RPC endpoints (JSON body on the API host) and content endpoints (the
 * argument in the `Dropbox-API-Arg` header, raw bytes as the body, on the content host). Errors
 * come back as `{error_summary, error: {".tag"}}`: 409 is an endpoint error (`path/not_found`...).
 * @module
 */

import { createHash } from "node:crypto";
import type { Authorizer } from "../../core/auth/types.ts";
import { serviceBase } from "../../core/base_url.ts";
import { AuthError, NetworkError, NotFoundError } from "../../core/errors.ts";
import { type Http, MAX_JSON_BYTES, readBody } from "../../core/http.ts";

/** Where the two hosts are and how to reach them. */
export interface DropboxApi {
  /** The transport. */
  http: Http;
  /** `https://api.dropboxapi.com` (RPC and `/oauth2/token`). */
  apiBase: string;
  /** `https://content.dropboxapi.com` (uploads and downloads). */
  contentBase: string;
  /** The authorizer (a token, or refreshed OAuth2 tokens). */
  auth: Authorizer;
  /** Cancels calls. */
  signal?: AbortSignal;
}

/** An endpoint error answer (HTTP 409). */
export interface DropboxError {
  /** `path/not_found/..`. */
  error_summary?: string;
  /** The tagged union. */
  error?: Record<string, unknown> & { ".tag"?: string };
}

/** A 409 answer, kept typed so callers can look at the tag. */
export class DropboxEndpointError extends NetworkError {
  /** The parsed answer. */
  readonly answer: DropboxError;
  /** Build one from an endpoint and its answer. */
  constructor(endpoint: string, answer: DropboxError) {
    super(`Dropbox ${endpoint} failed: ${answer.error_summary ?? "unknown error"}`, {
      status: 409,
    });
    this.answer = answer;
  }
}

/** A base URL setting: https, or plain http for a loopback host; a path prefix is kept. */
export function baseUrl(name: string, value: string): string {
  return serviceBase(name, value, "https://api.dropboxapi.com");
}

/** JSON for an HTTP header: Dropbox wants non-ASCII characters escaped as `\uXXXX`. */
export function headerJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

async function answer<T>(api: DropboxApi, endpoint: string, res: Response): Promise<T> {
  const text = new TextDecoder().decode(
    await readBody(api.http, res, {
      limit: MAX_JSON_BYTES,
      what: `The answer of ${endpoint}`,
      signal: api.signal,
    }),
  );
  let data: unknown;
  try {
    data = text === "" ? null : JSON.parse(text);
  } catch {
    // Bad input is a 400 in plain text that says what is wrong ("missing required field ...").
    const said = text.trim().split("\n")[0].slice(0, 300);
    throw new NetworkError(
      `Dropbox ${endpoint} answered HTTP ${res.status}${said ? `: ${said}` : " with no JSON"}`,
      { status: res.status },
    );
  }
  if (res.status === 409) {
    const e = new DropboxEndpointError(endpoint, (data ?? {}) as DropboxError);
    if (/not_found/.test(e.answer.error_summary ?? "")) {
      throw Object.assign(new NotFoundError(e.message), { answer: e.answer });
    }
    throw e;
  }
  if (!res.ok) {
    throw new NetworkError(
      `Dropbox ${endpoint} answered HTTP ${res.status}: ${text.slice(0, 200)}`,
      {
        status: res.status,
      },
    );
  }
  return data as T;
}

/**
 * A refused token, said in Dropbox's terms: an expired short-lived token (`expired_access_token`)
 * needs a new one or the refresh-token flow, which renews them by itself.
 */
export function dropboxAuthError(e: unknown): unknown {
  if (!(e instanceof AuthError)) return e;
  if (/expired_access_token/.test(e.message)) {
    return new AuthError(
      "Dropbox says the access token expired (they last about 4 hours): set a new SREGISTRY_DROPBOX_TOKEN, or set only SREGISTRY_DROPBOX_APP_KEY to sign in once and have tokens renewed",
      { cause: e },
    );
  }
  if (/invalid_access_token/.test(e.message)) {
    return new AuthError(
      "Dropbox refused the access token (invalid_access_token): check SREGISTRY_DROPBOX_TOKEN, or sign in again with SREGISTRY_DROPBOX_APP_KEY",
      { cause: e },
    );
  }
  return e;
}

/** Call an RPC endpoint (`/2/files/get_metadata`) with a JSON argument. */
export async function rpc<T>(api: DropboxApi, endpoint: string, arg: unknown): Promise<T> {
  let res: Response;
  try {
    res = await api.http.request(`${api.apiBase}${endpoint}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(arg),
      auth: api.auth,
      accept: (s) => (s >= 200 && s < 300) || s === 409,
      signal: api.signal,
    });
  } catch (e) {
    throw dropboxAuthError(e);
  }
  return await answer<T>(api, endpoint, res);
}

/** Call a content-upload endpoint with the argument in `Dropbox-API-Arg`. */
export async function content<T>(
  api: DropboxApi,
  endpoint: string,
  arg: unknown,
  body: () => BodyInit | null | Promise<BodyInit | null>,
): Promise<T> {
  let res: Response;
  try {
    res = await api.http.request(`${api.contentBase}${endpoint}`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream", "dropbox-api-arg": headerJson(arg) },
      bodyFactory: body,
      auth: api.auth,
      accept: (s) => (s >= 200 && s < 300) || s === 409,
      signal: api.signal,
    });
  } catch (e) {
    throw dropboxAuthError(e);
  }
  return await answer<T>(api, endpoint, res);
}

/** File metadata as Dropbox returns it (the fields we read). */
export interface FileMetadata {
  /** `file` or `folder`. */
  ".tag"?: string;
  /** The base name. */
  name: string;
  /** Lower-cased path. */
  path_lower?: string;
  /** Path as shown. */
  path_display?: string;
  /** Unique id. */
  id?: string;
  /** Bytes. */
  size?: number;
  /** Revision. */
  rev?: string;
  /** Dropbox's content hash (its own block hash, not sha256). */
  content_hash?: string;
  /** Upload time. */
  server_modified?: string;
}

/** Dropbox's content hash block: 4 MiB. */
export const HASH_BLOCK = 4 * 1024 * 1024;

/**
 * Dropbox's `content_hash` of a file: the SHA-256 of the concatenated SHA-256 digests of its 4 MiB
 * blocks, in hex (Dropbox's "Content hash" reference). Dropbox keeps no SHA-256 of the whole file,
 * so this is what a pull is checked against.
 */
export async function contentHash(path: string): Promise<string> {
  const outer = createHash("sha256");
  const file = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(HASH_BLOCK);
    for (;;) {
      let got = 0;
      while (got < buf.length) {
        const n = await file.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      if (got === 0) break;
      outer.update(createHash("sha256").update(buf.subarray(0, got)).digest());
      if (got < buf.length) break;
    }
  } finally {
    file.close();
  }
  return outer.digest("hex");
}
