/**
 * The OCI/docker token flow as an authorizer: on a 401 with `WWW-Authenticate: Bearer realm=...,
 * service=...,scope=...` a token is fetched from the realm (with Basic credentials when there are
 * some, or an OAuth2 refresh-token grant for docker's identity tokens), cached per scope with its
 * expiry, and renewed before it expires. A `Basic` challenge (an htpasswd registry) is answered with
 * the credentials instead.
 *
 * Where credentials go: the realm is only ever learned from a challenge of the origin the caller
 * addressed (core/http runs onChallenge for no other), so the Basic credentials reach that registry
 * and the token service it named, and nothing else. A realm that redirects elsewhere loses the
 * Authorization header in core/http.
 * @module
 */

import { AuthError, NetworkError } from "../errors.ts";
import { type Http, MAX_JSON_BYTES, readBody } from "../http.ts";
import { assertFetchable } from "../url.ts";
import type { Logger } from "../log.ts";
import { basicHeader } from "./basic.ts";
import { parseChallenges } from "./challenge.ts";
import {
  type Authorizer,
  type AuthRequest,
  type Credentials,
  type CredentialSource,
  lazyCredentials,
} from "./types.ts";

/** Options of {@link bearerChallenge}. */
export interface BearerChallengeOptions {
  /** The transport for token requests. */
  http: Http;
  /** Logger; every token and password is registered as a secret. */
  log: Logger;
  /** Credentials for the token service (or Basic challenges); none means anonymous. */
  credentials?: CredentialSource;
  /** Only act for this origin (`https://host:port`); requests to others get nothing. */
  origin?: string;
  /** The host named in messages (default: the request's). */
  host?: string;
  /** Send Basic credentials before any challenge (ECR, NGC, plain web servers). */
  preemptiveBasic?: boolean;
  /** The clock in ms (tests inject one). */
  now?: () => number;
  /** Names the settings that hold the credentials, for error messages. */
  credentialHint?: string;
  /** Cancels token requests. */
  signal?: AbortSignal;
}

/** A bearer-challenge authorizer for one registry, with per-scope views. */
export interface BearerChallengeAuthorizer extends Authorizer {
  /** The authorizer for requests needing `scope` (`repository:<name>:pull`). */
  scoped(scope: string): Authorizer;
  /** Forget the token of a scope; the next attempt gets a new one. */
  invalidate(scope: string): void;
  /** Whether credentials (not anonymous access) were sent. */
  readonly authenticated: boolean;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Build the bearer-with-challenge authorizer. The unscoped one uses the challenge's own scope. */
export function bearerChallenge(options: BearerChallengeOptions): BearerChallengeAuthorizer {
  const { http, log } = options;
  const now = options.now ?? Date.now;
  const getCreds = lazyCredentials(options.credentials);
  let bearer: { realm: string; service?: string } | undefined;
  let basic = false;
  let used = false;
  const tokens = new Map<string, CachedToken>();
  const pending = new Map<string, Promise<CachedToken>>();
  const views = new Map<string, Authorizer>();

  async function creds(): Promise<Credentials | undefined> {
    const c = await getCreds();
    if (c) {
      log.addSecret(c.password);
      log.addSecret(basicHeader(c).slice(6));
    }
    return c;
  }

  async function fetchToken(host: string, scope: string, wanted?: string): Promise<CachedToken> {
    const b = bearer!;
    const url = new URL(b.realm);
    if (b.service) url.searchParams.set("service", b.service);
    const scopes = new Set<string>();
    for (const s of (wanted ?? "").split(" ")) if (s) scopes.add(s);
    if (scope && scopes.size === 0) scopes.add(scope);
    for (const s of scopes) url.searchParams.append("scope", s);
    const c = await creds();
    const accept = (st: number) => st < 500 && st !== 429 && st !== 408;
    let res: Response;
    if (c?.username === "<token>") {
      // An identity token is an OAuth2 refresh token (docker's oauth flow).
      const body = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: c.password,
        client_id: "sregistry",
      });
      if (b.service) body.set("service", b.service);
      body.set("scope", [...scopes].join(" "));
      res = await http.request(b.realm, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: body.toString(),
        accept,
        signal: options.signal,
      });
    } else {
      res = await http.request(url, {
        headers: { accept: "application/json", ...(c ? { authorization: basicHeader(c) } : {}) },
        accept,
        signal: options.signal,
      });
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new AuthError(
        c
          ? `The token service of ${host} (${url.origin}) rejected the credentials of user ${
            JSON.stringify(c.username)
          }: check ${options.credentialHint ?? "the username and password"}`
          : `The token service of ${host} refused anonymous access: set ${
            options.credentialHint ?? "credentials"
          }`,
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new NetworkError(
        `The token service of ${host} (${url.origin}) answered HTTP ${res.status}`,
        { status: res.status },
      );
    }
    let data: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    const bytes = await readBody(http, res, {
      limit: MAX_JSON_BYTES,
      what: `The token answer of ${host} (${url.origin})`,
      signal: options.signal,
    });
    try {
      data = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new NetworkError(`The token service of ${host} (${url.origin}) did not answer JSON`);
    }
    const token = data.token ?? data.access_token;
    if (!token) {
      throw new AuthError(`The token service of ${host} (${url.origin}) returned no token`);
    }
    log.addSecret(token);
    used ||= c !== undefined;
    // The spec's default lifetime is 60 s; renew a little early so a request never carries a
    // token that dies in flight.
    const life = typeof data.expires_in === "number" && data.expires_in > 0 ? data.expires_in : 60;
    const issued = data.issued_at ? Date.parse(data.issued_at) : NaN;
    const start = Number.isFinite(issued) && Math.abs(issued - now()) < 300_000 ? issued : now();
    log.debug(
      `Got a token for ${[...scopes].join(" ") || "(no scope)"} from ${url.origin}, ${life}s`,
    );
    return { token, expiresAt: start + life * 1000 - Math.min(10_000, life * 200) };
  }

  /** One token request per scope at a time: parallel parts share it. */
  function tokenFor(host: string, scope: string, wanted?: string): Promise<CachedToken> {
    let p = pending.get(scope);
    if (!p) {
      p = fetchToken(host, scope, wanted).then((t) => {
        tokens.set(scope, t);
        return t;
      }).finally(() => pending.delete(scope));
      pending.set(scope, p);
    }
    return p;
  }

  const ours = (r: AuthRequest) => !options.origin || r.url.origin === options.origin;
  const hostOf = (r: AuthRequest) => options.host ?? r.url.host;

  async function authorize(scope: string, request: AuthRequest): Promise<void> {
    if (!ours(request)) return;
    if (bearer) {
      let t = tokens.get(scope);
      if (!t || t.expiresAt <= now()) {
        if (t) log.debug(`Token for ${scope || "(no scope)"} expired; getting a new one`);
        t = await tokenFor(hostOf(request), scope);
      }
      request.headers.set("authorization", `Bearer ${t.token}`);
      return;
    }
    if (basic || options.preemptiveBasic) {
      const c = await creds();
      if (c) {
        used = true;
        request.headers.set("authorization", basicHeader(c));
      }
    }
  }

  async function onChallenge(scope: string, response: Response, request: AuthRequest) {
    if (!ours(request)) return false;
    const header = response.headers.get("www-authenticate");
    const challenges = parseChallenges(header);
    const sent = request.headers.get("authorization") ?? "";
    const b = challenges.find((c) => c.scheme === "bearer");
    if (b) {
      if (!b.params.realm) {
        throw new AuthError(
          `Registry ${hostOf(request)} sent a Bearer challenge without a realm: ${
            JSON.stringify(header)
          }`,
        );
      }
      const realm = new URL(b.params.realm, request.url);
      // A realm is fetched with the credentials: never a local file or any other scheme.
      assertFetchable(realm, `the token realm of ${hostOf(request)}`);
      bearer = { realm: realm.href, service: b.params.service };
      tokens.delete(scope);
      // A scope in the challenge is what the server wants; use it, else ours (NGC sends none).
      const fresh = await tokenFor(hostOf(request), scope, b.params.scope || undefined);
      // The same token again: the server refuses it for good, so stop instead of looping.
      return sent !== `Bearer ${fresh.token}`;
    }
    if (challenges.some((c) => c.scheme === "basic")) {
      if (sent.startsWith("Basic ")) return false;
      if (!(await creds())) return false;
      basic = true;
      return true;
    }
    return false;
  }

  const view = (scope: string): Authorizer => ({
    origin: options.origin,
    authorize: (r) => authorize(scope, r),
    onChallenge: (res, r) => onChallenge(scope, res, r),
  });
  const root = view("");
  return {
    origin: options.origin,
    authorize: root.authorize,
    onChallenge: root.onChallenge,
    scoped(scope) {
      let v = views.get(scope);
      if (!v) views.set(scope, v = view(scope));
      return v;
    },
    invalidate(scope) {
      tokens.delete(scope);
    },
    get authenticated() {
      return used;
    },
  };
}
