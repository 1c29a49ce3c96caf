/**
 * Commands that talk to a remote through a client: pull, push, search, delete, share, build.
 * The client comes from the image's URI scheme, else SREGISTRY_CLIENT, else the secrets file's active
 * backend, else hub; a capability the client lacks is exit 7.
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import type { Client } from "../../clients/types.ts";
import type { App, RunWithApp } from "../app.ts";
import { NotFoundError, UnsupportedError, UsageError } from "../../core/errors.ts";
import { removeUri } from "../../core/names.ts";

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
  app.out.table(
    all.map((h) => [h.uri, ...keys.map((k) => String(h.details?.[k] ?? ""))]),
    ["URI", ...keys.map((k) => k.toUpperCase())],
  );
}

/**
 * `sregistry delete`: asks "Delete <uri>? [y/N]" unless --force; no (or no terminal and no answer on
 * stdin) deletes nothing and is exit 0. The client may ask again before other names go with it.
 */
export async function deleteCommand(app: App, image: string, opts: { force?: boolean }) {
  const { client, ctx } = app.getClient(image);
  const del = capability(client, "delete");
  const nothing = () => {
    if (app.json) app.out.json({ deleted: [], image, client: client.name });
    else app.log.info("Nothing deleted");
  };
  if (!opts.force && !(await ctx.prompt.confirm(`Delete ${image}?`, { default: false }))) {
    return nothing();
  }
  const result = await del(image, { force: opts.force ?? false });
  const deleted = result ? result.deleted : [image];
  if (deleted.length === 0) return nothing();
  if (app.json) app.out.json({ deleted, image, client: client.name });
  else for (const d of deleted) app.log.info(`[delete] ${d}`);
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

/** Register the remote commands. */
export function registerRemoteCommands(program: Command, run: RunWithApp): void {
  program
    .command("pull")
    .description("download an image from a remote into the catalog (or the current folder)")
    .argument("<image>", "image URI, e.g. docker://alpine:3.20 or https://host/x.sif")
    .option("--name <name>", "catalog name collection/image:tag (or file name with --no-cache)")
    .option("--file <path>", "with --no-cache: where to write the image")
    .option("-f, --force", "replace an existing file")
    .option("--no-cache", "do not store in the catalog; write to the current folder")
    .option("--platform <os/arch>", "platform of a multi-platform image (default: this machine's)")
    .addHelpText(
      "after",
      `
Examples:
  sregistry pull https://example.org/hello.sif --name demo/hello:1.0
  sregistry pull --no-cache --file ./alpine.sif docker://alpine:3.20
  sregistry --json pull oras://127.0.0.1:5000/demo/hello:1.0`,
    )
    .action((image, opts) => run((app) => pullCommand(app, image, opts)));

  program
    .command("push")
    .description("upload a local image to a remote")
    .argument("<image>", "path of the image file")
    .requiredOption("--name <uri>", "remote name with its client, e.g. oras://host/demo/hello:1.0")
    .option("--tag <tag>", "tag (overrides the tag in --name)")
    .addHelpText(
      "after",
      `\nExample:\n  sregistry push hello.sif --name oras://127.0.0.1:5000/demo/hello:1.0`,
    )
    .action((image, opts) => run((app) => pushCommand(app, image, opts)));

  program
    .command("search")
    .description("list images on a remote")
    .argument("[query...]", "queries, each optionally with a client URI (docker://library)")
    .addHelpText("after", `\nExample:\n  sregistry search oras://127.0.0.1:5000/demo`)
    .action((queries) => run((app) => searchCommand(app, queries)));

  program
    .command("delete")
    .description("delete an image on a remote")
    .argument("<image>", "remote image URI")
    .option("-f, --force", "do not ask for confirmation")
    .action((image, opts) => run((app) => deleteCommand(app, image, opts)));

  program
    .command("share")
    .description("share a remote image with someone")
    .argument("<image>", "remote image URI")
    .option("--email <address>", "who to share with")
    .action((image, opts) => run((app) => shareCommand(app, image, opts)));

  program
    .command("build")
    .description("build an image on a remote builder")
    .argument("[args...]", "recipe file, then builder-specific arguments")
    .requiredOption("--name <uri>", "image URI with its client, e.g. google-build://demo/hello")
    .option("-p, --preview", "show what would be built without building")
    .action((args, opts) => run((app) => buildCommand(app, args, opts)));
}
