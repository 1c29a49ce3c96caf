/**
 * The version, read from deno.json so that it is written in one place.
 * @module
 */

import meta from "../deno.json" with { type: "json" };

/** sregistry's version. */
export const VERSION: string = meta.version;

/** The User-Agent sent with every request. */
export const USER_AGENT: string = `sregistry/${VERSION} (deno ${Deno.version.deno})`;
