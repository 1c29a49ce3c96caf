/**
 * URL rules shared by the transport and the store step: which schemes may be fetched, and URLs
 * without the credentials a user may have typed into them.
 * @module
 */

import { NetworkError } from "./errors.ts";

/** The only schemes ever fetched, whatever a server names (redirects, realms, Locations). */
export const FETCHABLE_SCHEMES: readonly string[] = ["http:", "https:"];

/**
 * Refuse a URL whose scheme is not http or https, naming the scheme and where the URL came from.
 * The message never holds more of the URL than its scheme, so a `file:` target is not echoed back.
 * @param url The URL about to be fetched.
 * @param from Where it came from, for the message ("a redirect from host", "the token realm of x").
 * @throws {NetworkError} (exit 5) for any other scheme.
 */
export function assertFetchable(url: URL, from?: string): void {
  if (FETCHABLE_SCHEMES.includes(url.protocol)) return;
  throw new NetworkError(
    `Refusing to fetch a ${JSON.stringify(url.protocol)} URL${
      from ? ` named by ${from}` : ""
    }: only http and https URLs are fetched`,
  );
}

/**
 * The URL without `user:password@`. Use it before a URL is stored (catalog rows, metadata) or shown
 * (messages, `--json`, `inspect`); the credentials are only for the request itself.
 */
export function stripUserinfo(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Not a URL: drop anything that looks like userinfo after a scheme.
    return String(url).replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, "$1");
  }
  if (!u.username && !u.password) return u.href;
  u.username = "";
  u.password = "";
  return u.href;
}

/** The user and password written into a URL (percent-decoded), or undefined when none. */
export function userinfoOf(url: URL): { username: string; password: string } | undefined {
  if (!url.username && !url.password) return undefined;
  const dec = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return { username: dec(url.username), password: dec(url.password) };
}
