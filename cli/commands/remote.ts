/**
 * Commands that talk to a remote through a client: pull, push, search, delete, share, build.
 * The client comes from the image's URI scheme, else SREGISTRY_CLIENT, else the secrets file's active
 * backend, else hub; a capability the client lacks is exit 7. The logic lives in cli/operations/;
 * this module is what the command table loads.
 * @module
 */

export { capability } from "../operations/capability.ts";
export { buildCommand } from "../operations/build.ts";
export { deleteCommand } from "../operations/delete.ts";
export { pullCommand } from "../operations/pull.ts";
export { pushCommand } from "../operations/push.ts";
export { searchCommand } from "../operations/search.ts";
export { shareCommand } from "../operations/share.ts";
