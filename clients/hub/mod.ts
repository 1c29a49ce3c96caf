/**
 * Singularity Hub (`shub://`, `hub://`), the default client. Registered so that client selection
 * and the secrets file work as in sregistry-cli; its capabilities come with the cloud clients issue,
 * until then each reports "unsupported" (exit 7).
 * @module
 */

import type { ClientFactory } from "../types.ts";

/** The hub client factory. */
export const hubFactory: ClientFactory = {
  scheme: "hub",
  aliases: ["shub"],
  description: "Singularity Hub archive (default client; pull not implemented yet)",
  settings: [],
  create: () => ({ name: "hub" }),
};
