/**
 * Commands that talk to a remote through a client: pull, push, search, delete, share, build.
 * The client comes from the image's URI scheme, else SREGISTRY_CLIENT, else the secrets file's active
 * backend, else hub; a capability the client lacks is exit 7.
 * @module
 */

import type { Client } from "../../clients/types.ts";
import type { App } from "../app.ts";
import { NotFoundError, UnsupportedError, UsageError } from "../../core/errors.ts";
import { removeUri } from "../../core/names.ts";
import { formatTable } from "../render/table.ts";

type Capability = "pull" | "push" | "search" | "delete" | "share" | "build" | "record";

/** The client's method for a capability, or an UnsupportedError naming client and capability. */
export function capability<K extends Capability>(
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

/** Ask yes/no on the terminal; without a terminal the answer is no. */
async function confirm(app: App, question: string): Promise<boolean> {
  if (!Deno.stdin.isTerminal()) return false;
  app.log.sink.write(`${question} [y/N] `);
  const buf = new Uint8Array(256);
  const n = await Deno.stdin.read(buf);
  const answer = new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim().toLowerCase();
  return answer === "y" || answer === "yes";
}

/** `sregistry pull`. */
export async function pullCommand(
  app: App,
  image: string,
  opts: { name?: string; file?: string; force?: boolean; cache?: boolean; platform?: string },
): Promise<void> {
  const { client } = app.getClient(image);
  const pull = capability(client, "pull");
  const result = await pull(image, {
    name: opts.name,
    file: opts.file,
    force: opts.force,
    noCache: opts.cache === false,
    platform: opts.platform,
  });
  if (app.json) {
    app.out.json({
      path: result.path,
      uri: result.container?.uri,
      url: result.url,
      digest: result.digest,
      size: result.size,
      client: client.name,
      ...result.details,
    });
  } else app.out.line(result.path);
}

/** `sregistry push`. */
export async function pushCommand(
  app: App,
  image: string,
  opts: { name: string; tag?: string },
): Promise<void> {
  try {
    if (!Deno.statSync(image).isFile) throw new UsageError(`${image} is not a file`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`Image file ${JSON.stringify(image)} does not exist`);
    }
    throw e;
  }
  const { client } = app.getClient(opts.name);
  const push = capability(client, "push");
  const result = await push(image, { name: removeUri(opts.name), tag: opts.tag });
  if (app.json) app.out.json({ client: client.name, ...result });
  else app.out.line(result.url);
}

/** `sregistry search`. */
export async function searchCommand(app: App, queries: string[]): Promise<void> {
  const all: { client: string; uri: string; details?: Record<string, unknown> }[] = [];
  for (const q of queries.length ? queries : [""]) {
    const { client } = app.getClient(q || undefined);
    const search = capability(client, "search");
    const stripped = removeUri(q);
    const hits = await search(stripped === "" || stripped === "*" ? undefined : stripped);
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

/** `sregistry delete`. */
export async function deleteCommand(app: App, image: string, opts: { force?: boolean }) {
  const { client } = app.getClient(image);
  const del = capability(client, "delete");
  if (!opts.force && !(await confirm(app, `Are you sure you want to remove ${image}?`))) {
    throw new UsageError(`Not deleting ${image}: confirm on a terminal, or use --force`);
  }
  await del(image, { force: true });
  if (app.json) app.out.json({ deleted: image, client: client.name });
  else app.log.info(`[delete] ${image}`);
}

/** `sregistry share`. */
export async function shareCommand(app: App, image: string, opts: { email?: string }) {
  const { client } = app.getClient(image);
  const share = capability(client, "share");
  const link = await share(image, { shareTo: opts.email });
  if (app.json) app.out.json({ image, link, client: client.name });
  else app.out.line(link);
}

/** `sregistry build`. */
export async function buildCommand(
  app: App,
  args: string[],
  opts: { name: string; preview?: boolean },
) {
  const { client } = app.getClient(opts.name);
  const build = capability(client, "build");
  const result = await build(args[0] ?? "Singularity", {
    name: removeUri(opts.name),
    extra: args.slice(1),
  });
  app.out.json(result);
}
