/**
 * Registry authentication: a tolerant `WWW-Authenticate` parser, the Bearer token flow (with tokens
 * cached per scope and refreshed before they expire), Basic auth, and credentials from docker's
 * `config.json` (`auths`, `credsStore`, `credHelpers`).
 *
 * sregistry-cli required `realm`, `service` and `scope` in one fixed order, so NGC's challenge (no
 * `service`) failed; here parameters are parsed generically and missing ones are left out.
 * @module
 */

import { join } from "node:path";
import { AuthError, ConfigError, NetworkError } from "../../core/errors.ts";
import type { Http } from "../../core/http.ts";
import type { Logger } from "../../core/log.ts";
import type { Env } from "../../core/settings.ts";
import { run } from "../../core/exec.ts";

/** One challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** The scheme, lower-case (`bearer`, `basic`). */
  scheme: string;
  /** Parameters with lower-case names. */
  params: Record<string, string>;
}

/**
 * Parse a `WWW-Authenticate` header (RFC 7235): several challenges, quoted strings with escapes,
 * parameters in any order, unknown ones kept.
 */
export function parseChallenges(header: string | null | undefined): Challenge[] {
  const out: Challenge[] = [];
  if (!header) return out;
  let i = 0;
  const s = header;
  const skipWs = () => {
    while (i < s.length && /[\s,]/.test(s[i])) i++;
  };
  const token = () => {
    const m = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(s.slice(i));
    if (!m) return "";
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    skipWs();
    const scheme = token();
    if (!scheme) {
      i++;
      continue;
    }
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    for (;;) {
      while (i < s.length && /[\s,]/.test(s[i])) i++;
      const save = i;
      const name = token();
      while (i < s.length && s[i] === " ") i++;
      if (!name || s[i] !== "=") {
        // Either the next challenge's scheme or a token68; leave it for the outer loop.
        i = save;
        break;
      }
      i++;
      while (i < s.length && s[i] === " ") i++;
      let value = "";
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\" && i + 1 < s.length) i++;
          value += s[i++];
        }
        i++;
      } else {
        const m = /^[^\s,]*/.exec(s.slice(i))!;
        value = m[0];
        i += value.length;
      }
      ch.params[name.toLowerCase()] = value;
    }
  }
  return out;
}

/** A username and password (or identity token, with username `<token>`). */
export interface Credentials {
  /** The user. */
  username: string;
  /** The password or token. */
  password: string;
}

/** Runs a credential helper: `docker-credential-<name> get` with the server on stdin. */
export type HelperRunner = (name: string, server: string) => Promise<string>;

/** The default helper runner (core/exec.ts). */
export const runHelper: HelperRunner = async (name, server) => {
  let res;
  try {
    res = await run(`docker-credential-${name}`, ["get"], { stdin: server });
  } catch (e) {
    throw new ConfigError(
      `Docker credential helper "docker-credential-${name}" cannot be run (${
        (e as Error).message
      }); install it or remove it from ~/.docker/config.json`,
    );
  }
  if (!res.success) {
    const why = (res.stdout.trim() || res.stderr.trim()).split("\n")[0];
    if (/credentials not found/i.test(why)) return "";
    throw new AuthError(
      `Docker credential helper "docker-credential-${name}" failed for ${server}: ${why}`,
    );
  }
  return res.stdout;
};

/** The parts of docker's config.json sregistry reads. */
export interface DockerConfig {
  /** host -> `{auth: base64(user:pass)}` or `{username, password}` or `{identitytoken}`. */
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string }
  >;
  /** The default helper for every host. */
  credsStore?: string;
  /** host -> helper name. */
  credHelpers?: Record<string, string>;
}

/** Where docker's config lives: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function dockerConfigPath(env: Env, home: string): string {
  const dir = env.get("DOCKER_CONFIG");
  return dir ? join(dir, "config.json") : join(home, ".docker", "config.json");
}

/** Read docker's config.json; undefined when missing. */
export function readDockerConfig(path: string): DockerConfig | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as DockerConfig;
  } catch (e) {
    throw new ConfigError(
      `Docker config ${path} is not valid JSON (${(e as Error).message}); fix or remove it`,
    );
  }
}

function hostKeys(host: string): string[] {
  // Docker Hub's credentials are stored under its historical v1 URL.
  if (host === "index.docker.io" || host === "docker.io" || host === "registry-1.docker.io") {
    return ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"];
  }
  return [host, `https://${host}`, `http://${host}`, `https://${host}/v1/`, `https://${host}/v2/`];
}

/**
 * Credentials for a registry host from docker's config: `credHelpers[host]`, then `auths`, then
 * `credsStore` (docker's own order).
 */
export async function dockerConfigCredentials(
  config: DockerConfig | undefined,
  host: string,
  runner: HelperRunner = runHelper,
): Promise<Credentials | undefined> {
  if (!config) return undefined;
  const keys = hostKeys(host);
  const fromHelper = async (name: string): Promise<Credentials | undefined> => {
    const out = await runner(name, keys[0]);
    if (!out.trim()) return undefined;
    let data: { Username?: string; Secret?: string };
    try {
      data = JSON.parse(out);
    } catch {
      throw new AuthError(
        `Docker credential helper "docker-credential-${name}" printed something that is not JSON for ${host}`,
      );
    }
    if (!data.Secret) return undefined;
    return { username: data.Username ?? "", password: data.Secret };
  };
  for (const k of keys) {
    const helper = config.credHelpers?.[k];
    if (helper) return await fromHelper(helper);
  }
  for (const k of keys) {
    const a = config.auths?.[k];
    if (!a) continue;
    if (a.identitytoken) return { username: "<token>", password: a.identitytoken };
    if (a.username && a.password) return { username: a.username, password: a.password };
    if (a.auth) {
      const decoded = new TextDecoder().decode(
        Uint8Array.from(atob(a.auth), (c) => c.charCodeAt(0)),
      );
      const colon = decoded.indexOf(":");
      if (colon < 0) {
        throw new ConfigError(
          `The "auth" entry for ${k} in docker's config.json is not base64 of user:password`,
        );
      }
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  if (config.credsStore) return await fromHelper(config.credsStore);
  return undefined;
}

/** `Basic base64(user:password)`. */
export function basicHeader(c: Credentials): string {
  const bytes = new TextEncoder().encode(`${c.username}:${c.password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** Options of {@link createAuthenticator}. */
export interface AuthenticatorOptions {
  /** The HTTP client (token requests go through it). */
  http: Http;
  /** Logger; every token is registered as a secret. */
  log: Logger;
  /** The registry host (for messages and credential lookup). */
  host: string;
  /** Resolves credentials lazily (settings, docker config, helpers); undefined = anonymous. */
  credentials?: () => Promise<Credentials | undefined>;
  /** Send Basic credentials up front (ECR, NGC) instead of waiting for a challenge. */
  preemptiveBasic?: boolean;
  /** The clock, in ms (tests inject one). */
  now?: () => number;
  /** Where to say credentials come from, in error messages. */
  credentialHint?: string;
}

/** Produces the Authorization header for a scope and reacts to 401 challenges. */
export interface Authenticator {
  /** The header to send for `scope` (`repository:<name>:pull`), refreshing an expiring token. */
  header(scope: string): Promise<string | undefined>;
  /**
   * Handle a 401: learn the challenge and get a new token (or decide on Basic).
   * @returns true when a retry can succeed with a new header.
   */
  challenge(response: Response, scope: string): Promise<boolean>;
  /** Forget the token for a scope (the registry refused it); the next header() gets a new one. */
  invalidate(scope: string): void;
  /** Whether credentials (not anonymous access) were used. */
  readonly authenticated: boolean;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Build an authenticator for one registry host. */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const { http, log, host } = options;
  const now = options.now ?? Date.now;
  let creds: Credentials | undefined | null = null; // null = not looked up yet
  let bearer: { realm: string; service?: string } | undefined;
  let basic = false;
  const tokens = new Map<string, CachedToken>();
  let used = false;

  async function getCreds(): Promise<Credentials | undefined> {
    if (creds === null) {
      creds = options.credentials ? await options.credentials() : undefined;
      if (creds) {
        log.addSecret(creds.password);
        log.addSecret(btoa(`${creds.username}:${creds.password}`));
      }
    }
    return creds;
  }

  async function fetchToken(scope: string, challengeScope?: string): Promise<CachedToken> {
    const b = bearer!;
    const url = new URL(b.realm);
    if (b.service) url.searchParams.set("service", b.service);
    const scopes = new Set<string>();
    if (challengeScope) { for (const s of challengeScope.split(" ")) if (s) scopes.add(s); }
    if (scope && scopes.size === 0) scopes.add(scope);
    for (const s of scopes) url.searchParams.append("scope", s);
    const c = await getCreds();
    const headers: Record<string, string> = { Accept: "application/json" };
    if (c && c.username !== "<token>") headers.Authorization = basicHeader(c);
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
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: body.toString(),
        noDefaultHeaders: true,
        accept: (st) => st < 500 && st !== 429 && st !== 408,
        updateToken: () => Promise.resolve(false),
      });
    } else {
      res = await http.request(url, {
        headers,
        noDefaultHeaders: true,
        accept: (st) => st < 500 && st !== 429 && st !== 408,
        updateToken: () => Promise.resolve(false),
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
    try {
      data = await res.json();
    } catch {
      throw new NetworkError(`The token service of ${host} (${url.origin}) did not answer JSON`);
    }
    const token = data.token ?? data.access_token;
    if (!token) {
      throw new AuthError(`The token service of ${host} (${url.origin}) returned no token`);
    }
    log.addSecret(token);
    used ||= c !== undefined;
    // The spec's default lifetime is 60 s; refresh a little early so a request never carries a
    // token that dies in flight.
    const life = typeof data.expires_in === "number" && data.expires_in > 0 ? data.expires_in : 60;
    const issued = data.issued_at ? Date.parse(data.issued_at) : NaN;
    const start = Number.isFinite(issued) && Math.abs(issued - now()) < 300_000 ? issued : now();
    log.debug(
      `Got a token for ${[...scopes].join(" ") || "(no scope)"} from ${url.origin}, ${life}s`,
    );
    return { token, expiresAt: start + life * 1000 - Math.min(10_000, life * 200) };
  }

  const auth: Authenticator = {
    get authenticated() {
      return used;
    },
    invalidate(scope) {
      tokens.delete(scope);
    },
    async header(scope) {
      if (bearer) {
        const t = tokens.get(scope);
        if (t && t.expiresAt > now()) return `Bearer ${t.token}`;
        if (t) log.debug(`Token for ${scope} expired; getting a new one`);
        const fresh = await fetchToken(scope);
        tokens.set(scope, fresh);
        return `Bearer ${fresh.token}`;
      }
      if (basic || options.preemptiveBasic) {
        const c = await getCreds();
        if (c) {
          used = true;
          return basicHeader(c);
        }
      }
      return undefined;
    },
    async challenge(response, scope) {
      const header = response.headers.get("www-authenticate");
      const challenges = parseChallenges(header);
      const b = challenges.find((c) => c.scheme === "bearer");
      if (b) {
        if (!b.params.realm) {
          throw new AuthError(
            `Registry ${host} sent a Bearer challenge without a realm: ${JSON.stringify(header)}`,
          );
        }
        const known = tokens.get(scope);
        const insufficient = b.params.error === "insufficient_scope";
        bearer = { realm: b.params.realm, service: b.params.service };
        // A scope in the challenge is what the server wants; use it, falling back to ours (NGC
        // sends none or an empty one).
        const fresh = await fetchToken(scope, b.params.scope || undefined);
        if (known && known.token === fresh.token && !insufficient) return false;
        tokens.set(scope, fresh);
        return true;
      }
      if (challenges.some((c) => c.scheme === "basic")) {
        if (basic) return false;
        const c = await getCreds();
        if (!c) return false;
        basic = true;
        return true;
      }
      return false;
    },
  };
  return auth;
}
