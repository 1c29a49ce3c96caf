/**
 * The client registry: URI scheme -> factory. Every backend is imported statically here so that
 * `deno compile` sees it; adding a backend means one import and one entry in {@link FACTORIES}.
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { getUri } from "../core/names.ts";
import type { Secrets } from "../core/secrets.ts";
import type { ClientFactory } from "./types.ts";
import { hubFactory } from "./hub/mod.ts";
import { awsFactory } from "./aws/mod.ts";
import { dockerFactory } from "./docker/mod.ts";
import { nvidiaFactory } from "./nvidia/mod.ts";
import { orasFactory } from "./oras/mod.ts";
import { httpFactory } from "./http/mod.ts";
import { googleStorageFactory } from "./google-storage/mod.ts";
import { googleDriveFactory } from "./google-drive/mod.ts";
import { registryFactory } from "./registry/mod.ts";
import { swiftFactory } from "./swift/mod.ts";
import { s3Factory } from "./s3/mod.ts";
import { libraryFactory } from "./library/mod.ts";
import { dropboxFactory } from "./dropbox/mod.ts";
import { googleBuildFactory } from "./google-build/mod.ts";
import { globusFactory } from "./globus/mod.ts";
import { gitlabFactory } from "./gitlab/mod.ts";

/** Every registered backend. */
export const FACTORIES: readonly ClientFactory[] = [
  hubFactory,
  dockerFactory,
  nvidiaFactory,
  awsFactory,
  orasFactory,
  httpFactory,
  googleStorageFactory,
  googleDriveFactory,
  registryFactory,
  swiftFactory,
  s3Factory,
  libraryFactory,
  dropboxFactory,
  googleBuildFactory,
  globusFactory,
  gitlabFactory,
];

/** The name used when nothing else chooses a client. */
export const DEFAULT_CLIENT = "hub";

/** Every scheme and alias that selects a client, sorted. */
export function knownSchemes(factories: readonly ClientFactory[] = FACTORIES): string[] {
  return factories.flatMap((f) => [f.scheme, ...(f.aliases ?? [])]).sort();
}

/**
 * The factory for a scheme or alias.
 * @throws {UsageError} for an unknown scheme, listing the known ones.
 */
export function findFactory(
  name: string,
  factories: readonly ClientFactory[] = FACTORIES,
): ClientFactory {
  const n = name.toLowerCase();
  const found = factories.find((f) => f.scheme === n || f.aliases?.includes(n));
  if (!found) {
    throw new UsageError(
      `Unknown client ${JSON.stringify(name)}: use one of ${knownSchemes(factories).join(", ")}`,
    );
  }
  return found;
}

/**
 * Which client handles an image: its URI scheme, else SREGISTRY_CLIENT, else the secrets file's
 * active backend, else hub.
 * @throws {UsageError} when the image names a scheme no client handles.
 */
export function resolveClientName(
  image: string | undefined,
  options: {
    env?: string;
    secrets?: Secrets;
    log?: Logger;
    factories?: readonly ClientFactory[];
  } = {},
): string {
  const factories = options.factories ?? FACTORIES;
  const scheme = getUri(image, false);
  if (scheme !== undefined) {
    const f = findFactory(scheme === "shub" ? "hub" : scheme, factories);
    return f.scheme;
  }
  if (options.env) return findFactory(options.env, factories).scheme;
  const active = options.secrets?.exists() ? options.secrets.read().SREGISTRY_CLIENT : undefined;
  if (typeof active === "string" && active !== "") {
    return findFactory(active, factories).scheme;
  }
  return DEFAULT_CLIENT;
}
