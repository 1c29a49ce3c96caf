/**
 * Where a Singularity Registry Server's endpoints are, from SREGISTRY_REGISTRY_BASE or a host in
 * the URI. The API lives at `<server>/api/` and the upload and builder endpoints at the server's
 * root; both are computed on the parsed URL's path segments. The original computed the upload URL
 * with `base.replace("/api", "")`, which cut the first `/api` anywhere in the string (a host named
 * `api.example.org`, a path `/apis/`) and sent large uploads to the wrong place.
 * @module
 */

import { ConfigError, UsageError } from "../../core/errors.ts";
import { isLoopback } from "../../core/http.ts";
import { parseBoolean } from "../../core/settings.ts";

/** A server's two roots. */
export interface Endpoints {
  /** `<server>/api/` (trailing slash), for `/container/...`, `/collections/`, `chunked_upload`. */
  api: URL;
  /** `<server>/` (trailing slash), for `/upload` and `/google_build/build/`. */
  root: URL;
}

/** `http` or `https` for a host named without a scheme: NOHTTPS wins, else loopback is http. */
export function schemeFor(host: string, noHttps: string | undefined): "http" | "https" {
  if (noHttps !== undefined && noHttps.trim() !== "") {
    return parseBoolean(noHttps) ? "http" : "https";
  }
  return isLoopback(host.replace(/:\d+$/, "").replace(/^\[|\]$/g, "")) ? "http" : "https";
}

/**
 * The endpoints of a base URL: a path ending in the segment `api` is the API itself, any other
 * path is the server (its API is `<path>/api/`). A base without a scheme gets one by
 * {@link schemeFor}.
 * @throws {UsageError} when the base is not an http(s) URL.
 */
export function endpointsOf(
  base: string,
  noHttps?: string,
  setting = "SREGISTRY_REGISTRY_BASE",
): Endpoints {
  const raw = base.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw)
    ? raw
    : `${schemeFor(raw.split("/")[0], noHttps)}://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(
      `${setting} ${JSON.stringify(base)} is not a URL: use https://registry.example.org`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(
      `${setting} ${JSON.stringify(base)} is not an http(s) URL: use https://registry.example.org`,
    );
  }
  const segments = url.pathname.split("/").filter((s) => s !== "");
  const server = segments.at(-1) === "api" ? segments.slice(0, -1) : segments;
  const rootPath = server.length ? `/${server.join("/")}/` : "/";
  const root = new URL(rootPath, url.origin);
  return { root, api: new URL("api/", root) };
}

/**
 * The endpoints for an image: its URI's host when it names one (the original partly ignored it),
 * keeping the base's path when the hosts agree; else the base.
 * @throws {ConfigError} when neither is given.
 */
export function resolveEndpoints(
  host: string | undefined,
  base: string | undefined,
  noHttps: string | undefined,
): Endpoints {
  if (host) {
    if (base) {
      const b = endpointsOf(base, noHttps);
      if (b.api.host === host.toLowerCase()) return b;
    }
    return endpointsOf(`${schemeFor(host, noHttps)}://${host}`, noHttps, "The registry host");
  }
  if (base) return endpointsOf(base, noHttps);
  throw new ConfigError(
    'The registry client needs SREGISTRY_REGISTRY_BASE (the server\'s URL): export it, run "sregistry backend add registry BASE https://registry.example.org", or name the host in the URI (registry://host/collection/image:tag)',
  );
}
