/**
 * Where the s3 client's AWS credentials and region come from, in the AWS tools' order: the
 * environment (or the client's section of the secrets file), then the shared files
 * `~/.aws/credentials` and `~/.aws/config` for `AWS_PROFILE` (default `default`), else none, which
 * means anonymous unsigned requests as sregistry-cli made them.
 * @module
 */

import { join } from "node:path";
import type { AwsCredentials } from "../../core/auth/sigv4.ts";
import type { ClientSettings } from "../../core/client_settings.ts";
import type { Env } from "../../core/settings.ts";

/** Where the credentials were found, for messages. */
export interface FoundCredentials {
  /** The keys, or undefined for anonymous access. */
  credentials?: AwsCredentials;
  /** `environment`, `profile "x" in <file>`, or `none`. */
  source: string;
  /** The region the profile names, if any. */
  profileRegion?: string;
  /** Variables set without their partner (AWS_ACCESS_KEY_ID without the secret...). */
  incomplete?: string;
}

/** Parse an INI file as the AWS tools write it: `[section]` and `key = value` lines. */
export function parseIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const m = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (m) {
      section = out[m[1]] ??= {};
      continue;
    }
    const eq = line.indexOf("=");
    if (section && eq > 0) {
      section[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
    }
  }
  return out;
}

function readIni(path: string): Record<string, Record<string, string>> | undefined {
  try {
    return parseIni(Deno.readTextFileSync(path));
  } catch {
    return undefined;
  }
}

/** Find credentials: settings/environment, then the shared files' profile, else anonymous. */
export function findCredentials(cs: ClientSettings, env: Env): FoundCredentials {
  const id = cs.get("AWS_ACCESS_KEY_ID");
  const secret = cs.get("AWS_SECRET_ACCESS_KEY");
  const token = cs.get("AWS_SESSION_TOKEN") || undefined;
  const profile = env.get("AWS_PROFILE") || env.get("AWS_DEFAULT_PROFILE") || "default";
  const home = env.get("HOME") ?? "";
  const credFile = env.get("AWS_SHARED_CREDENTIALS_FILE") || join(home, ".aws", "credentials");
  const confFile = env.get("AWS_CONFIG_FILE") || join(home, ".aws", "config");
  const conf = readIni(confFile);
  // In ~/.aws/config a profile is `[profile name]`, except `[default]`.
  const confSection = conf?.[profile === "default" ? "default" : `profile ${profile}`] ??
    conf?.[profile];
  const profileRegion = confSection?.region;
  if (id && secret) {
    return {
      credentials: { accessKeyId: id, secretAccessKey: secret, sessionToken: token },
      source: "environment",
      profileRegion,
    };
  }
  const incomplete = id ? "AWS_SECRET_ACCESS_KEY" : secret ? "AWS_ACCESS_KEY_ID" : undefined;
  for (
    const [file, section] of [[credFile, readIni(credFile)?.[profile]], [
      confFile,
      confSection,
    ]] as const
  ) {
    const key = section?.aws_access_key_id;
    const sec = section?.aws_secret_access_key;
    if (key && sec) {
      return {
        credentials: {
          accessKeyId: key,
          secretAccessKey: sec,
          sessionToken: section.aws_session_token || undefined,
        },
        source: `profile "${profile}" in ${file}`,
        profileRegion,
        incomplete,
      };
    }
  }
  return { source: "none", profileRegion, incomplete };
}
