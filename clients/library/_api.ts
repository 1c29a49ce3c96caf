/**
 * Calls to the library API: the bearer token, JSON bodies sent as scs-library-client sends them
 * (no Content-Type header: Singularity Registry Server answers 415 to one on its tag calls), and
 * the `{"data", "error": {code, message}}` envelope turned into typed errors.
 * @module
 */

import { AuthError, NetworkError, NotFoundError } from "../../core/errors.ts";
import { bearerToken } from "../../core/auth/basic.ts";
import type { Authorizer } from "../../core/auth/types.ts";
import type { Context } from "../types.ts";

/** A method and path relative to the library API base, with an optional JSON body. */
export interface ApiCall {
  method?: string;
  body?: unknown;
  /** Cancels the call (default: the command's signal). */
  signal?: AbortSignal;
}

/** The library API of one remote. */
export interface LibraryApi {
  /** The API base URL (no trailing slash). */
  readonly base: string;
  /** The authorizer bound to the API's origin (presigned URLs elsewhere get nothing). */
  readonly auth: Authorizer;
  /** Call `path` and return the envelope's `data`. */
  call<T>(path: string, init?: ApiCall): Promise<T>;
  /** The server's `apiVersion` (`version`), or undefined when it does not say. */
  apiVersion(): Promise<string | undefined>;
}

/**
 * Go's semver precedence for the versions the library API reports (`2.0.0-alpha.1`): whether
 * `version` is at least `wanted`.
 */
export function versionAtLeast(version: string | undefined, wanted: string): boolean {
  if (!version) return false;
  const parse = (v: string) => {
    const [core, ...rest] = v.trim().replace(/^v/, "").split("-");
    return { core: core.split(".").map((n) => Number(n) || 0), pre: rest.join("-") };
  };
  const a = parse(version), b = parse(wanted);
  for (let i = 0; i < 3; i++) {
    const x = a.core[i] ?? 0, y = b.core[i] ?? 0;
    if (x !== y) return x > y;
  }
  if (!a.pre || !b.pre) return !a.pre;
  const pa = a.pre.split("."), pb = b.pre.split(".");
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if (pa[i] === undefined) return false;
    if (pb[i] === undefined) return true;
    const na = /^\d+$/.test(pa[i]) ? Number(pa[i]) : undefined;
    const nb = /^\d+$/.test(pb[i]) ? Number(pb[i]) : undefined;
    if (pa[i] === pb[i]) continue;
    if (na !== undefined && nb !== undefined) return na > nb;
    if (na !== undefined) return false;
    if (nb !== undefined) return true;
    return pa[i] > pb[i];
  }
  return true;
}

/** The library API at `base`, with the token when there is one. */
export function libraryApi(ctx: Context, base: string, token: string | undefined): LibraryApi {
  const auth: Authorizer = token
    ? bearerToken(token, { log: ctx.log, origin: new URL(base).origin })
    : { authorize() {} };
  let version: Promise<string | undefined> | undefined;
  const api: LibraryApi = {
    base,
    auth,
    async call<T>(path: string, init: ApiCall = {}): Promise<T> {
      const method = (init.method ?? "GET").toUpperCase();
      const body = init.body === undefined
        ? undefined
        : new TextEncoder().encode(JSON.stringify(init.body));
      // 4xx answers carry the library's own message; 5xx, 408 and 429 stay with core/http's retries.
      const res = await ctx.http.request(`${base}/${path}`, {
        method,
        body,
        headers: { accept: "application/json" },
        auth,
        signal: init.signal ?? ctx.signal,
        accept: (s) => s < 300 || (s >= 400 && s < 500 && s !== 408 && s !== 429),
      });
      const text = await res.text();
      let parsed: { data?: unknown; error?: { code?: number; message?: string } } | undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        if (res.ok) {
          throw new NetworkError(
            `The library at ${new URL(base).host} returned a malformed answer to ${method} ${path}`,
            { status: res.status },
          );
        }
      }
      if (res.ok) {
        return (parsed && typeof parsed === "object" && "data" in parsed
          ? parsed.data
          : parsed) as T;
      }
      const why = parsed?.error?.message ?? text.slice(0, 200).trim();
      const what = `${method} ${path.split("?")[0]}`;
      const detail = why ? `: ${why}` : "";
      if (res.status === 401 || res.status === 403) {
        throw new AuthError(
          `The library refused ${what} (${res.status}${detail}); check SREGISTRY_LIBRARY_TOKEN`,
        );
      }
      if (res.status === 404) {
        throw new NotFoundError(`Not found (404) at the library: ${what}${detail}`);
      }
      throw new NetworkError(`The library refused ${what} (${res.status}${detail})`, {
        status: res.status,
      });
    },
    apiVersion() {
      version ??= (async () => {
        try {
          const v = await api.call<{ apiVersion?: string }>("version");
          return typeof v?.apiVersion === "string" ? v.apiVersion : undefined;
        } catch (e) {
          ctx.log.verbose(`The library gave no API version (${(e as Error).message})`);
          return undefined;
        }
      })();
      return version;
    },
  };
  return api;
}
