/**
 * OAuth2 with a refresh token (RFC 6749 section 6) as an authorizer: it holds an access token and its
 * expiry, gets a new one from the token endpoint before it expires, and once more when the API
 * answers 401 to a token it still thought valid. Dropbox and Google Drive use it; a JWT-bearer
 * grant or a device-code flow only changes how the first tokens are obtained.
 * @module
 */

import { AuthError, NetworkError } from "../errors.ts";
import type { Http } from "../http.ts";
import type { Logger } from "../log.ts";
import type { Authorizer } from "./types.ts";
import { requestToken, tokenRefusal } from "./_token_request.ts";

/** The tokens an OAuth2 authorizer holds (what a client saves in its credential store). */
export interface OAuth2Tokens {
  /** The access token, if one is known. */
  accessToken?: string;
  /** When the access token expires, in ms since the epoch. */
  expiresAt?: number;
  /** The refresh token (servers may rotate it on each refresh). */
  refreshToken: string;
}

/** Options of {@link oauth2RefreshAuth}. */
export interface OAuth2RefreshOptions extends OAuth2Tokens {
  /** The transport for the token endpoint (ctx.http). */
  http: Http;
  /** The token endpoint (`https://oauth2.googleapis.com/token`). */
  tokenUrl: string;
  /** The OAuth2 client id. */
  clientId: string;
  /** The client secret, for confidential clients. */
  clientSecret?: string;
  /** Scopes to ask for on refresh (space-separated), when the server needs them. */
  scope?: string;
  /** Called with the new tokens after each refresh (to persist them). */
  onTokens?: (tokens: OAuth2Tokens) => void | Promise<void>;
  /** Registers every token as a secret. */
  log?: Logger;
  /** The clock in ms. */
  now?: () => number;
  /** Cancels token requests. */
  signal?: AbortSignal;
}

/** Refresh this long before the announced expiry, so no request carries a dying token. */
const EARLY_MS = 30_000;

/** An authorizer that sends `Bearer <access token>` and refreshes it with the refresh token. */
export function oauth2RefreshAuth(options: OAuth2RefreshOptions): Authorizer {
  const now = options.now ?? Date.now;
  let tokens: OAuth2Tokens = {
    accessToken: options.accessToken,
    expiresAt: options.expiresAt,
    refreshToken: options.refreshToken,
  };
  options.log?.addSecret(tokens.accessToken);
  options.log?.addSecret(tokens.refreshToken);
  let pending: Promise<OAuth2Tokens> | undefined;
  // The access token a 401 made us fetch: refused too, it is final.
  let fromChallenge: string | undefined;

  async function refresh(): Promise<OAuth2Tokens> {
    const body = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: tokens.refreshToken,
      client_id: options.clientId,
    });
    if (options.clientSecret) body.set("client_secret", options.clientSecret);
    if (options.scope) body.set("scope", options.scope);
    const endpoint = new URL(options.tokenUrl);
    const { res, data } = await requestToken(options.http, endpoint, body, options.signal);
    if (!res.ok) {
      const why = tokenRefusal(res, data);
      if (res.status >= 400 && res.status < 500) {
        throw new AuthError(
          `The token endpoint ${endpoint.host} refused the refresh token (${why}); sign in again`,
        );
      }
      throw new NetworkError(`The token endpoint ${endpoint.host} answered ${why}`, {
        status: res.status,
      });
    }
    if (typeof data.access_token !== "string" || data.access_token === "") {
      throw new AuthError(`The token endpoint ${endpoint.host} returned no access token`);
    }
    const rotated = typeof data.refresh_token === "string" && data.refresh_token !== ""
      ? data.refresh_token
      : undefined;
    options.log?.addSecret(data.access_token);
    options.log?.addSecret(rotated);
    const life = typeof data.expires_in === "number" && data.expires_in > 0
      ? data.expires_in
      : 3600;
    tokens = {
      accessToken: data.access_token,
      expiresAt: now() + life * 1000,
      refreshToken: rotated ?? tokens.refreshToken,
    };
    await options.onTokens?.({ ...tokens });
    return tokens;
  }

  /** One refresh at a time: parallel requests share it. */
  function refreshOnce(): Promise<OAuth2Tokens> {
    pending ??= refresh().finally(() => pending = undefined);
    return pending;
  }

  const fresh = (t: OAuth2Tokens) =>
    t.accessToken !== undefined && (t.expiresAt === undefined || t.expiresAt - EARLY_MS > now());

  return {
    async authorize(request) {
      const t = fresh(tokens) ? tokens : await refreshOnce();
      request.headers.set("authorization", `Bearer ${t.accessToken}`);
    },
    async onChallenge(_response, request) {
      const sent = request.headers.get("authorization")?.replace(/^Bearer /, "");
      if (sent !== undefined && sent === fromChallenge) return false;
      if (sent === tokens.accessToken || !fresh(tokens)) {
        fromChallenge = (await refreshOnce()).accessToken;
      }
      // Another request refreshed meanwhile: the next attempt takes its token.
      return true;
    },
  };
}
