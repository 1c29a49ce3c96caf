/**
 * Globus Auth for a native app (the original's `NativeAppAuthClient` with refresh tokens): the
 * authorize URL with a PKCE challenge is shown through the prompt, the pasted code is exchanged at
 * `/v2/oauth2/token`, and the transfer-scoped tokens (access + refresh) are kept in the credential
 * store. Later runs refresh the access token with core/auth/oauth2 (the refresh token, unlike the
 * original, decides when to sign in again, not the expiry of the Auth token).
 * @module
 */

import { createHash } from "node:crypto";
import { oauth2RefreshAuth, type OAuth2Tokens } from "../../core/auth/oauth2.ts";
import type { Authorizer } from "../../core/auth/types.ts";
import { AuthError } from "../../core/errors.ts";
import { MAX_JSON_BYTES, readBody } from "../../core/http.ts";
import type { Context } from "../types.ts";

/** The resource server whose token the Transfer API takes. */
export const TRANSFER_RESOURCE = "transfer.api.globus.org";
/** The scopes the original asked for. */
export const SCOPES = "openid profile email urn:globus:auth:scope:transfer.api.globus.org:all";
/** The key of the tokens in the credential store. */
export const TOKEN_KEY = "transfer";

interface TokenDoc {
  access_token?: string;
  refresh_token?: string;
  expires_in?: number;
  resource_server?: string;
  other_tokens?: TokenDoc[];
}

const b64url = (b: Uint8Array) =>
  btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** Options of {@link globusAuthorizer}. */
export interface GlobusAuthOptions {
  /** `https://auth.globus.org`. */
  authBase: string;
  /** The native app's client id. */
  clientId: string;
}

/** The transfer-token authorizer: saved tokens refreshed as needed, else a login first. */
export function globusAuthorizer(ctx: Context, options: GlobusAuthOptions): Authorizer {
  const tokenUrl = `${options.authBase}/v2/oauth2/token`;
  const refreshing = (tokens: OAuth2Tokens) =>
    oauth2RefreshAuth({
      http: ctx.http,
      tokenUrl,
      clientId: options.clientId,
      ...tokens,
      onTokens: (t) => ctx.credentials.set(TOKEN_KEY, t),
      log: ctx.log,
      signal: ctx.signal,
    });
  const kept = ctx.credentials.get<OAuth2Tokens>(TOKEN_KEY) ?? fromOriginal(ctx);
  if (kept?.refreshToken) return refreshing(kept);
  let pending: Promise<Authorizer> | undefined;
  const inner = () => pending ??= login(ctx, options, tokenUrl).then(refreshing);
  return {
    async authorize(request) {
      await (await inner()).authorize(request);
    },
    async onChallenge(response, request) {
      return await (await inner()).onChallenge?.(response, request) ?? false;
    },
  };
}

/**
 * The tokens sregistry-cli saved in the secrets file (`GLOBUS_TRANSFER_RESPONSE` in the globus
 * section: `access_token`, `refresh_token`, `expires_at_seconds`), so a user who switches keeps
 * the sign-in. They are copied to the credential store; the secrets file is left as it is.
 */
function fromOriginal(ctx: Context): OAuth2Tokens | undefined {
  const saved = ctx.settings.all().GLOBUS_TRANSFER_RESPONSE as
    | { access_token?: unknown; refresh_token?: unknown; expires_at_seconds?: unknown }
    | undefined;
  if (!saved || typeof saved !== "object" || typeof saved.refresh_token !== "string") {
    return undefined;
  }
  const tokens: OAuth2Tokens = {
    refreshToken: saved.refresh_token,
    ...(typeof saved.access_token === "string" ? { accessToken: saved.access_token } : {}),
    ...(typeof saved.expires_at_seconds === "number"
      ? { expiresAt: saved.expires_at_seconds * 1000 }
      : {}),
  };
  ctx.log.addSecret(tokens.accessToken);
  ctx.log.addSecret(tokens.refreshToken);
  ctx.credentials.set(TOKEN_KEY, tokens);
  return tokens;
}

/** The native-app code flow with PKCE: the URL, the pasted code, the token exchange. */
async function login(
  ctx: Context,
  options: GlobusAuthOptions,
  tokenUrl: string,
): Promise<OAuth2Tokens> {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(48)));
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  const redirect = `${options.authBase}/v2/web/auth-code`;
  const url = new URL(`${options.authBase}/v2/oauth2/authorize`);
  url.search = new URLSearchParams({
    client_id: options.clientId,
    redirect_uri: redirect,
    scope: SCOPES,
    state: "_default",
    response_type: "code",
    code_challenge: challenge,
    code_challenge_method: "S256",
    access_type: "offline",
  }).toString();
  const code = (await ctx.prompt.readCode(
    url.href,
    "Open this URL, sign in to Globus, and paste the authorization code it shows",
  )).trim();
  const res = await ctx.http.request(tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirect,
      client_id: options.clientId,
      code_verifier: verifier,
    }).toString(),
    accept: (s) => s < 500 && s !== 429 && s !== 408,
    signal: ctx.signal,
  });
  let data: TokenDoc & { error?: string; error_description?: string } = {};
  try {
    const body = await readBody(ctx.http, res, {
      limit: MAX_JSON_BYTES,
      what: "The token answer of Globus Auth",
      signal: ctx.signal,
    });
    data = JSON.parse(new TextDecoder().decode(body)) ?? {};
  } catch {
    // reported below as no token
  }
  if (!res.ok) {
    const why = data.error
      ? `${data.error}${data.error_description ? `: ${data.error_description}` : ""}`
      : `HTTP ${res.status}`;
    throw new AuthError(
      `Globus Auth refused the authorization code (${why}); run the command again and paste the code the page shows`,
    );
  }
  // Tokens come one per resource server: the first at the top, the others in other_tokens.
  const all = [data, ...(data.other_tokens ?? [])];
  for (const t of all) {
    ctx.log.addSecret(t.access_token);
    ctx.log.addSecret(t.refresh_token);
  }
  const transfer = all.find((t) => t.resource_server === TRANSFER_RESOURCE);
  if (!transfer?.access_token || !transfer.refresh_token) {
    throw new AuthError(
      "Globus returned no transfer token with a refresh token for the code; sign in again and allow Transfer access",
    );
  }
  const tokens: OAuth2Tokens = {
    accessToken: transfer.access_token,
    refreshToken: transfer.refresh_token,
    expiresAt: Date.now() + (transfer.expires_in ?? 172_800) * 1000,
  };
  ctx.credentials.set(TOKEN_KEY, tokens);
  ctx.log.info("Signed in to Globus; the tokens are kept in the credential store");
  return tokens;
}
