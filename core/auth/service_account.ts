/**
 * A service account key's JWT-bearer authorizer ({@link jwtBearerAuth}) whose token outlives the
 * run: it is kept in the credential store under `access_token`, marked with a fingerprint of the
 * key file (its path and modification time) and the scopes, and taken again only when the same
 * key, unchanged, asks for the same scopes. The key itself is read only when a token is needed.
 * @module
 */

import { createHash } from "node:crypto";
import type { CredentialStore } from "../credentials.ts";
import type { Http } from "../http.ts";
import type { Logger } from "../log.ts";
import {
  type AccessToken,
  jwtBearerAuth,
  type JwtBearerAuthorizer,
  readServiceAccount,
} from "./jwt_bearer.ts";

/** The credential-store key of the kept token (the same in every client that uses one). */
export const KEPT_TOKEN_KEY = "access_token";

/** What {@link serviceAccountAuth} uses of a client's context (a Context fits). */
export interface ServiceAccountContext {
  /** The HTTP client. */
  readonly http: Http;
  /** Where the token is kept. */
  readonly credentials: CredentialStore;
  /** The log. */
  readonly log?: Logger;
  /** Cancels token requests. */
  readonly signal?: AbortSignal;
}

/** Which key {@link serviceAccountAuth} uses, and for what. */
export interface ServiceAccountOptions {
  /** The setting naming the key file (GOOGLE_APPLICATION_CREDENTIALS), for messages. */
  setting: string;
  /** The key file's path. */
  path: string;
  /** The scopes asked for. */
  scopes: string | readonly string[];
  /** The origin the token is bound to (none: the caller binds it). */
  origin?: string;
}

/** The fingerprint a kept token carries: the key file as it is now, and the scopes. */
function fingerprintOf(path: string, scope: string): string {
  let mtime = "";
  try {
    mtime = String(Deno.statSync(path).mtime?.getTime() ?? "");
  } catch {
    // reported when the key is read
  }
  return createHash("sha256").update(`${path}\n${mtime}\n${scope}`).digest("hex");
}

/**
 * The JWT-bearer authorizer of a service account key, its token kept in the credential store
 * (`access_token`) for this key file, as it was when read, and these scopes only.
 */
export function serviceAccountAuth(
  ctx: ServiceAccountContext,
  o: ServiceAccountOptions,
): JwtBearerAuthorizer {
  const scope = typeof o.scopes === "string" ? o.scopes : o.scopes.join(" ");
  const fingerprint = fingerprintOf(o.path, scope);
  const kept = ctx.credentials.get<AccessToken & { for?: string }>(KEPT_TOKEN_KEY);
  return jwtBearerAuth({
    http: ctx.http,
    account: () => readServiceAccount(o.path, o.setting),
    scopes: o.scopes,
    origin: o.origin,
    cached: kept?.for === fingerprint && typeof kept.accessToken === "string"
      ? { accessToken: kept.accessToken, expiresAt: kept.expiresAt }
      : undefined,
    onToken: (t) => ctx.credentials.set(KEPT_TOKEN_KEY, { ...t, for: fingerprint }),
    source: `${JSON.stringify(o.path)} (${o.setting})`,
    log: ctx.log,
    signal: ctx.signal,
  });
}
