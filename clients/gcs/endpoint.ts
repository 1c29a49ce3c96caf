/**
 * Where the JSON API lives: `https://storage.googleapis.com`, or the host STORAGE_EMULATOR_HOST
 * names, as Google's own client libraries allow (with or without a scheme). Every call goes there:
 * metadata, listings, uploads and downloads. Plain http only for a loopback host.
 * @module
 */

import { ConfigError } from "../../core/errors.ts";
import { isLoopback } from "../../core/http.ts";

/** Google's endpoint. */
export const GOOGLE_STORAGE_ORIGIN = "https://storage.googleapis.com";

/** The variable Google's libraries read to talk to an emulator. */
export const EMULATOR_VARIABLE = "STORAGE_EMULATOR_HOST";

/** The URL roots of one endpoint. */
export interface StorageEndpoint {
  /** `https://host[:port]`: the origin the access token is for. */
  origin: string;
  /** `<origin>/storage/v1`: buckets and objects. */
  api: string;
  /** `<origin>/upload/storage/v1`: uploads. */
  upload: string;
  /** `<origin>/download/storage/v1`: media downloads. */
  download: string;
  /** Whether an emulator was named. */
  emulator: boolean;
}

/**
 * The endpoint for a STORAGE_EMULATOR_HOST value (undefined or empty: Google's). A value without a
 * scheme is http for a loopback host and https otherwise.
 * @throws {ConfigError} for a value that is not a host or URL, or plain http to a remote host.
 */
export function storageEndpoint(emulator: string | undefined): StorageEndpoint {
  const roots = (origin: string, emulator: boolean): StorageEndpoint => ({
    origin,
    api: `${origin}/storage/v1`,
    upload: `${origin}/upload/storage/v1`,
    download: `${origin}/download/storage/v1`,
    emulator,
  });
  const value = emulator?.trim();
  if (!value) return roots(GOOGLE_STORAGE_ORIGIN, false);
  let url: URL;
  try {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value)
      ? value
      : `${isLoopback(value.split("/")[0]) ? "http" : "https"}://${value}`;
    url = new URL(withScheme);
  } catch {
    throw new ConfigError(
      `${EMULATOR_VARIABLE} ${
        JSON.stringify(value)
      } is not a host or URL: use host:port or http://127.0.0.1:port`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new ConfigError(
      `${EMULATOR_VARIABLE} ${JSON.stringify(value)} is not http(s): use host:port or https://host`,
    );
  }
  if (url.protocol === "http:" && !isLoopback(url.host)) {
    throw new ConfigError(
      `${EMULATOR_VARIABLE} ${
        JSON.stringify(value)
      } is plain http to a remote host; use https:// (plain http only for a loopback host)`,
    );
  }
  if (url.username || url.password || (url.pathname !== "/" && url.pathname !== "") || url.search) {
    throw new ConfigError(
      `${EMULATOR_VARIABLE} ${JSON.stringify(value)} must be a bare host or origin, without a path`,
    );
  }
  return roots(url.origin, true);
}
