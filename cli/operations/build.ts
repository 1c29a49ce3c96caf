/**
 * `sregistry build`: a remote build through the client named by `--name`. A result naming what was
 * built (`built`) is recorded in the catalog as a row without a file.
 * @module
 */

import type { BuiltImage } from "../../clients/types.ts";
import { removeUri } from "../../core/names.ts";
import type { App } from "../app.ts";
import { capability } from "./capability.ts";
import { remoteMetadata } from "./record.ts";

/** `sregistry build`. */
export async function buildCommand(
  app: App,
  args: string[],
  opts: { name: string; preview?: boolean; watch?: string },
) {
  const { client } = app.getClient(opts.name);
  const build = capability(client, "build");
  const { built, ...result } = await build(args[0] ?? "Singularity", {
    name: removeUri(opts.name),
    extra: args.slice(1),
    ...(opts.preview ? { preview: true } : {}),
    ...(opts.watch !== undefined ? { watch: opts.watch } : {}),
  });
  const b = built as BuiltImage | undefined;
  const catalog = b ? app.maybeCatalog() : undefined;
  if (b && catalog) {
    const r = await catalog.record({
      uri: b.uri,
      url: b.url,
      metadata: remoteMetadata(b),
      client: client.name,
    });
    result.recorded = r.container.uri;
  }
  // A preview is a build configuration, which is JSON; other results read as `field: value` lines.
  if (app.json || opts.preview) app.out.json(result);
  else {
    for (const [k, v] of Object.entries(result)) {
      if (v !== undefined) app.out.line(`${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
    }
  }
}
