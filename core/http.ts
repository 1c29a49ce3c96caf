/**
 * The only caller of `fetch`: retries with backoff, per-request authorizers (run before every
 * attempt, refreshed on a 401), safe redirects, TLS options, proxies, a User-Agent and redacted debug
 * logging.
 *
 * Why redirects are followed by hand: `fetch` keeps `Authorization` when a registry redirects a blob
 * to a storage host (S3, a CDN), which leaks the registry token and breaks presigned URLs. Here every
 * hop is checked and credential headers only go to the origin the caller addressed.
 *
 * Why there is no total timeout: large images take as long as they take. A stall is detected by lack
 * of progress (no response headers, or no body bytes, for {@link Http.stallTimeoutMs}).
 * @module
 */

import type { ClientRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import {
  AuthError,
  ConfigError,
  InterruptedError,
  NetworkError,
  NotFoundError,
  SregistryError,
} from "./errors.ts";
import type { Authorizer, AuthRequest } from "./auth/types.ts";
import type { Logger } from "./log.ts";
import { type Env, processEnv } from "./settings.ts";
import { assertFetchable, stripUserinfo, userinfoOf } from "./url.ts";
import { USER_AGENT } from "./version.ts";
import { sleep } from "./sleep.ts";
import { connectTunnel, insecureTls } from "./_proxy_tunnel.ts";
import { unreadableReason } from "./fs.ts";

export { USER_AGENT };
export { assertFetchable, stripUserinfo };

/** 1 MiB: the cap on token and other JSON answers ({@link RequestOptions.maxBytes}). */
export const MAX_JSON_BYTES = 1024 * 1024;

/** How much of an error body is read for its message; the rest is discarded. */
const ERROR_BODY_BYTES = 64 * 1024;

/**
 * The longest Retry-After honoured, and the most a request waits for Retry-After in total: a
 * server asking for an hour gets a message saying when to retry instead of a silent wait.
 */
export const MAX_RETRY_AFTER_MS = 60_000;

/** The warning printed when TLS verification is off (the original's wording). */
export const NOVERIFY_WARNING = "Verify of certificates disabled! ::TESTING USE ONLY::";

/** Headers that carry credentials: never forwarded to another origin on a redirect. */
export const CREDENTIAL_HEADERS: readonly string[] = [
  "authorization",
  "cookie",
  "proxy-authorization",
  "x-auth-token",
  "x-storage-token",
  "private-token",
  "job-token",
  "x-registry-auth",
  "x-amz-security-token",
];

/** Options of one request. */
export interface RequestOptions {
  /** HTTP method (default GET). */
  method?: string;
  /** Extra headers for this request. */
  headers?: HeadersInit;
  /** The body. A stream body cannot be re-sent, so such a request is not retried; use `bodyFactory`. */
  body?: BodyInit | null;
  /** Builds a fresh body for each attempt (streams can then be retried). Wins over `body`. */
  bodyFactory?: () => BodyInit | null | Promise<BodyInit | null>;
  /** Cancels the request. */
  signal?: AbortSignal;
  /**
   * Adds credentials before every attempt to the addressed origin (retries included) and may
   * refresh them on a 401 from it; a redirect to another origin gets no credentials.
   */
  auth?: Authorizer;
  /** Statuses returned to the caller instead of throwing (default: all 2xx; 3xx are followed). */
  accept?: (status: number) => boolean;
  /** Maximum retries on network errors, 408, 429 and 5xx (default from the client). */
  retries?: number;
  /** Do not follow redirects: 3xx answers are returned (when accepted) or raised. */
  noRedirect?: boolean;
  /** For {@link Http.json}: the largest answer read (default {@link MAX_JSON_BYTES}). */
  maxBytes?: number;
}

/** A configured HTTP client: retries, auth refresh, TLS, proxies, User-Agent, redaction. */
export interface Http {
  /** Send a request; throws a typed error (NetworkError, AuthError, NotFoundError) on failure. */
  request(url: string | URL, options?: RequestOptions): Promise<Response>;
  /** GET (or the given method) and parse JSON. */
  json<T = unknown>(url: string | URL, options?: RequestOptions): Promise<T>;
  /** The logger (redacted). */
  readonly log: Logger;
  /** A body or response that makes no progress for this long is treated as a dropped connection. */
  readonly stallTimeoutMs: number;
  /** The retry budget for network errors, 408, 429 and 5xx. */
  readonly retries: number;
  /** Wait before retry number `attempt` (1-based), honouring a Retry-After header when given. */
  backoff(attempt: number, retryAfter?: string | null, signal?: AbortSignal): Promise<void>;
}

/** Options of {@link createHttp}. */
export interface HttpOptions {
  /** Logger for debug lines (redacted). */
  log: Logger;
  /** The fetch to use (tests inject one). */
  fetch?: typeof fetch;
  /** Skip TLS verification (SREGISTRY_HTTPS_NOVERIFY). */
  insecure?: boolean;
  /** PEM CA bundle file added to the trusted roots. */
  caFile?: string;
  /** The setting that named {@link HttpOptions.caFile}, for messages (default SREGISTRY_CA_FILE). */
  caFileSetting?: string;
  /** Retry budget (default 5, or SREGISTRY_HTTP_RETRIES). */
  retries?: number;
  /** Environment for proxies and tuning (default: the process's). */
  env?: Env;
  /** Stall detection in ms (default 60 s, or SREGISTRY_STALL_TIMEOUT in seconds). */
  stallTimeoutMs?: number;
  /** Base backoff delay in ms (default 500; doubled per attempt with full jitter, capped). */
  backoffBaseMs?: number;
  /** Backoff cap in ms (default 30 s); a Retry-After over {@link MAX_RETRY_AFTER_MS} fails at once. */
  backoffMaxMs?: number;
  /** Sleeps (tests inject a fast one). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Random numbers in [0, 1) for jitter. */
  random?: () => number;
  /** Consecutive 401s tolerated within one request (default 3). */
  maxAuthRetries?: number;
  /** Maximum redirect hops (default 10). */
  maxRedirects?: number;
}

export { sleep } from "./sleep.ts";

/** Parse Retry-After (seconds or an HTTP date) into milliseconds, or undefined. */
export function parseRetryAfter(
  value: string | null | undefined,
  now = Date.now(),
): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** Whether a status is worth retrying. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501);
}

/** Whether the host of `url` is excluded from proxying by a NO_PROXY list. */
export function noProxyMatches(url: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  for (const raw of noProxy.split(/[,\s]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === "*") return true;
    const [h, p] = entry.includes(":") && !entry.includes("]") && entry.split(":").length === 2
      ? entry.split(":")
      : [entry, undefined];
    if (p && p !== port) continue;
    const bare = h.replace(/^\*?\./, "");
    if (host === bare || host.endsWith(`.${bare}`)) return true;
  }
  return false;
}

/** The proxy URL for a request, from HTTP(S)_PROXY / ALL_PROXY and NO_PROXY, or undefined. */
export function proxyFor(url: URL, env: Env): string | undefined {
  return proxySetting(url, env)?.url;
}

/** The proxy for a request and the variable that named it (`HTTPS_PROXY`, `http_proxy`…). */
export function proxySetting(url: URL, env: Env): { url: string; variable: string } | undefined {
  const get = (n: string) => {
    for (const name of [n, n.toLowerCase()]) {
      const v = env.get(name);
      if (v) return { url: v, variable: name };
    }
    return undefined;
  };
  if (noProxyMatches(url, get("NO_PROXY")?.url)) return undefined;
  return (url.protocol === "https:" ? get("HTTPS_PROXY") : get("HTTP_PROXY")) ?? get("ALL_PROXY");
}

/**
 * A one-line description of a fetch failure, with TLS problems named as such. With a proxy, a
 * refused or unresolvable connection is the proxy's (a proxy that cannot reach the target answers
 * 502 instead), so the message names the proxy and its variable, not the target.
 */
export function describeFetchError(
  error: unknown,
  url: URL,
  proxy?: { url: string; variable: string },
): { message: string; tls: boolean } {
  const parts: string[] = [];
  let e: unknown = error;
  for (let i = 0; e && i < 6; i++) {
    const m = e instanceof Error ? e.message : String(e);
    if (m && !parts.includes(m)) parts.push(m);
    e = e instanceof Error ? e.cause : undefined;
  }
  const all = parts.join(": ");
  if (
    /received corrupt message|InvalidContentType|wrong version number|packet length too long/i.test(
      all,
    )
  ) {
    return {
      tls: true,
      message:
        `${url.host} answered plain HTTP to an https request; use http://${url.host}${url.pathname} instead, or the client's NOHTTPS setting (for example SREGISTRY_DOCKER_NOHTTPS=true)`,
    };
  }
  const tlsMatch = all.match(
    /(invalid peer certificate[^\n]*|certificate[^\n]*(?:verify|expired|unknown|self[- ]signed|issuer)[^\n]*|self[- ]signed certificate[^\n]*|unable to (?:get|verify)[^\n]*certificate[^\n]*|CaUsedAsEndEntity|UnknownIssuer|NotValidForName|DEPTH_ZERO_SELF_SIGNED_CERT|ERR_TLS_CERT[^\n]*)/i,
  );
  if (tlsMatch) {
    const reason = tlsMatch[1].replace(/^.*invalid peer certificate:\s*/i, "");
    return {
      tls: true,
      message:
        `TLS verification failed for ${url.host}: ${reason}; trust its CA with SREGISTRY_CA_FILE=<ca.pem> (SREGISTRY_HTTPS_NOVERIFY=true only for testing)`,
    };
  }
  const last = parts.at(-1) ?? "unknown error";
  if (proxy && /connect|refused|dns error|lookup|resolve|unreachable|reset/i.test(all)) {
    let where = proxy.url;
    try {
      where = new URL(proxy.url).host;
    } catch {
      where = stripUserinfo(proxy.url);
    }
    const why = /refused/i.test(all)
      ? "refused the connection"
      : /dns|lookup|resolve/i.test(all)
      ? "cannot be resolved"
      : `cannot be reached (${last.replace(/\s+/g, " ")})`;
    return {
      tls: false,
      message:
        `The proxy ${where} named by ${proxy.variable} ${why} (for ${url.host}); start the proxy, fix ${proxy.variable}, or unset it`,
    };
  }
  return { tls: false, message: `Cannot reach ${url.host}: ${last.replace(/\s+/g, " ")}` };
}

function readNumber(env: Env, name: string): number | undefined {
  const v = env.get(name);
  if (v === undefined || v.trim() === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/**
 * A `fetch` over `node:https` with certificate checks off. Deno's `fetch` cannot skip verification at
 * run time (only the `--unsafely-ignore-certificate-errors` flag can, and a compiled binary's flags are
 * fixed), while `node:https` honours `rejectUnauthorized: false` under `deno run` and in a compiled
 * binary alike, with no extra permission.
 */
export function insecureFetch(base: typeof fetch = fetch, env?: Env): typeof fetch {
  return async (input, init) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    if (url.protocol !== "https:") return base(req, { redirect: init?.redirect ?? "follow" });
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => headers[k] = v);
    const length = knownLength(init?.body);
    if (length !== undefined) headers["content-length"] ??= String(length);
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    const port = url.port ? Number(url.port) : 443;
    // HTTPS_PROXY as fetch honours it: node:https does not read it, so tunnel by hand.
    const proxy = env ? proxyFor(url, env) : undefined;
    const tunnel = proxy
      ? await connectTunnel(proxy, hostname, port, init?.signal ?? undefined)
      : undefined;
    return await new Promise<Response>((resolve, reject) => {
      const signal = init?.signal ?? undefined;
      const r = httpsRequest({
        protocol: "https:",
        hostname,
        port,
        ...(tunnel ? { agent: false, createConnection: () => insecureTls(tunnel, hostname) } : {}),
        path: url.pathname + url.search,
        method: req.method,
        headers,
        rejectUnauthorized: false,
        // An explicit (empty) CA list: without one node:https reads NODE_EXTRA_CA_CERTS and the
        // system store, which needs sys access to "ca"; nothing is verified here anyway.
        ca: [],
      }, (res) => {
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (Array.isArray(v)) v.forEach((x) => out.append(k, x));
          else if (v !== undefined) out.set(k, String(v));
        }
        const status = res.statusCode ?? 502;
        const nullBody = req.method === "HEAD" || status === 204 || status === 304;
        let closed = false;
        const stream = nullBody ? null : new ReadableStream<Uint8Array>({
          start(controller) {
            // After a cancel node may still emit buffered data: drop it instead of enqueueing.
            res.on("data", (c: Uint8Array) => {
              if (closed) return;
              controller.enqueue(new Uint8Array(c));
              if ((controller.desiredSize ?? 1) <= 0) res.pause();
            });
            res.on("end", () => {
              if (!closed) controller.close();
              closed = true;
            });
            res.on("error", (e: Error) => {
              if (!closed) controller.error(e);
              closed = true;
            });
          },
          pull() {
            res.resume();
          },
          cancel() {
            closed = true;
            res.destroy();
          },
        }, { highWaterMark: 16 });
        if (nullBody) res.resume();
        resolve(new Response(stream, { status, statusText: res.statusMessage, headers: out }));
      });
      r.on(
        "error",
        (e: Error) => reject(new TypeError(`fetch failed: ${e.message}`, { cause: e })),
      );
      signal?.addEventListener("abort", () => r.destroy(signal.reason), { once: true });
      sendBody(r, req.body).catch((e) => r.destroy(e));
    });
  };
}

/** The byte length of a body that is not a stream (those go chunked). */
function knownLength(body: BodyInit | null | undefined): number | undefined {
  if (typeof body === "string") return new TextEncoder().encode(body).byteLength;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength;
  if (body instanceof Blob) return body.size;
  if (body instanceof URLSearchParams) return new TextEncoder().encode(String(body)).byteLength;
  return undefined;
}

/**
 * Stream a request body to node, waiting for "drain" when its buffer is full: a large upload in
 * NOVERIFY mode takes the memory of a few chunks, not of the file. Without a Content-Length header
 * node sends it chunked, as Deno's fetch does with a stream body.
 */
async function sendBody(r: ClientRequest, body: ReadableStream<Uint8Array> | null) {
  if (body) {
    for await (const chunk of body) {
      if (!r.write(chunk)) await new Promise((ok) => r.once("drain", ok));
    }
  }
  r.end();
}

/**
 * Whether a host (with an optional port) is a loopback address: `localhost`, `127.0.0.0/8`, `::1`.
 * Loopback registries speak plain http (as docker assumes) and get no parallel ranged streams.
 */
export function isLoopback(host: string): boolean {
  let h = host.toLowerCase();
  if (h.startsWith("[")) h = h.slice(1, h.indexOf("]"));
  else if (h.split(":").length === 2) h = h.split(":")[0];
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Create an HTTP client. */
export function createHttp(options: HttpOptions): Http {
  const env = options.env ?? processEnv;
  const log = options.log;
  const retries = options.retries ?? readNumber(env, "SREGISTRY_HTTP_RETRIES") ?? 5;
  const stallTimeoutMs = options.stallTimeoutMs ??
    (readNumber(env, "SREGISTRY_STALL_TIMEOUT") ?? 60) * 1000;
  const baseMs = options.backoffBaseMs ?? readNumber(env, "SREGISTRY_BACKOFF_MS") ?? 500;
  const maxMs = options.backoffMaxMs ?? 30_000;
  const doSleep = options.sleep ?? sleep;
  const random = options.random ?? Math.random;
  const maxAuth = options.maxAuthRetries ?? 3;
  const maxRedirects = options.maxRedirects ?? 10;
  let warned = false;

  // Clients with a custom CA or an explicit proxy are built lazily, one per proxy, and reused.
  const clients = new Map<string, Deno.HttpClient>();
  let caPem: string | undefined;
  function clientFor(url: URL): Deno.HttpClient | undefined {
    if (!options.caFile) return undefined;
    caPem ??= readCaFile(options.caFile, options.caFileSetting ?? "SREGISTRY_CA_FILE");
    const proxy = proxyFor(url, env);
    const key = proxy ?? "";
    let c = clients.get(key);
    if (!c) {
      c = Deno.createHttpClient({ caCerts: [caPem], ...(proxy ? { proxy: { url: proxy } } : {}) });
      clients.set(key, c);
    }
    return c;
  }
  const baseFetch: typeof fetch = options.fetch ?? fetch;
  const transport: typeof fetch = options.insecure ? insecureFetch(baseFetch, env) : baseFetch;

  async function backoff(attempt: number, retryAfter?: string | null, signal?: AbortSignal) {
    const ra = parseRetryAfter(retryAfter);
    const ms = ra !== undefined
      ? Math.min(ra, MAX_RETRY_AFTER_MS)
      : Math.min(maxMs, baseMs * 2 ** (attempt - 1)) * (0.5 + random() / 2);
    await doSleep(ms, signal);
  }

  function interrupted(signal: AbortSignal | undefined, error: unknown): unknown {
    if (signal?.aborted) {
      const r = signal.reason;
      return r instanceof SregistryError ? r : new InterruptedError("Interrupted");
    }
    return error;
  }

  async function send(url: URL, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    // The stall timer covers the wait for response headers; transfer.ts covers the body.
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let stalled = false;
    const timer = setTimeout(() => {
      stalled = true;
      ctl.abort(new NetworkError(`No answer from ${url.host} for ${stallTimeoutMs / 1000} s`));
    }, stallTimeoutMs);
    try {
      const client = options.insecure ? undefined : clientFor(url);
      return await transport(url, {
        ...init,
        signal: ctl.signal,
        redirect: "manual",
        ...(client ? { client } : {}),
      } as RequestInit);
    } catch (e) {
      if (stalled) throw ctl.signal.reason;
      throw e;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  const http: Http = {
    log,
    stallTimeoutMs,
    retries,
    backoff,
    async request(input, opts = {}) {
      if (options.insecure && !warned) {
        warned = true;
        log.warning(NOVERIFY_WARNING);
      }
      let url = new URL(input);
      assertFetchable(url);
      // A password in the URL is for this request's origin only: sent as Basic credentials by an
      // authorizer bound to that origin, and never part of a URL that is sent or printed.
      const userinfo = userinfoOf(url);
      url = new URL(stripUserinfo(url));
      const origin0 = url.origin;
      let auth = opts.auth;
      if (userinfo) {
        log.addSecret(userinfo.password);
        auth = withUserinfo(auth, userinfo, origin0);
      }
      // An authorizer bound to an origin acts there only, whatever URL this call started at (an
      // upload Location may name another host); an unbound one acts at the call's first origin.
      const authOrigin = auth?.origin ?? origin0;
      let waitedMs = 0;
      let method = (opts.method ?? "GET").toUpperCase();
      const budget = opts.retries ?? retries;
      const accept = opts.accept ?? ((s: number) => s >= 200 && s < 300);
      let dropBody = false;
      let attempt = 0;
      let authFailures = 0;
      let hops = 0;
      const streamBody = !opts.bodyFactory && opts.body instanceof ReadableStream;
      for (;;) {
        if (opts.signal?.aborted) throw interrupted(opts.signal, undefined);
        // Rebuilt each attempt, so the authorizer signs this attempt and no other.
        const h = new Headers();
        h.set("user-agent", USER_AGENT);
        new Headers(opts.headers).forEach((v, k) => h.set(k, v));
        if (url.origin !== origin0) { for (const k of CREDENTIAL_HEADERS) h.delete(k); }
        const body = dropBody
          ? null
          : opts.bodyFactory
          ? await opts.bodyFactory()
          : opts.body ?? null;
        if (dropBody) h.delete("content-type");
        const authRequest: AuthRequest = {
          url,
          method,
          headers: h,
          body: bodyBytes(body),
          streaming: body instanceof ReadableStream,
        };
        const ownOrigin = url.origin === authOrigin;
        if (auth && ownOrigin) await auth.authorize(authRequest);
        let res: Response;
        try {
          res = await send(url, { method, headers: h, body }, opts.signal);
        } catch (e) {
          const err = interrupted(opts.signal, e);
          if (err !== e || e instanceof SregistryError && !(e instanceof NetworkError)) throw err;
          const { message, tls } = e instanceof NetworkError
            ? { message: e.message, tls: false }
            : describeFetchError(e, url, proxySetting(url, env));
          log.debug(`${method} ${url.href} failed (attempt ${attempt + 1}): ${message}`);
          if (tls || streamBody || attempt >= budget) {
            throw e instanceof NetworkError ? e : new NetworkError(message, { cause: e });
          }
          attempt++;
          await backoff(attempt, undefined, opts.signal).catch((x) => {
            throw interrupted(opts.signal, x);
          });
          continue;
        }
        log.debug(`${method} ${url.href} -> ${res.status} (attempt ${attempt + 1})`);
        const status = res.status;
        if (
          !opts.noRedirect && [301, 302, 303, 307, 308].includes(status) &&
          res.headers.has("location")
        ) {
          await res.body?.cancel();
          if (++hops > maxRedirects) {
            throw new NetworkError(`Too many redirects (over ${maxRedirects}) from ${origin0}`, {
              status,
            });
          }
          const next = new URL(res.headers.get("location")!, url);
          assertFetchable(next, `a redirect from ${url.host}`);
          // A server's userinfo in a Location is never sent on (nor printed).
          url = new URL(stripUserinfo(next));
          if (status === 303 || ((status === 301 || status === 302) && method === "POST")) {
            method = method === "HEAD" ? "HEAD" : "GET";
            dropBody = true;
          }
          continue;
        }
        // A 401 goes to the authorizer first, even when the caller accepts 401s: it may refresh.
        if (status === 401 && auth?.onChallenge && ownOrigin && authFailures < maxAuth) {
          authFailures++;
          let again: boolean;
          try {
            again = await auth.onChallenge(res, authRequest);
          } catch (e) {
            await res.body?.cancel().catch(() => {});
            throw e;
          }
          // A stream body cannot be sent twice: the refresh serves the caller's next request.
          if (again && !streamBody) {
            await res.body?.cancel().catch(() => {});
            continue;
          }
        }
        if (accept(status)) return res;
        const text = await readStart(res, ERROR_BODY_BYTES, stallTimeoutMs);
        const detail = summarize(text);
        const where = `${method} ${redactUrl(url)}`;
        const sentCredentials = CREDENTIAL_HEADERS.some((k) => h.has(k));
        if (status === 401) {
          throw new AuthError(
            sentCredentials
              ? `Authentication failed (401 ${res.statusText}) for ${where}${detail}; check the credentials for ${url.host}`
              : `Authentication required (401 ${res.statusText}) for ${where}${detail}; set the client's credentials for ${url.host}`,
          );
        }
        if (status === 403) {
          throw new AuthError(
            sentCredentials
              ? `Permission denied (403 ${res.statusText}) for ${where}${detail}; check the credentials for ${url.host}`
              : `Access denied (403 ${res.statusText}) for ${where}${detail}: the server refuses access to that path`,
          );
        }
        if (status === 407) {
          throw new AuthError(
            `The proxy asks for credentials (407 ${res.statusText}) for ${where}; put "user:password@" before the proxy's host in HTTP_PROXY or HTTPS_PROXY`,
          );
        }
        if (status === 404) {
          throw new NotFoundError(`Not found (404) at ${where}${detail}; check the name and URL`);
        }
        const retryAfter = res.headers.get("retry-after");
        const ra = parseRetryAfter(retryAfter);
        if (
          isRetryableStatus(status) && ra !== undefined &&
          (ra > MAX_RETRY_AFTER_MS || waitedMs + ra > MAX_RETRY_AFTER_MS)
        ) {
          const at = new Date(Date.now() + ra).toISOString().replace(/\.\d+Z$/, "Z");
          throw new NetworkError(
            `The server answered ${status} ${res.statusText} to ${where}${detail} and asks to retry after ${
              Math.ceil(ra / 1000)
            } s (at ${at}); try again then`,
            { status },
          );
        }
        if (isRetryableStatus(status) && !streamBody && attempt < budget) {
          attempt++;
          if (ra !== undefined) waitedMs += ra;
          await backoff(attempt, retryAfter, opts.signal).catch((x) => {
            throw interrupted(opts.signal, x);
          });
          continue;
        }
        throw new NetworkError(
          `The server answered ${status} ${res.statusText} to ${where}${detail}${
            isRetryableStatus(status) ? ` after ${attempt + 1} attempts; try again later` : ""
          }`,
          { status },
        );
      }
    },
    async json<T>(url: string | URL, opts?: RequestOptions): Promise<T> {
      const h = new Headers(opts?.headers);
      if (!h.has("accept")) h.set("accept", "application/json");
      const res = await http.request(url, { ...opts, headers: h });
      const limit = opts?.maxBytes ?? MAX_JSON_BYTES;
      const text = new TextDecoder().decode(
        await readBody(http, res, {
          limit,
          what: `The JSON answer of ${new URL(url).host}`,
          signal: opts?.signal,
        }),
      );
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new NetworkError(
          `The server at ${new URL(url).host} returned a malformed JSON answer${summarize(text)}`,
          { status: res.status },
        );
      }
    },
  };
  return http;
}

/** The bytes of a body an authorizer may hash: buffers and strings, not streams or forms. */
function bodyBytes(body: BodyInit | null): Uint8Array | undefined {
  if (body instanceof Uint8Array) return body;
  if (typeof body === "string") return new TextEncoder().encode(body);
  if (body instanceof URLSearchParams) return new TextEncoder().encode(String(body));
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) {
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  }
  return undefined;
}

/**
 * Read the CA bundle once: a missing or unreadable file, or one without a PEM certificate, is a
 * configuration error naming the file and the setting (not a network error on every request).
 */
function readCaFile(path: string, setting: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    const why = unreadableReason(e);
    throw new ConfigError(
      `Cannot read the CA file ${
        JSON.stringify(path)
      } named by ${setting} (${why}); fix the path or unset ${setting}`,
    );
  }
  if (!/-----BEGIN CERTIFICATE-----/.test(text)) {
    throw new ConfigError(
      `The CA file ${
        JSON.stringify(path)
      } named by ${setting} holds no PEM certificate ("-----BEGIN CERTIFICATE-----"); give a PEM bundle`,
    );
  }
  return text;
}

/**
 * The credentials of a URL's userinfo as an authorizer bound to its origin. With a caller's
 * authorizer, that one runs first and the userinfo fills in when it sent nothing.
 */
function withUserinfo(
  inner: Authorizer | undefined,
  creds: { username: string; password: string },
  origin: string,
): Authorizer {
  const header = `Basic ${
    btoa(String.fromCharCode(...new TextEncoder().encode(`${creds.username}:${creds.password}`)))
  }`;
  return {
    origin: inner?.origin ?? origin,
    async authorize(r) {
      await inner?.authorize(r);
      if (!r.headers.has("authorization")) r.headers.set("authorization", header);
    },
    onChallenge: inner?.onChallenge ? (res, r) => inner.onChallenge!(res, r) : undefined,
  };
}

/** Options of {@link readBody}. */
export interface ReadBodyOptions {
  /** The most bytes accepted; more is a NetworkError naming the limit. */
  limit: number;
  /** What is read, for messages ("The manifest of host/repo:tag"). */
  what: string;
  /** Cancels the read. */
  signal?: AbortSignal;
  /** The whole body must arrive within this (default: the client's stall timeout). */
  deadlineMs?: number;
}

/**
 * Read a small body (a manifest, a token, a JSON answer) with a size cap, a stall timeout between
 * chunks and a total deadline, so neither a huge answer nor one byte every few seconds can hold
 * memory or the user. Large downloads go through core/transfer instead.
 * @throws {NetworkError} (exit 5) when the body is too large, stalls or is too slow.
 */
export async function readBody(
  http: Pick<Http, "stallTimeoutMs">,
  res: Response,
  options: ReadBodyOptions,
): Promise<Uint8Array<ArrayBuffer>> {
  const { limit, what } = options;
  const tooLarge = () =>
    new NetworkError(
      `${what} is larger than ${
        formatLimit(limit)
      }, the limit for such an answer; the server is misbehaving or this is not the right URL`,
    );
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!res.body) return new Uint8Array(0);
  const stallMs = http.stallTimeoutMs;
  const deadline = Date.now() + (options.deadlineMs ?? stallMs);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      if (options.signal?.aborted) throw new InterruptedError("Interrupted");
      const left = Math.min(stallMs, deadline - Date.now());
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((ok) => timer = setTimeout(() => ok("timeout"), left));
      const r = await Promise.race([reader.read(), timeout]).finally(() => clearTimeout(timer));
      if (r === "timeout") {
        throw new NetworkError(
          Date.now() >= deadline && left < stallMs
            ? `${what} did not arrive within ${
              Math.round((options.deadlineMs ?? stallMs) / 1000)
            } s (${size} bytes so far); the server is too slow or stalling`
            : `${what} stalled: no data for ${stallMs / 1000} s (${size} bytes so far)`,
        );
      }
      if (r.done) break;
      size += r.value.byteLength;
      if (size > limit) throw tooLarge();
      chunks.push(r.value);
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    if (e instanceof SregistryError) throw e;
    throw new NetworkError(`${what} was cut off: ${(e as Error).message}`, { cause: e });
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** The first `max` bytes of a body as text (an error message's detail); never throws. */
async function readStart(res: Response, max: number, stallMs: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const deadline = Date.now() + stallMs;
  try {
    while (size < max) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((ok) =>
        timer = setTimeout(() => ok("timeout"), Math.max(0, deadline - Date.now()))
      );
      const r = await Promise.race([reader.read(), timeout]).finally(() => clearTimeout(timer));
      if (r === "timeout" || r.done) break;
      chunks.push(r.value);
      size += r.value.byteLength;
    }
  } catch {
    // A broken error body still leaves the status to report.
  }
  reader.cancel().catch(() => {});
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.byteLength;
  }
  return new TextDecoder().decode(all.subarray(0, max));
}

function formatLimit(n: number): string {
  return n % (1024 * 1024) === 0
    ? `${n / 1024 / 1024} MiB`
    : n % 1024 === 0
    ? `${n / 1024} KiB`
    : `${n} bytes`;
}

/** A URL without its query string (presigned URLs carry signatures there). */
export function redactUrl(url: URL): string {
  return url.search ? `${url.origin}${url.pathname}?…` : `${url.origin}${url.pathname}`;
}

function summarize(text: string): string {
  const t = text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
  return t ? ` (${t.length > 120 ? `${t.slice(0, 117)}...` : t})` : "";
}
