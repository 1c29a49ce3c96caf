/**
 * docker://: any OCI distribution registry (Docker Hub by default). Pulls images into the blob cache
 * and turns them into a SIF when Singularity/Apptainer is installed (an OCI archive otherwise), and
 * searches registry catalogs and tag lists.
 * @module
 */

import type { Client, ClientFactory, Context } from "../types.ts";
import {
  dockerConfigCredentials,
  dockerConfigPath,
  type HelperRunner,
  readDockerConfig,
} from "../oci/auth.ts";
import {
  credentialsFromSettings,
  type OciClientConfig,
  type OciDeps,
  pullImage,
  recordImage,
  searchRegistry,
} from "../oci/client.ts";
import { DOCKER_HUB } from "../oci/reference.ts";

/** The docker client's OCI configuration from its settings. */
export function dockerConfig(
  ctx: Context,
  deps: { runHelper?: HelperRunner } = {},
): OciClientConfig {
  const get = (name: string) => ctx.clientSettings.get(name) ?? ctx.env.get(name);
  return {
    scheme: "docker",
    defaultRegistry: get("SREGISTRY_DOCKER_BASE") ?? ctx.env.get("SREGISTRY_DOCKERHUB_BASE") ??
      DOCKER_HUB,
    noHttps: get("SREGISTRY_DOCKER_NOHTTPS") ?? ctx.env.get("SREGISTRY_DOCKERHUB_NOHTTPS"),
    credentialHint: "SREGISTRY_DOCKER_USERNAME and SREGISTRY_DOCKER_PASSWORD (or docker login)",
    async credentials(host) {
      // Credentials are read, never saved to the secrets file (as in sregistry-cli).
      const fromSettings = credentialsFromSettings(get, [
        ["SREGISTRY_DOCKER_USERNAME", "SREGISTRY_DOCKER_PASSWORD"],
        ["SREGISTRY_DOCKERHUB_USERNAME", "SREGISTRY_DOCKERHUB_PASSWORD"],
        ["SINGULARITY_DOCKER_USERNAME", "SINGULARITY_DOCKER_PASSWORD"],
      ]);
      if (fromSettings) return fromSettings;
      const path = ctx.env.get("SREGISTRY_DOCKERHUB_SECRETS") ??
        dockerConfigPath(ctx.env, ctx.globals.home);
      return await dockerConfigCredentials(readDockerConfig(path), host, deps.runHelper);
    },
  };
}

/** Build a docker client (tests pass deps). */
export function createDockerClient(ctx: Context, deps: OciDeps = {}): Client {
  const config = dockerConfig(ctx);
  return {
    name: "docker",
    pull: (image, into) => pullImage(ctx, config, image, into, deps),
    record: (image, options) => recordImage(ctx, config, image, deps, options?.platform),
    search: (query) => searchRegistry(ctx, config, query, deps),
  };
}

/** The docker:// client. */
export const dockerFactory: ClientFactory = {
  scheme: "docker",
  description: "Docker Hub and any OCI registry: pull images (to SIF or OCI archive), search",
  settings: [
    { name: "SREGISTRY_DOCKER_BASE", description: "Default registry host", default: DOCKER_HUB },
    {
      name: "SREGISTRY_DOCKER_NOHTTPS",
      description:
        "true: plain http; false: https even on loopback (default: http only on loopback)",
    },
    { name: "SREGISTRY_DOCKER_USERNAME", description: "Registry user" },
    { name: "SREGISTRY_DOCKER_PASSWORD", description: "Registry password or token", secret: true },
    {
      name: "SREGISTRY_DOCKERHUB_SECRETS",
      description: "A docker config.json to read credentials from (default ~/.docker/config.json)",
    },
  ],
  create: (ctx) => createDockerClient(ctx),
};
