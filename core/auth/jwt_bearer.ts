/**
 * The OAuth2 JWT-bearer grant (RFC 7523) of a Google service account, as an authorizer: a JWT with
 * the account's email as issuer, the scopes and the token endpoint as audience, signed RS256 with
 * WebCrypto from the key file's PKCS#8 `private_key`, is exchanged at the key file's `token_uri` for
 * an access token. The token is kept until shortly before it expires, fetched again then, and once
 * more when the API answers 401 to a token it still thought valid. google-storage uses it;
 * google-drive and google-build can reuse it with their own scopes.
 * @module
 */

import { AuthError, ConfigError, NetworkError } from "../errors.ts";
import { type Http, isLoopback } from "../http.ts";
import type { Logger } from "../log.ts";
import type { Authorizer } from "./types.ts";
import { requestToken, tokenRefusal } from "./_token_request.ts";
import { unreadableReason } from "../fs.ts";

/** Google's token endpoint, used when a key file names none. */
export const GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token";

/** The grant type of RFC 7523 section 2.1. */
export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/** The longest assertion lifetime Google accepts (one hour). */
const MAX_LIFETIME_S = 3600;

/** Refresh this long before the announced expiry, so no request carries a dying token. */
const EARLY_MS = 60_000;

/** The fields of a service-account key file (`gcloud iam service-accounts keys create`) used here. */
export interface ServiceAccountKey {
  /** `service_account`. */
  type?: string;
  /** The account, the JWT's issuer. */
  client_email: string;
  /** PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
  private_key: string;
  /** The key's id, sent as the JWT header's `kid`. */
  private_key_id?: string;
  /** Where assertions are exchanged (default {@link GOOGLE_TOKEN_URI}). */
  token_uri?: string;
  /** The project the account belongs to. */
  project_id?: string;
}

/** An access token and when it expires (what a client may keep in its credential store). */
export interface AccessToken {
  /** The bearer token. */
  accessToken: string;
  /** Expiry in ms since the epoch. */
  expiresAt: number;
}

/**
 * Parse a service-account key file's text. `source` names it in messages (a path and the setting
 * that gave it).
 * @throws {ConfigError} when it is not JSON or lacks `client_email` or a PKCS#8 `private_key`.
 */
export function parseServiceAccount(text: string, source: string): ServiceAccountKey {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new ConfigError(`The service account key ${source} is not JSON; download a JSON key`);
  }
  const d = (data && typeof data === "object" ? data : {}) as Record<string, unknown>;
  if (d.type !== undefined && d.type !== "service_account") {
    throw new ConfigError(
      `The credentials ${source} are of type ${
        JSON.stringify(d.type)
      }, not "service_account"; give a service account key file`,
    );
  }
  for (const k of ["client_email", "private_key"]) {
    if (typeof d[k] !== "string" || d[k] === "") {
      throw new ConfigError(`The service account key ${source} has no ${k}; download a new key`);
    }
  }
  if (!/-----BEGIN PRIVATE KEY-----/.test(d.private_key as string)) {
    throw new ConfigError(
      `The private_key of ${source} is not a PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"); download a new key`,
    );
  }
  const str = (k: string) => typeof d[k] === "string" && d[k] !== "" ? d[k] as string : undefined;
  return {
    type: str("type"),
    client_email: d.client_email as string,
    private_key: d.private_key as string,
    private_key_id: str("private_key_id"),
    token_uri: str("token_uri"),
    project_id: str("project_id"),
  };
}

/**
 * Read and parse a key file.
 * @throws {ConfigError} when it cannot be read or parsed; `setting` names the variable in messages.
 */
export async function readServiceAccount(
  path: string,
  setting: string,
): Promise<ServiceAccountKey> {
  const source = `${JSON.stringify(path)} (${setting})`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const why = unreadableReason(e);
    throw new ConfigError(`Cannot read the service account key ${source}: ${why}; fix ${setting}`);
  }
  return parseServiceAccount(text, source);
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The DER bytes inside a PEM block with this label. */
export function pemToDer(pem: string, label = "PRIVATE KEY"): Uint8Array<ArrayBuffer> {
  const m = pem.match(new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`));
  if (!m) throw new ConfigError(`No "${label}" PEM block in the key`);
  const b64 = m[1].replace(/\s+/g, "");
  try {
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    throw new ConfigError(`The "${label}" PEM block is not base64`);
  }
}

/** Import a PKCS#8 PEM RSA key for RS256 signing. */
export async function importRs256Key(pem: string): Promise<CryptoKey> {
  try {
    return await crypto.subtle.importKey(
      "pkcs8",
      pemToDer(pem),
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["sign"],
    );
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`The private key is not an RSA PKCS#8 key: ${(e as Error).message}`);
  }
}

/** A compact JWT `header.claims.signature`, signed RS256 with `key`. */
export async function signJwt(
  claims: Record<string, unknown>,
  key: CryptoKey,
  kid?: string,
): Promise<string> {
  const enc = new TextEncoder();
  const header = { alg: "RS256", typ: "JWT", ...(kid ? { kid } : {}) };
  const input = `${base64url(enc.encode(JSON.stringify(header)))}.${
    base64url(enc.encode(JSON.stringify(claims)))
  }`;
  const sig = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, enc.encode(input));
  return `${input}.${base64url(new Uint8Array(sig))}`;
}

/** Options of {@link jwtBearerAuth}. */
export interface JwtBearerOptions {
  /** The transport for the token endpoint (ctx.http). */
  http: Http;
  /** The key, or a function reading it when first needed (no I/O before a request). */
  account: ServiceAccountKey | (() => ServiceAccountKey | Promise<ServiceAccountKey>);
  /** OAuth scopes (joined with spaces). */
  scopes: string | readonly string[];
  /** Overrides the key's `token_uri` (default: the key's, else {@link GOOGLE_TOKEN_URI}). */
  tokenUri?: string;
  /** The user to act for (domain-wide delegation: the JWT's `sub`). */
  subject?: string;
  /** The origin the access token is for (core/http sends it nowhere else). */
  origin?: string;
  /** Assertion lifetime in seconds (at most and by default 3600). */
  lifetimeSeconds?: number;
  /** A token kept from an earlier run, used while it is fresh. */
  cached?: AccessToken;
  /** Called with each new token (to keep it in the credential store). */
  onToken?: (token: AccessToken) => void | Promise<void>;
  /** Where the key came from, for messages (`"key.json" (GOOGLE_APPLICATION_CREDENTIALS)`). */
  source?: string;
  /** Registers tokens and assertions as secrets. */
  log?: Logger;
  /** The clock in ms. */
  now?: () => number;
  /** Cancels token requests. */
  signal?: AbortSignal;
}

/** A JWT-bearer authorizer, with direct access to its token. */
export interface JwtBearerAuthorizer extends Authorizer {
  /** A fresh access token (fetched when none is kept or it is about to expire). */
  token(): Promise<string>;
  /** Forget the kept token (the next request fetches one). */
  invalidate(): void;
}

/**
 * An authorizer sending `Bearer <access token>` obtained with the service account's signed JWT.
 * Parallel requests share one token request. A 401 to the token just fetched is final.
 */
export function jwtBearerAuth(options: JwtBearerOptions): JwtBearerAuthorizer {
  const now = options.now ?? Date.now;
  const scope = typeof options.scopes === "string" ? options.scopes : options.scopes.join(" ");
  const lifetime = Math.min(
    MAX_LIFETIME_S,
    Math.max(60, options.lifetimeSeconds ?? MAX_LIFETIME_S),
  );
  let current: AccessToken | undefined = options.cached;
  options.log?.addSecret(current?.accessToken);
  let pending: Promise<AccessToken> | undefined;
  let key: Promise<{ account: ServiceAccountKey; key: CryptoKey }> | undefined;
  let fromChallenge: string | undefined;

  const loadKey = () => {
    key ??= (async () => {
      const account = typeof options.account === "function"
        ? await options.account()
        : options.account;
      return { account, key: await importRs256Key(account.private_key) };
    })();
    key.catch(() => key = undefined);
    return key;
  };

  async function fetchToken(): Promise<AccessToken> {
    const { account, key: signing } = await loadKey();
    const source = options.source ?? `of ${account.client_email}`;
    const tokenUri = options.tokenUri ?? account.token_uri ?? GOOGLE_TOKEN_URI;
    let endpoint: URL;
    try {
      endpoint = new URL(tokenUri);
    } catch {
      throw new ConfigError(
        `The token_uri ${
          JSON.stringify(tokenUri)
        } of the service account key ${source} is not a URL`,
      );
    }
    if (
      endpoint.protocol !== "https:" &&
      !(endpoint.protocol === "http:" && isLoopback(endpoint.host))
    ) {
      throw new ConfigError(
        `The token_uri ${
          JSON.stringify(tokenUri)
        } of the service account key ${source} is not https (plain http only for a loopback host)`,
      );
    }
    const iat = Math.floor(now() / 1000);
    const claims: Record<string, unknown> = {
      iss: account.client_email,
      scope,
      aud: endpoint.href,
      iat,
      exp: iat + lifetime,
    };
    if (options.subject) claims.sub = options.subject;
    const assertion = await signJwt(claims, signing, account.private_key_id);
    options.log?.addSecret(assertion);
    const { res, data } = await requestToken(
      options.http,
      endpoint,
      new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }),
      options.signal,
    );
    if (!res.ok) {
      const why = tokenRefusal(res, data);
      throw new AuthError(
        `The token endpoint ${endpoint.host} refused the service account key ${source} (${why}); check the key file and the machine's clock`,
      );
    }
    if (typeof data.access_token !== "string" || data.access_token === "") {
      throw new NetworkError(`The token endpoint ${endpoint.host} returned no access_token`);
    }
    options.log?.addSecret(data.access_token);
    const life = typeof data.expires_in === "number" && data.expires_in > 0
      ? data.expires_in
      : lifetime;
    const token = { accessToken: data.access_token, expiresAt: now() + life * 1000 };
    current = token;
    await options.onToken?.({ ...token });
    return token;
  }

  function refreshOnce(): Promise<AccessToken> {
    pending ??= fetchToken().finally(() => pending = undefined);
    return pending;
  }

  const fresh = (t: AccessToken | undefined): t is AccessToken =>
    t !== undefined && t.expiresAt - EARLY_MS > now();

  const token = async () =>
    fresh(current) ? current.accessToken : (await refreshOnce()).accessToken;

  return {
    origin: options.origin,
    token,
    invalidate() {
      current = undefined;
    },
    async authorize(request) {
      request.headers.set("authorization", `Bearer ${await token()}`);
    },
    async onChallenge(_response, request) {
      const sent = request.headers.get("authorization")?.replace(/^Bearer /, "");
      if (sent === undefined) return false;
      if (sent === fromChallenge) return false;
      if (sent === current?.accessToken || !fresh(current)) {
        fromChallenge = (await refreshOnce()).accessToken;
      }
      return true;
    },
  };
}
