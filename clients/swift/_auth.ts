/**
 * Swift authentication as sregistry-cli's `SREGISTRY_SWIFT_AUTHTYPE` chooses it: `preauth` (a token
 * and storage URL given), `keystonev3` (`POST {URL}/v3/auth/tokens`, the storage URL from the
 * catalog) and the legacy v1 auth (`GET {URL}/auth/` with `X-Auth-User`/`X-Auth-Key`, the original's
 * exact URL rule). The session (token, storage URL, expiry) is cached in the credential store, and
 * a 401 from Swift re-authenticates once and retries.
 * @module
 */

import { createHash } from "node:crypto";
import type { Authorizer } from "../../core/auth/types.ts";
import { AuthError, ConfigError, NetworkError, UnsupportedError } from "../../core/errors.ts";
import { readBody } from "../../core/http.ts";
import type { Context } from "../types.ts";

/** A usable Swift session. */
export interface Session {
  /** The `X-Auth-Token` value. */
  token: string;
  /** The account URL (`https://host/v1/AUTH_x`), without a trailing slash. */
  storageUrl: string;
  /** When the token expires (ms since the epoch), when the server said. */
  expiresAt?: number;
}

/** The authentication a client uses. */
export interface SwiftAuth {
  /** Which auth type (`preauth`, `keystonev3` or `v1`). */
  readonly type: "preauth" | "keystonev3" | "v1";
  /** The variables that hold the credentials, for messages. */
  readonly hint: string;
  /** The current session, authenticating when there is none or it is about to expire. */
  session(): Promise<Session>;
  /** Adds `X-Auth-Token`; a 401 re-authenticates once (not for `preauth`). */
  readonly authorizer: Authorizer;
}

/** Tokens that expire within this are renewed before use. */
const EXPIRY_MARGIN_MS = 60_000;
/** A Keystone answer (token and catalog) larger than this is refused. */
const MAX_KEYSTONE_BYTES = 4 * 1024 * 1024;

interface Cached extends Session {
  fingerprint: string;
}

const trimSlash = (s: string) => s.replace(/\/+$/, "");

function parseUrlSetting(name: string, value: string): URL {
  try {
    const url = new URL(value);
    if (url.protocol === "http:" || url.protocol === "https:") return url;
  } catch {
    // reported below
  }
  throw new ConfigError(
    `${name} ${JSON.stringify(value)} is not an http(s) URL: use https://host[:port][/path]`,
  );
}

/** The legacy v1 auth URL: the original's rule, `{SREGISTRY_SWIFT_URL}/auth/`. */
export function v1AuthUrl(base: string): URL {
  return new URL(`${trimSlash(parseUrlSetting("SREGISTRY_SWIFT_URL", base).href)}/auth/`);
}

/**
 * The Keystone v3 token URL: the original's `{SREGISTRY_SWIFT_URL}/v3` plus `/auth/tokens`; a URL
 * that already ends in `/v3` (as OS_AUTH_URL often does) is not given a second one.
 */
export function keystoneTokensUrl(base: string): URL {
  const root = trimSlash(parseUrlSetting("SREGISTRY_SWIFT_URL", base).href);
  return new URL(`${root.endsWith("/v3") ? root : `${root}/v3`}/auth/tokens`);
}

/** One Keystone v3 catalog endpoint. */
interface Endpoint {
  interface?: string;
  region?: string;
  region_id?: string;
  url?: string;
}

/** The object-store endpoint of a Keystone v3 catalog: public, in `region` when given. */
export function objectStoreEndpoint(
  catalog: unknown,
  region: string | undefined,
): string | undefined {
  if (!Array.isArray(catalog)) return undefined;
  const service = catalog.find((s) => s && typeof s === "object" && s.type === "object-store");
  const endpoints: Endpoint[] = Array.isArray(service?.endpoints) ? service.endpoints : [];
  const fits = endpoints.filter((e) =>
    typeof e.url === "string" && (e.interface ?? "public") === "public" &&
    (region === undefined || e.region_id === region || e.region === region)
  );
  return fits[0]?.url;
}

/** Build the authentication chosen by the settings (nothing is read or sent until first use). */
export function swiftAuth(ctx: Context): SwiftAuth {
  const s = ctx.settings;
  const raw = (s.getAndUpdate("SREGISTRY_SWIFT_AUTHTYPE") ?? "").trim();
  const kind = raw.toLowerCase();
  if (kind === "keystonev2") {
    throw new UnsupportedError(
      `SREGISTRY_SWIFT_AUTHTYPE "keystonev2" is not supported: Keystone v2 left OpenStack in 2018; set SREGISTRY_SWIFT_AUTHTYPE=keystonev3`,
    );
  }
  const type: SwiftAuth["type"] = kind === "preauth"
    ? "preauth"
    : kind === "keystonev3"
    ? "keystonev3"
    : "v1";
  const hint = type === "preauth"
    ? "SREGISTRY_SWIFT_OS_AUTH_TOKEN and SREGISTRY_SWIFT_OS_STORAGE_URL"
    : "SREGISTRY_SWIFT_USER, SREGISTRY_SWIFT_TOKEN and SREGISTRY_SWIFT_URL";

  let current: Session | undefined;
  let pending: Promise<Session> | undefined;

  const fingerprintOf = (parts: string[]) =>
    createHash("sha256").update(parts.join("\n")).digest("hex");
  const cacheKey = "session";

  const login = async (): Promise<Session> => {
    if (type === "preauth") {
      const v = s.require(["SREGISTRY_SWIFT_OS_AUTH_TOKEN", "SREGISTRY_SWIFT_OS_STORAGE_URL"]);
      const url = parseUrlSetting(
        "SREGISTRY_SWIFT_OS_STORAGE_URL",
        v.SREGISTRY_SWIFT_OS_STORAGE_URL,
      );
      return { token: v.SREGISTRY_SWIFT_OS_AUTH_TOKEN, storageUrl: trimSlash(url.href) };
    }
    const v = s.require(["SREGISTRY_SWIFT_USER", "SREGISTRY_SWIFT_TOKEN", "SREGISTRY_SWIFT_URL"]);
    const project = s.get("SREGISTRY_SWIFT_PROJECT") ?? "Default";
    const domain = s.get("SREGISTRY_SWIFT_DOMAIN") ?? "Default";
    const region = s.get("SREGISTRY_SWIFT_REGION");
    const fingerprint = fingerprintOf([
      type,
      v.SREGISTRY_SWIFT_URL,
      v.SREGISTRY_SWIFT_USER,
      v.SREGISTRY_SWIFT_TOKEN,
      project,
      domain,
      region ?? "",
    ]);
    const cached = ctx.credentials.get<Cached>(cacheKey);
    if (
      cached?.fingerprint === fingerprint && typeof cached.token === "string" &&
      typeof cached.storageUrl === "string" &&
      (cached.expiresAt === undefined || cached.expiresAt - EXPIRY_MARGIN_MS > Date.now())
    ) {
      ctx.log.addSecret(cached.token);
      ctx.log.debug("Swift: using the cached token");
      return { token: cached.token, storageUrl: cached.storageUrl, expiresAt: cached.expiresAt };
    }
    const got = type === "keystonev3"
      ? await keystoneLogin(ctx, v, { project, domain, region })
      : await v1Login(ctx, v);
    ctx.credentials.set(cacheKey, { ...got, fingerprint } satisfies Cached);
    return got;
  };

  const session = (): Promise<Session> => {
    if (
      current &&
      (current.expiresAt === undefined || current.expiresAt - EXPIRY_MARGIN_MS > Date.now())
    ) return Promise.resolve(current);
    pending ??= login().then((got) => {
      current = got;
      return got;
    }).finally(() => pending = undefined);
    return pending;
  };

  const authorizer: Authorizer = {
    async authorize(request) {
      request.headers.set("x-auth-token", (await session()).token);
    },
    async onChallenge(_response, request) {
      if (type === "preauth") return false;
      const refused = request.headers.get("x-auth-token");
      // Another request may have renewed it already.
      if (current && current.token !== refused) return true;
      ctx.log.debug("Swift answered 401: authenticating again");
      current = undefined;
      ctx.credentials.delete(cacheKey);
      const fresh = await session();
      return fresh.token !== refused;
    },
  };
  return { type, hint, session, authorizer };
}

function refused(status: number, what: string, hint: string): AuthError {
  return new AuthError(
    `Swift ${what} refused the credentials (${status}): check ${hint}`,
  );
}

async function v1Login(ctx: Context, v: Record<string, string>): Promise<Session> {
  const url = v1AuthUrl(v.SREGISTRY_SWIFT_URL);
  const res = await ctx.http.request(url, {
    headers: { "x-auth-user": v.SREGISTRY_SWIFT_USER, "x-auth-key": v.SREGISTRY_SWIFT_TOKEN },
    // The key is a header of our own: it must not follow a redirect anywhere.
    noRedirect: true,
    accept: (st) => st < 500 && st !== 429 && st !== 408,
    signal: ctx.signal,
  });
  await res.body?.cancel().catch(() => {});
  const hint = "SREGISTRY_SWIFT_USER and SREGISTRY_SWIFT_TOKEN";
  if (res.status === 401 || res.status === 403) {
    throw refused(res.status, `auth at ${url.host}`, hint);
  }
  if (res.status === 404 || res.status === 412 || res.status === 400) {
    throw new ConfigError(
      `No Swift v1 auth at ${url.href} (${res.status}): check SREGISTRY_SWIFT_URL; the auth URL is SREGISTRY_SWIFT_URL + "/auth/" (for tempauth use http://host:8080/auth/v1.0)`,
    );
  }
  if (res.status < 200 || res.status > 299) {
    throw new NetworkError(`Swift auth at ${url.host} answered ${res.status}`, {
      status: res.status,
    });
  }
  const token = res.headers.get("x-auth-token") ?? res.headers.get("x-storage-token");
  const storage = res.headers.get("x-storage-url");
  if (!token || !storage) {
    throw new NetworkError(
      `Swift auth at ${url.host} gave no X-Auth-Token or X-Storage-Url; check SREGISTRY_SWIFT_URL`,
    );
  }
  ctx.log.addSecret(token);
  const ttl = Number(res.headers.get("x-auth-token-expires") ?? NaN);
  return {
    token,
    storageUrl: trimSlash(parseUrlSetting("X-Storage-Url", storage).href),
    ...(Number.isFinite(ttl) ? { expiresAt: Date.now() + ttl * 1000 } : {}),
  };
}

async function keystoneLogin(
  ctx: Context,
  v: Record<string, string>,
  o: { project: string; domain: string; region?: string },
): Promise<Session> {
  const url = keystoneTokensUrl(v.SREGISTRY_SWIFT_URL);
  const body = JSON.stringify({
    auth: {
      identity: {
        methods: ["password"],
        password: {
          user: {
            name: v.SREGISTRY_SWIFT_USER,
            domain: { name: o.domain },
            password: v.SREGISTRY_SWIFT_TOKEN,
          },
        },
      },
      scope: { project: { name: o.project, domain: { name: o.domain } } },
    },
  });
  const res = await ctx.http.request(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body,
    noRedirect: true,
    accept: (st) => st < 500 && st !== 429 && st !== 408,
    signal: ctx.signal,
  });
  const hint =
    "SREGISTRY_SWIFT_USER, SREGISTRY_SWIFT_TOKEN, SREGISTRY_SWIFT_PROJECT and SREGISTRY_SWIFT_DOMAIN";
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel().catch(() => {});
    throw refused(res.status, `Keystone at ${url.host}`, hint);
  }
  if (res.status !== 201 && res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    throw new ConfigError(
      `Keystone at ${url.href} answered ${res.status}: check SREGISTRY_SWIFT_URL (the Keystone root, e.g. https://keystone:5000)`,
    );
  }
  const token = res.headers.get("x-subject-token");
  const bytes = await readBody(ctx.http, res, {
    limit: MAX_KEYSTONE_BYTES,
    what: `The Keystone token answer of ${url.host}`,
    signal: ctx.signal,
  });
  if (!token) throw new NetworkError(`Keystone at ${url.host} gave no X-Subject-Token`);
  ctx.log.addSecret(token);
  let parsed: { token?: { expires_at?: string; catalog?: unknown } };
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new NetworkError(`Keystone at ${url.host} answered with malformed JSON`);
  }
  const endpoint = objectStoreEndpoint(parsed.token?.catalog, o.region);
  if (!endpoint) {
    throw new ConfigError(
      `The Keystone catalog of ${url.host} has no public object-store endpoint${
        o.region ? ` in region ${JSON.stringify(o.region)}` : ""
      }: check SREGISTRY_SWIFT_REGION and the project`,
    );
  }
  const expires = Date.parse(parsed.token?.expires_at ?? "");
  return {
    token,
    storageUrl: trimSlash(parseUrlSetting("the catalog's object-store URL", endpoint).href),
    ...(Number.isFinite(expires) ? { expiresAt: expires } : {}),
  };
}
