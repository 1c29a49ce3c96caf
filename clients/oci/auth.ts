/**
 * Registry credentials from docker's `config.json` (`auths`, `credsStore`, `credHelpers`). The
 * token flow that uses them is core/auth's bearer-challenge authorizer.
 * @module
 */

import { join } from "node:path";
import type { Credentials } from "../../core/auth/types.ts";
import { AuthError, ConfigError } from "../../core/errors.ts";
import type { Env } from "../../core/settings.ts";
import { run } from "../../core/exec.ts";

export type { Credentials } from "../../core/auth/types.ts";

/** Runs a credential helper: `docker-credential-<name> get` with the server on stdin. */
export type HelperRunner = (name: string, server: string) => Promise<string>;

/** The default helper runner (core/exec.ts). */
export const runHelper: HelperRunner = async (name, server) => {
  let res;
  try {
    res = await run(`docker-credential-${name}`, ["get"], { stdin: server });
  } catch (e) {
    throw new ConfigError(
      `Docker credential helper "docker-credential-${name}" cannot be run (${
        (e as Error).message
      }); install it or remove it from ~/.docker/config.json`,
    );
  }
  if (!res.success) {
    const why = (res.stdout.trim() || res.stderr.trim()).split("\n")[0];
    if (/credentials not found/i.test(why)) return "";
    throw new AuthError(
      `Docker credential helper "docker-credential-${name}" failed for ${server}: ${why}`,
    );
  }
  return res.stdout;
};

/** The parts of docker's config.json sregistry reads. */
export interface DockerConfig {
  /** host -> `{auth: base64(user:pass)}` or `{username, password}` or `{identitytoken}`. */
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string }
  >;
  /** The default helper for every host. */
  credsStore?: string;
  /** host -> helper name. */
  credHelpers?: Record<string, string>;
}

/** Where docker's config lives: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function dockerConfigPath(env: Env, home: string): string {
  const dir = env.get("DOCKER_CONFIG");
  return dir ? join(dir, "config.json") : join(home, ".docker", "config.json");
}

/** Read docker's config.json; undefined when missing. */
export function readDockerConfig(path: string): DockerConfig | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as DockerConfig;
  } catch (e) {
    throw new ConfigError(
      `Docker config ${path} is not valid JSON (${(e as Error).message}); fix or remove it`,
    );
  }
}

function hostKeys(host: string): string[] {
  // Docker Hub's credentials are stored under its historical v1 URL.
  if (host === "index.docker.io" || host === "docker.io" || host === "registry-1.docker.io") {
    return ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"];
  }
  return [host, `https://${host}`, `http://${host}`, `https://${host}/v1/`, `https://${host}/v2/`];
}

/**
 * Credentials for a registry host from docker's config: `credHelpers[host]`, then `auths`, then
 * `credsStore` (docker's own order).
 */
export async function dockerConfigCredentials(
  config: DockerConfig | undefined,
  host: string,
  runner: HelperRunner = runHelper,
): Promise<Credentials | undefined> {
  if (!config) return undefined;
  const keys = hostKeys(host);
  const fromHelper = async (name: string): Promise<Credentials | undefined> => {
    const out = await runner(name, keys[0]);
    if (!out.trim()) return undefined;
    let data: { Username?: string; Secret?: string };
    try {
      data = JSON.parse(out);
    } catch {
      throw new AuthError(
        `Docker credential helper "docker-credential-${name}" printed something that is not JSON for ${host}`,
      );
    }
    if (!data.Secret) return undefined;
    return { username: data.Username ?? "", password: data.Secret };
  };
  for (const k of keys) {
    const helper = config.credHelpers?.[k];
    if (helper) return await fromHelper(helper);
  }
  for (const k of keys) {
    const a = config.auths?.[k];
    if (!a) continue;
    if (a.identitytoken) return { username: "<token>", password: a.identitytoken };
    if (a.username && a.password) return { username: a.username, password: a.password };
    if (a.auth) {
      const decoded = new TextDecoder().decode(
        Uint8Array.from(atob(a.auth), (c) => c.charCodeAt(0)),
      );
      const colon = decoded.indexOf(":");
      if (colon < 0) {
        throw new ConfigError(
          `The "auth" entry for ${k} in docker's config.json is not base64 of user:password`,
        );
      }
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  if (config.credsStore) return await fromHelper(config.credsStore);
  return undefined;
}
