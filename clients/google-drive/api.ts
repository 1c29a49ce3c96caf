/**
 * The few Drive v3 calls the client makes, and the query strings it builds (Drive's `q` syntax).
 * @module
 */

import type { Authorizer } from "../../core/auth/types.ts";
import { NetworkError } from "../../core/errors.ts";
import type { Http } from "../../core/http.ts";

/** Drive's folder media type. */
export const FOLDER_TYPE = "application/vnd.google-apps.folder";

/** A Drive file as the client asks for it (`fields`). */
export interface DriveFile {
  /** The file id. */
  id: string;
  /** The file name (the image's storage name). */
  name: string;
  /** Bytes, as a decimal string. */
  size?: string;
  /** Last change (RFC 3339). */
  modifiedTime?: string;
  /** The original's properties (names, type container, labels). */
  properties?: Record<string, string>;
  /** Drive's SHA-256 of the content (hex), for files with content in Drive. */
  sha256Checksum?: string;
}

/** What every call needs. */
export interface DriveApi {
  /** The transport. */
  http: Http;
  /** The base (https://www.googleapis.com). */
  base: URL;
  /** Credentials for the base's origin. */
  auth: Authorizer;
  /** Cancels calls. */
  signal?: AbortSignal;
}

/** The fields listed and fetched. */
export const FILE_FIELDS = "id,name,size,modifiedTime,properties,sha256Checksum";

/** A quoted string literal in Drive's query language. */
export function quote(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/** `properties has { key='k' and value='v' }`. */
export function hasProperty(key: string, value: string): string {
  return `properties has { key=${quote(key)} and value=${quote(value)} }`;
}

/** A URL under the base. */
export function driveUrl(api: DriveApi, path: string, query: Record<string, string> = {}): URL {
  const u = new URL(path.replace(/^\//, ""), api.base.href.replace(/\/?$/, "/"));
  for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
  return u;
}

/** Every file a query matches, following nextPageToken. */
export async function listFiles(api: DriveApi, q: string): Promise<DriveFile[]> {
  const out: DriveFile[] = [];
  let pageToken: string | undefined;
  do {
    const url = driveUrl(api, "drive/v3/files", {
      q,
      spaces: "drive",
      fields: `nextPageToken,files(${FILE_FIELDS})`,
      pageSize: "100",
      ...(pageToken ? { pageToken } : {}),
    });
    const page = await api.http.json<{ files?: DriveFile[]; nextPageToken?: string }>(url, {
      auth: api.auth,
      signal: api.signal,
    });
    out.push(...(page.files ?? []));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return out;
}

/**
 * The query of the named folder at the top of My Drive, not in the trash (the original took any
 * folder of that name, anywhere, trashed included).
 */
export function folderQuery(name: string): string {
  return `mimeType=${quote(FOLDER_TYPE)} and name=${
    quote(name)
  } and 'root' in parents and trashed=false`;
}

/** The id of the named folder, created at the top of My Drive when missing. */
export async function ensureFolder(api: DriveApi, name: string): Promise<string> {
  const found = await listFiles(api, folderQuery(name));
  if (found.length) return found[0].id;
  const made = await api.http.json<DriveFile>(driveUrl(api, "drive/v3/files", { fields: "id" }), {
    method: "POST",
    auth: api.auth,
    signal: api.signal,
    headers: { "content-type": "application/json; charset=UTF-8" },
    body: JSON.stringify({ name, mimeType: FOLDER_TYPE }),
  });
  return made.id;
}

/** The folder's id when it exists. */
export async function findFolder(api: DriveApi, name: string): Promise<string | undefined> {
  const found = await listFiles(api, folderQuery(name));
  return found[0]?.id;
}

/** Start a resumable upload session; its URL. */
export async function startUpload(
  api: DriveApi,
  metadata: Record<string, unknown>,
  size: number,
): Promise<string> {
  const res = await api.http.request(
    driveUrl(api, "upload/drive/v3/files", { uploadType: "resumable", fields: FILE_FIELDS }),
    {
      method: "POST",
      auth: api.auth,
      signal: api.signal,
      headers: {
        "content-type": "application/json; charset=UTF-8",
        "x-upload-content-type": "application/octet-stream",
        "x-upload-content-length": String(size),
      },
      body: JSON.stringify(metadata),
    },
  );
  await res.body?.cancel();
  const location = res.headers.get("location");
  if (!location) {
    throw new NetworkError("Drive started no upload session (no Location header); try again");
  }
  return new URL(location, api.base).href;
}

/** Delete a file; false when it was already gone. */
export async function deleteFile(api: DriveApi, id: string): Promise<boolean> {
  const res = await api.http.request(driveUrl(api, `drive/v3/files/${encodeURIComponent(id)}`), {
    method: "DELETE",
    auth: api.auth,
    signal: api.signal,
    accept: (s) => (s >= 200 && s < 300) || s === 404,
  });
  await res.body?.cancel();
  return res.status !== 404;
}

/** Give `email` a reader permission on a file; the permission id. */
export async function shareFile(api: DriveApi, id: string, email: string): Promise<string> {
  const p = await api.http.json<{ id: string }>(
    driveUrl(api, `drive/v3/files/${encodeURIComponent(id)}/permissions`, { fields: "id" }),
    {
      method: "POST",
      auth: api.auth,
      signal: api.signal,
      headers: { "content-type": "application/json; charset=UTF-8" },
      body: JSON.stringify({ type: "user", role: "reader", emailAddress: email }),
    },
  );
  return p.id;
}
