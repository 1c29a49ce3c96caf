/**
 * The capability check: a capability exists when the client's method does; calling a missing one is
 * an UnsupportedError (exit 7) naming the client and what it cannot do.
 * @module
 */

import type { Capability, Client } from "../../clients/types.ts";
import { UnsupportedError } from "../../core/errors.ts";

/** The client's method for a capability, or an UnsupportedError naming client and capability. */
export function capability<K extends Exclude<Capability, "labels">>(
  client: Client,
  name: K,
): NonNullable<Client[K]> {
  const fn = client[name];
  if (typeof fn !== "function") {
    const verb = name === "search" ? "search for images" : `${name} images`;
    throw new UnsupportedError(
      `The ${client.name} client cannot ${verb}; see "sregistry backend ls" for what each client can do`,
    );
  }
  return fn.bind(client) as NonNullable<Client[K]>;
}
