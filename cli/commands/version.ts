/**
 * `sregistry version`: the version, or `{version, deno}` with `--json`. Loads nothing but the app.
 * @module
 */

import type { App } from "../app.ts";
import { VERSION } from "../../core/version.ts";

/** Print the version. */
export function versionCommand(app: App): Promise<void> {
  if (app.json) app.out.json({ version: VERSION, deno: Deno.version.deno });
  else app.out.line(VERSION);
  return Promise.resolve();
}
