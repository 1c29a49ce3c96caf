/**
 * A kept sign-in that the server refuses for good (a revoked or expired refresh token) is
 * forgotten, so the next run signs in afresh instead of failing the same way until the user finds
 * and deletes the credential store entry.
 * @module
 */

import { AuthError } from "../errors.ts";
import type { Authorizer } from "./types.ts";

/**
 * Wrap an OAuth2 refresh authorizer: when it throws an {@link AuthError} (the token endpoint
 * refused the refresh token), `forget` runs once and the error says that the next run signs in.
 * Other errors (a network failure, a 5xx from the token endpoint) keep the sign-in.
 */
export function forgetRefusedSignIn(inner: Authorizer, forget: () => void): Authorizer {
  let forgotten = false;
  const refused = (e: unknown): unknown => {
    if (!(e instanceof AuthError)) return e;
    if (!forgotten) {
      forgotten = true;
      forget();
    }
    return new AuthError(
      `${
        e.message.replace(/;\s*sign in again$/, "")
      }; the kept sign-in was removed: run the command again to sign in`,
      { cause: e },
    );
  };
  return {
    origin: inner.origin,
    async authorize(request) {
      try {
        await inner.authorize(request);
      } catch (e) {
        throw refused(e);
      }
    },
    async onChallenge(response, request) {
      try {
        return await inner.onChallenge?.(response, request) ?? false;
      } catch (e) {
        throw refused(e);
      }
    },
  };
}
