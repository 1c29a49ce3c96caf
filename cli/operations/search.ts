/**
 * `sregistry search`: each query goes to the client its scheme names; the hits become one table.
 * @module
 */

import { removeUri } from "../../core/names.ts";
import type { App } from "../app.ts";
import { capability } from "./capability.ts";
import { formatTable } from "../render/table.ts";

/** `sregistry search`. */
export async function searchCommand(
  app: App,
  queries: string[],
  opts: { endpoint?: string } = {},
): Promise<void> {
  const all: { client: string; uri: string; details?: Record<string, unknown> }[] = [];
  for (const q of queries.length ? queries : [""]) {
    const { client } = app.getClient(q || undefined);
    const search = capability(client, "search");
    const stripped = removeUri(q);
    const query = stripped === "" || stripped === "*" ? undefined : stripped;
    const hits = opts.endpoint === undefined
      ? await search(query)
      : await search(query, { endpoint: opts.endpoint });
    for (const h of hits) all.push({ client: client.name, uri: h.uri, details: h.details });
  }
  if (app.json) {
    app.out.json(all);
    return;
  }
  if (all.length === 0) {
    app.log.info("No images found.");
    return;
  }
  const keys = [...new Set(all.flatMap((h) => Object.keys(h.details ?? {})))];
  app.out.line(formatTable(
    all.map((h) => [h.uri, ...keys.map((k) => String(h.details?.[k] ?? ""))]),
    ["URI", ...keys.map((k) => k.toUpperCase())],
  ));
}
