/**
 * HTTP Basic auth, and a static bearer token, as authorizers.
 * @module
 */

import type { Logger } from "../log.ts";
import { findChallenge } from "./challenge.ts";
import {
  type Authorizer,
  type Credentials,
  type CredentialSource,
  lazyCredentials,
} from "./types.ts";

/** `Basic base64(user:password)` (UTF-8). */
export function basicHeader(c: Credentials): string {
  const bytes = new TextEncoder().encode(`${c.username}:${c.password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** Options of {@link basicAuth}. */
export interface BasicAuthOptions {
  /**
   * Send the credentials with the first attempt (default true). With false they go only after a
   * 401 with a `Basic` challenge, and once: a second refusal is final.
   */
  preemptive?: boolean;
  /** Registers the password as a secret so it is redacted from every log line. */
  log?: Logger;
  /** The origin the credentials belong to (core/http sends them nowhere else). */
  origin?: string;
}

/** Static user and password: `Authorization: Basic ...` on every attempt. */
export function basicAuth(
  credentials: CredentialSource,
  options: BasicAuthOptions = {},
): Authorizer {
  const get = lazyCredentials(credentials);
  let send = options.preemptive ?? true;
  const resolve = async () => {
    const c = await get();
    if (c) {
      options.log?.addSecret(c.password);
      options.log?.addSecret(basicHeader(c).slice(6));
    }
    return c;
  };
  return {
    origin: options.origin,
    async authorize(request) {
      if (!send) return;
      const c = await resolve();
      if (c) request.headers.set("authorization", basicHeader(c));
    },
    async onChallenge(response, request) {
      if (request.headers.get("authorization")?.startsWith("Basic ")) return false;
      if (!findChallenge(response, "basic") || !(await resolve())) return false;
      send = true;
      return true;
    },
  };
}

/** A static bearer token (an API key): `Authorization: Bearer <token>` on every attempt. */
export function bearerToken(
  token: string,
  options: { log?: Logger; origin?: string } = {},
): Authorizer {
  options.log?.addSecret(token);
  return {
    origin: options.origin,
    authorize(request) {
      request.headers.set("authorization", `Bearer ${token}`);
    },
  };
}
