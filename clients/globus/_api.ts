/**
 * Globus Transfer API v0.10 calls (`https://transfer.api.globus.org/v0.10`) with the documents this
 * client reads. Errors come back as `{code, message, request_id, resource}`: 401
 * `AuthenticationFailed`, 403 `PermissionDenied`, 404 `EndpointNotFound` / `ClientError.NotFound`,
 * 400 `ClientError.BadRequest`; they become the typed errors of core/errors.ts with Globus's own
 * code and message. 5xx answers are retried by core/http.
 * @module
 */

import type { Authorizer } from "../../core/auth/types.ts";
import { AuthError, NetworkError, NotFoundError } from "../../core/errors.ts";
import { type Http, MAX_JSON_BYTES, readBody } from "../../core/http.ts";

/** How to reach the Transfer API. */
export interface TransferApi {
  /** The transport. */
  http: Http;
  /** `https://transfer.api.globus.org/v0.10`. */
  base: string;
  /** The transfer-scoped bearer token authorizer. */
  auth: Authorizer;
  /** Cancels calls. */
  signal?: AbortSignal;
  /** Where the saved tokens live (named in a refusal, so the user can sign in again). */
  tokenFile?: string;
}

/** An endpoint document (the fields read). */
export interface EndpointDoc {
  /** The endpoint id (a UUID). */
  id: string;
  /** The name shown in the web app. */
  display_name?: string | null;
  /** `owner#name`, legacy. */
  canonical_name?: string | null;
  /** The owner's identity. */
  owner_string?: string | null;
  /** A Globus Connect Personal endpoint. */
  is_globus_connect?: boolean;
  /** A Globus Connect Personal endpoint whose program is running. */
  gcp_connected?: boolean | null;
  /** A Globus Connect Personal endpoint paused by its owner. */
  gcp_paused?: boolean | null;
  /** Description. */
  description?: string | null;
}

/** One entry of an `ls`. */
export interface FileDoc {
  /** Base name. */
  name: string;
  /** `file`, `dir` or `link`. */
  type: string;
  /** Bytes. */
  size?: number;
  /** `YYYY-MM-DD hh:mm:ss+00:00`. */
  last_modified?: string;
}

/** A task document (the fields read). */
export interface TaskDoc {
  /** The task id. */
  task_id: string;
  /** `TRANSFER` or `DELETE`. */
  type: string;
  /** `ACTIVE`, `INACTIVE`, `SUCCEEDED` or `FAILED`. */
  status: string;
  /** The task's label. */
  label?: string | null;
  /** Source endpoint id (transfers). */
  source_endpoint_id?: string | null;
  /** Its display name. */
  source_endpoint_display_name?: string | null;
  /** Destination endpoint id (transfers; the endpoint of a delete). */
  destination_endpoint_id?: string | null;
  /** The current condition in one word (`OK`, `Queued`, `PERMISSION_DENIED`...). */
  nice_status?: string | null;
  /** The same in a few words. */
  nice_status_short_description?: string | null;
  /** Paused by the owner, an administrator or an endpoint rule. */
  is_paused?: boolean;
  /** Why a task failed. */
  fatal_error?: { code?: string; description?: string } | null;
  /** Bytes moved so far. */
  bytes_transferred?: number;
  /** Files in the task. */
  files?: number;
  /** Files done. */
  files_transferred?: number;
}

/** A Transfer API error answer. */
export interface GlobusErrorDoc {
  /** `AuthenticationFailed`, `ClientError.NotFound`... */
  code?: string;
  /** What went wrong. */
  message?: string;
  /** Globus's request id (quoted in support requests). */
  request_id?: string;
}

function describe(e: GlobusErrorDoc, status: number): string {
  const what = e.code && e.message ? `${e.code}: ${e.message}` : e.code ?? e.message ??
    `HTTP ${status}`;
  return `${what.replace(/\s+/g, " ").trim()}${e.request_id ? ` (request ${e.request_id})` : ""}`;
}

/** One Transfer API call; JSON in and out. */
export async function call<T>(
  api: TransferApi,
  method: "GET" | "POST",
  path: string,
  options: { query?: Record<string, string>; body?: unknown } = {},
): Promise<T> {
  const url = new URL(`${api.base}${path}`);
  for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
  let res: Response;
  try {
    res = await api.http.request(url, {
      method,
      headers: options.body === undefined ? {} : { "content-type": "application/json" },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      auth: api.auth,
      accept: (s) => s >= 200 && s < 500,
      signal: api.signal,
    });
  } catch (e) {
    if (e instanceof AuthError && api.tokenFile) {
      throw new AuthError(`${e.message}; or remove ${api.tokenFile} to sign in to Globus again`, {
        cause: e,
      });
    }
    throw e;
  }
  const text = new TextDecoder().decode(
    await readBody(api.http, res, {
      limit: MAX_JSON_BYTES,
      what: `The answer of Globus ${path}`,
      signal: api.signal,
    }),
  );
  let data: unknown;
  try {
    data = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new NetworkError(`Globus ${method} ${path} answered HTTP ${res.status} with no JSON`, {
      status: res.status,
    });
  }
  if (res.ok) return data as T;
  const why = describe((data ?? {}) as GlobusErrorDoc, res.status);
  if (res.status === 401) {
    throw new AuthError(
      `Globus refused the sign-in for ${path} (${why}); ${
        api.tokenFile ? `remove ${api.tokenFile} and ` : ""
      }run the command again to sign in`,
    );
  }
  if (res.status === 403) {
    throw new AuthError(`Globus denied ${method} ${path} (${why}); check your access to it`);
  }
  if (res.status === 404) throw new NotFoundError(`Globus has no ${path} (${why})`);
  throw new NetworkError(`Globus ${method} ${path} was refused: ${why}`, { status: res.status });
}

/** `GET /endpoint/<id>`, with a not-found message that names the endpoint. */
export async function getEndpoint(api: TransferApi, id: string): Promise<EndpointDoc> {
  try {
    return await call<EndpointDoc>(api, "GET", `/endpoint/${encodeURIComponent(id)}`);
  } catch (e) {
    if (e instanceof NotFoundError) {
      throw new NotFoundError(
        `No Globus endpoint ${
          JSON.stringify(id)
        }; find its id with "sregistry search globus://<words>"`,
      );
    }
    throw e;
  }
}

/** `GET /operation/endpoint/<id>/ls?path=<dir>`: the folder's entries. */
export async function listDir(api: TransferApi, endpoint: string, dir: string): Promise<FileDoc[]> {
  const r = await call<{ DATA?: FileDoc[] }>(
    api,
    "GET",
    `/operation/endpoint/${encodeURIComponent(endpoint)}/ls`,
    { query: dir === "" ? {} : { path: dir } },
  );
  return r.DATA ?? [];
}

/** `GET /submission_id`, then `POST /transfer` or `POST /delete`: returns the task id. */
export async function submitTask(
  api: TransferApi,
  kind: "transfer" | "delete",
  document: Record<string, unknown>,
): Promise<string> {
  const { value } = await call<{ value: string }>(api, "GET", "/submission_id");
  // The submission id makes a retried POST (after a dropped answer) the same task, not a second.
  const r = await call<{ task_id?: string; code?: string; message?: string }>(
    api,
    "POST",
    `/${kind}`,
    { body: { DATA_TYPE: kind, submission_id: value, ...document } },
  );
  if (!r.task_id) {
    throw new NetworkError(
      `Globus accepted no ${kind} task (${r.code ?? "no code"}: ${r.message})`,
    );
  }
  return r.task_id;
}

/** A label Globus accepts (letters, digits, spaces, `-`, `_`, `,`; at most 128). */
export function taskLabel(text: string): string {
  return text.replace(/[^A-Za-z0-9 _,-]+/g, "-").slice(0, 128);
}

/** The most results `endpoint_search` pages through: Globus refuses `offset + limit` above 1000. */
export const ENDPOINT_SEARCH_MAX = 1000;
/** The largest page `endpoint_search` answers. */
const ENDPOINT_SEARCH_PAGE = 100;

/** One page of `endpoint_search` (an `endpoint_list` document). */
interface EndpointList {
  DATA?: EndpointDoc[];
  offset?: number;
  limit?: number;
  has_next_page?: boolean;
}

/**
 * `GET /endpoint_search` through every page (`offset`/`limit`, until `has_next_page` is false), up
 * to the {@link ENDPOINT_SEARCH_MAX} results Globus serves; `truncated` says more matched.
 */
export async function searchEndpoints(
  api: TransferApi,
  query: { filter_scope: string; filter_fulltext?: string },
): Promise<{ endpoints: EndpointDoc[]; truncated: boolean }> {
  const endpoints: EndpointDoc[] = [];
  let offset = 0;
  for (;;) {
    const limit = Math.min(ENDPOINT_SEARCH_PAGE, ENDPOINT_SEARCH_MAX - offset);
    const page = await call<EndpointList>(api, "GET", "/endpoint_search", {
      query: {
        filter_scope: query.filter_scope,
        ...(query.filter_fulltext ? { filter_fulltext: query.filter_fulltext } : {}),
        offset: String(offset),
        limit: String(limit),
      },
    });
    const data = Array.isArray(page.DATA) ? page.DATA : [];
    endpoints.push(...data);
    // An empty page that claims more would loop for ever: it ends the search too.
    if (!page.has_next_page || data.length === 0) return { endpoints, truncated: false };
    offset += data.length;
    if (offset >= ENDPOINT_SEARCH_MAX) return { endpoints, truncated: true };
  }
}
