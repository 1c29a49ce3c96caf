/**
 * One OAuth2 token request (RFC 6749 §3.2): a form POST to a token endpoint, its JSON answer read
 * with the size cap of small answers. Shared by the refresh-token and JWT-bearer authorizers, which
 * differ only in the grant they send and in how they word a refusal.
 * @module
 */

import { type Http, MAX_JSON_BYTES, readBody } from "../http.ts";

/** A token endpoint's JSON answer, success or error (fields unchecked: servers vary). */
export interface TokenAnswer {
  /** The access token. */
  access_token?: unknown;
  /** Lifetime in seconds. */
  expires_in?: unknown;
  /** A new refresh token, when the server rotates them. */
  refresh_token?: unknown;
  /** The OAuth2 error code (`invalid_grant`...). */
  error?: unknown;
  /** Its description. */
  error_description?: unknown;
}

/**
 * POST `form` to `endpoint` and return the response and its parsed answer (`{}` when the body is
 * not JSON). 4xx answers come back to the caller, which words the refusal; 408, 429 and 5xx are
 * retried by core/http.
 */
export async function requestToken(
  http: Http,
  endpoint: URL,
  form: URLSearchParams,
  signal?: AbortSignal,
): Promise<{ res: Response; data: TokenAnswer }> {
  const res = await http.request(endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: form.toString(),
    accept: (s) => s < 500 && s !== 429 && s !== 408,
    signal,
  });
  const text = new TextDecoder().decode(
    await readBody(http, res, {
      limit: MAX_JSON_BYTES,
      what: `The token answer of ${endpoint.host}`,
      signal,
    }),
  );
  let data: TokenAnswer = {};
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object") data = parsed;
  } catch {
    // the caller reports a missing access_token
  }
  return { res, data };
}

/** `error: description` of a refusal, else `HTTP <status>`. */
export function tokenRefusal(res: Response, data: TokenAnswer): string {
  if (typeof data.error !== "string") return `HTTP ${res.status}`;
  return typeof data.error_description === "string"
    ? `${data.error}: ${data.error_description}`
    : data.error;
}
