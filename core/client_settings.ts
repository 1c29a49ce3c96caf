/**
 * One client's settings: `SREGISTRY_<CLIENT>_<VAR>` from the environment first, then the client's
 * section of the secrets file, as in sregistry-cli. A client reaches only its own section. Values of
 * settings marked secret are handed to `onSecret` (the logger's redaction) whenever they are read or
 * written, so no client has to register them by hand.
 * @module
 */

import { ConfigError } from "./errors.ts";
import { type Secrets, section, updateClientSecrets } from "./secrets.ts";
import type { Env } from "./settings.ts";

/** One client's view of its settings: environment first, then its section of the secrets file. */
export interface ClientSettings {
  /** The client's name. */
  readonly client: string;
  /** `SREGISTRY_<CLIENT>_` for this client. */
  readonly prefix: string;
  /** Environment `name`, then the file's `client.name`, then `fallback` (the original's `_get_setting`). */
  get(name: string, fallback?: string): string | undefined;
  /**
   * Like {@link get}, and a value that came from the environment (or the fallback) is saved to the
   * file (the original's `_get_and_update_setting`).
   */
  getAndUpdate(name: string, fallback?: string): string | undefined;
  /**
   * Like {@link getAndUpdate}, for settings the client cannot work without: one ConfigError names
   * every unset variable and the `sregistry backend add` fix.
   */
  require(name: string): string;
  /** {@link require} for several settings at once: their values by name. */
  require(names: readonly string[]): Record<string, string>;
  /** Save a value in the client's section; undefined does nothing (the original's `_update_setting`). */
  update(name: string, value: string | undefined): void;
  /**
   * Throw a ConfigError unless the secrets file has this client's section and, if given, these keys
   * with values in it (the original's `require_secrets`); returns the section.
   */
  requireSecrets(params?: string | readonly string[]): Record<string, unknown>;
  /** The client's section of the secrets file. */
  all(): Record<string, unknown>;
}

/** Options of {@link clientSettings}. */
export interface ClientSettingsOptions {
  /** Names of the settings that are credentials (a factory's `secret: true` settings). */
  secretNames?: Iterable<string>;
  /** Called with every value of a secret setting that is read or saved (register it for redaction). */
  onSecret?: (value: string) => void;
}

/** The `SREGISTRY_<CLIENT>_` prefix of a client (upper case, `-` as `_`). */
export function settingPrefix(client: string): string {
  return `SREGISTRY_${client.toUpperCase().replaceAll("-", "_")}_`;
}

/** Settings scoped to `client`. */
export function clientSettings(
  secrets: Secrets,
  client: string,
  env: Env,
  options: ClientSettingsOptions = {},
): ClientSettings {
  const prefix = settingPrefix(client);
  const secretNames = new Set(options.secretNames ?? []);
  const seen = (name: string, value: string | undefined) => {
    if (value !== undefined && secretNames.has(name)) options.onSecret?.(value);
    return value;
  };
  const fromFile = (name: string) => {
    const v = section(secrets.read(), client)[name];
    return v === undefined || v === null ? undefined : String(v);
  };
  const missing = (names: string[]) =>
    new ConfigError(
      `The ${client} client needs ${names.join(" and ")}: export ${
        names.length > 1 ? "them" : "it"
      }, or run ${
        names.map((n) => `"sregistry backend add ${client} ${n} <value>"`).join(" and ")
      }`,
    );
  const requireOne = (name: string): string | undefined => {
    const value = cs.getAndUpdate(name);
    return value === undefined || value === "" ? undefined : value;
  };
  const cs: ClientSettings = {
    client,
    prefix,
    get: (name, fallback) => seen(name, env.get(name) ?? fromFile(name) ?? fallback),
    getAndUpdate(name, fallback) {
      const value = cs.get(name, fallback);
      if (value !== undefined && fromFile(name) !== value) cs.update(name, value);
      return value;
    },
    require: ((names: string | readonly string[]) => {
      if (typeof names === "string") {
        const value = requireOne(names);
        if (value === undefined) throw missing([names]);
        return value;
      }
      const values: Record<string, string> = {};
      const unset: string[] = [];
      for (const n of names) {
        const v = requireOne(n);
        if (v === undefined) unset.push(n);
        else values[n] = v;
      }
      if (unset.length) throw missing(unset);
      return values;
    }) as ClientSettings["require"],
    update(name, value) {
      if (value === undefined) return;
      seen(name, value);
      updateClientSecrets(secrets, client, { [name]: value });
    },
    requireSecrets(params) {
      const data = secrets.read();
      if (!secrets.exists() || !(client in data)) {
        throw new ConfigError(
          `The ${client} client requires client secrets in ${secrets.path}; add them with "sregistry backend add ${client} <var> <value>"`,
        );
      }
      const sec = section(data, client);
      for (const p of typeof params === "string" ? [params] : params ?? []) {
        if (!(p in sec)) {
          throw new ConfigError(
            `Missing ${p} in client secrets for ${client} in ${secrets.path}; add it with "sregistry backend add ${client} ${p} <value>"`,
          );
        }
        if (sec[p] === null || sec[p] === undefined || sec[p] === "") {
          throw new ConfigError(
            `Undefined param ${p} in client secrets for ${client}; set it with "sregistry backend add ${client} ${p} <value>"`,
          );
        }
        seen(p, String(sec[p]));
      }
      return sec;
    },
    all: () => section(secrets.read(), client),
  };
  return cs;
}

/** The original's `_get_setting`. */
export function getSetting(
  cs: ClientSettings,
  name: string,
  fallback?: string,
): string | undefined {
  return cs.get(name, fallback);
}

/** The original's `_get_and_update_setting`. */
export function getAndUpdateSetting(
  cs: ClientSettings,
  name: string,
  fallback?: string,
): string | undefined {
  return cs.getAndUpdate(name, fallback);
}

/** The original's `_update_setting`. */
export function updateSetting(cs: ClientSettings, name: string, value: string | undefined): void {
  cs.update(name, value);
}

/** The original's `require_secrets`. */
export function requireSecrets(
  cs: ClientSettings,
  params?: string | readonly string[],
): Record<string, unknown> {
  return cs.requireSecrets(params);
}
