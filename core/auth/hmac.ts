/**
 * Singularity Registry Server's signed `Authorization` header (`SREGISTRY-HMAC-SHA256`), as an
 * authorizer. The server (singularityhub/sregistry `shub/apps/api/utils.py`) validates:
 *
 * ```
 * timestamp  = UTC hour, "%Y%m%dT%HZ"                     e.g. 20240115T13Z
 * credential = <kind>/<base64(username)>/<timestamp>
 * payload    = <kind>|<collection>|<timestamp>|<name>|<tag>|   (trailing pipe)
 * signature  = hex(HMAC-SHA256(key = token, msg = payload))
 * Authorization: SREGISTRY-HMAC-SHA256 Credential=<credential>,Signature=<signature>
 * ```
 *
 * The server splits on one space and on commas, so there is no space after the comma. Its
 * timestamp must equal the server's own current hour: {@link registryHmacAuth} signs in
 * `authorize`, which core/http calls before every attempt, so a retry after the hour turned is
 * signed for the new hour; {@link RegistryHmacAuthorizer.signedHour} lets a caller see which hour
 * the last attempt carried, to re-send once when a refusal came right after the hour changed.
 * @module
 */

import { createHmac } from "node:crypto";
import type { Logger } from "../log.ts";
import type { Authorizer } from "./types.ts";

/** The header's scheme word. */
export const HMAC_SCHEME = "SREGISTRY-HMAC-SHA256";

/** What a signature allows; the server checks that it matches the endpoint. */
export type RegistrySignatureKind = "push" | "upload" | "pull" | "delete" | "build";

/** The image a signature is for. */
export interface SignedImage {
  /** The collection's name (not its numeric id). */
  collection: string;
  /** The container's name. */
  name: string;
  /** The tag. */
  tag: string;
}

/** A user's API credentials on the server (its "token" page, or the downloadable credentials). */
export interface RegistryCredentials {
  /** The user name. */
  username: string;
  /** The API token (the HMAC key). */
  token: string;
}

/** `YYYYMMDDTHHZ` of a time, in UTC: the hour a signature is valid for. */
export function hmacTimestamp(date: Date | number): string {
  const d = new Date(date);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}T${
    p(d.getUTCHours())
  }Z`;
}

/** Base64 of the UTF-8 user name, as the credential carries it. */
function base64User(username: string): string {
  const bytes = new TextEncoder().encode(username);
  return btoa(String.fromCharCode(...bytes));
}

/** The string that is signed: `<kind>|<collection>|<timestamp>|<name>|<tag>|`. */
export function hmacPayload(
  kind: RegistrySignatureKind,
  image: SignedImage,
  timestamp: string,
): string {
  return `${kind}|${image.collection}|${timestamp}|${image.name}|${image.tag}|`;
}

/**
 * The whole header value for one request.
 *
 * @example
 * ```ts
 * registryAuthHeader("push", { collection: "c", name: "i", tag: "t" },
 *   { username: "u", token: "k" }, new Date("2024-01-15T13:05:00Z"));
 * // "SREGISTRY-HMAC-SHA256 Credential=push/dQ==/20240115T13Z,Signature=<64 hex>"
 * ```
 */
export function registryAuthHeader(
  kind: RegistrySignatureKind,
  image: SignedImage,
  credentials: RegistryCredentials,
  date: Date | number,
): string {
  const timestamp = hmacTimestamp(date);
  const signature = createHmac("sha256", credentials.token)
    .update(hmacPayload(kind, image, timestamp))
    .digest("hex");
  const credential = `${kind}/${base64User(credentials.username)}/${timestamp}`;
  return `${HMAC_SCHEME} Credential=${credential},Signature=${signature}`;
}

/** Options of {@link registryHmacAuth}. */
export interface RegistryHmacOptions {
  /** What the signature allows. */
  kind: RegistrySignatureKind;
  /** The image it is for. */
  image: SignedImage;
  /** The user and token. */
  credentials: RegistryCredentials;
  /** The registry's origin: the header goes there only. */
  origin?: string;
  /** The clock in ms (default Date.now; tests move it across an hour). */
  now?: () => number;
  /** Registers the token and each header for redaction. */
  log?: Logger;
}

/** The authorizer, with the hour and header of the last attempt it signed. */
export interface RegistryHmacAuthorizer extends Authorizer {
  /** `YYYYMMDDTHHZ` of the last signed attempt (undefined before the first). */
  readonly signedHour: string | undefined;
  /** The header for a request sent now (for a form's `SREGISTRY_EVENT` field). */
  header(): string;
}

/**
 * An authorizer that signs every attempt with the current hour. It never answers a challenge: the
 * server does not send one (a refused signature is a 403 or a 500, see docs/clients/registry.md).
 */
export function registryHmacAuth(options: RegistryHmacOptions): RegistryHmacAuthorizer {
  const now = options.now ?? Date.now;
  options.log?.addSecret(options.credentials.token);
  let signedHour: string | undefined;
  const header = () => {
    const t = now();
    signedHour = hmacTimestamp(t);
    const h = registryAuthHeader(options.kind, options.image, options.credentials, t);
    // The signature is only good for this hour and this image, but it is still a credential.
    options.log?.addSecret(h.slice(h.indexOf("Signature=") + 10));
    return h;
  };
  return {
    origin: options.origin,
    get signedHour() {
      return signedHour;
    },
    header,
    authorize(request) {
      request.headers.set("authorization", header());
    },
  };
}
