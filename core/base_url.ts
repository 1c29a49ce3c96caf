/**
 * Base URL settings of hosted services (`SREGISTRY_<CLIENT>_BASE`): https, or plain http only for
 * a loopback host (a test fake, a local gateway), so a typo never sends a token in clear text.
 * @module
 */

import { ConfigError } from "./errors.ts";
import { isLoopback } from "./http.ts";

/**
 * Check a base URL setting and return it without trailing slashes (a path prefix is kept, so a
 * service behind a gateway at `https://host/gitlab` works).
 * @param name The setting's name, for the message.
 * @param value The value given.
 * @param example What a good value looks like (default `https://host`).
 * @throws {ConfigError} (exit 2) when it is not a URL, or plain http to a host that is not loopback.
 */
export function serviceBase(name: string, value: string, example = "https://host"): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ConfigError(`${name} ${JSON.stringify(value)} is not a URL: use ${example}`);
  }
  // The value is not quoted here: it may hold a password.
  if (url.username || url.password) {
    throw new ConfigError(`${name} must not hold a user or password: use ${example}`);
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopback(url.host))) {
    throw new ConfigError(
      `${name} ${
        JSON.stringify(value)
      } must be https (plain http only for a loopback host): use ${example}`,
    );
  }
  if (url.search || url.hash) {
    throw new ConfigError(
      `${name} ${
        JSON.stringify(value)
      } must be a plain base URL (no query or fragment): use ${example}`,
    );
  }
  return url.href.replace(/\/+$/, "");
}
