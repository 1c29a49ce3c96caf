/**
 * nvidia://: NVIDIA GPU Cloud (nvcr.io). The docker pull with user `$oauthtoken` and the NGC API key
 * as password; NGC's challenge has no `service`, which the tolerant challenge parser accepts.
 * @module
 */

import type { Client, ClientFactory, Context } from "../types.ts";
import { ConfigError } from "../../core/errors.ts";
import {
  type OciClientConfig,
  type OciDeps,
  pullImage,
  recordImage,
  searchRegistry,
} from "../oci/client.ts";

/** NGC's registry. */
export const NGC_REGISTRY = "nvcr.io";

/** The nvidia client's OCI configuration. */
export function nvidiaConfig(ctx: Context): OciClientConfig {
  const cs = ctx.clientSettings;
  return {
    scheme: "nvidia",
    defaultRegistry: cs.get("SREGISTRY_NVIDIA_BASE") ?? NGC_REGISTRY,
    defaultNamespace: "nvidia",
    noHttps: cs.get("SREGISTRY_NVIDIA_NOHTTPS"),
    credentialHint: "SREGISTRY_NVIDIA_TOKEN (an NGC API key)",
    credentials() {
      const password = cs.get("SREGISTRY_NVIDIA_TOKEN");
      if (!password) {
        return Promise.reject(
          new ConfigError(
            'The nvidia client needs SREGISTRY_NVIDIA_TOKEN (an NGC API key from ngc.nvidia.com): export it, or run "sregistry backend add nvidia SREGISTRY_NVIDIA_TOKEN <key>"',
          ),
        );
      }
      return Promise.resolve({
        username: cs.get("SREGISTRY_NVIDIA_USERNAME") ?? "$oauthtoken",
        password,
      });
    },
  };
}

/** Build an nvidia client. */
export function createNvidiaClient(ctx: Context, deps: OciDeps = {}): Client {
  const config = nvidiaConfig(ctx);
  return {
    name: "nvidia",
    pull: (image, into) => pullImage(ctx, config, image, into, deps),
    record: (image, options) => recordImage(ctx, config, image, deps, options?.platform),
    search: (query) => searchRegistry(ctx, config, query, deps),
  };
}

/** The nvidia:// client. */
export const nvidiaFactory: ClientFactory = {
  scheme: "nvidia",
  description: "NVIDIA GPU Cloud (nvcr.io): pull images (to SIF or OCI archive)",
  settings: [
    { name: "SREGISTRY_NVIDIA_TOKEN", description: "NGC API key", secret: true, required: true },
    { name: "SREGISTRY_NVIDIA_USERNAME", description: "Registry user", default: "$oauthtoken" },
    { name: "SREGISTRY_NVIDIA_BASE", description: "Registry host", default: NGC_REGISTRY },
    { name: "SREGISTRY_NVIDIA_NOHTTPS", description: "true: plain http" },
  ],
  create: (ctx) => createNvidiaClient(ctx),
};
