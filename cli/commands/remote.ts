/**
 * Commands that talk to a remote through a client: pull, push, search, delete, share, build.
 * The client comes from the image's URI scheme, else SREGISTRY_CLIENT, else the secrets file's active
 * backend, else hub; a capability the client lacks is exit 7.
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import type { RunWithApp } from "../app.ts";
import { buildCommand } from "../operations/build.ts";
import { deleteCommand } from "../operations/delete.ts";
import { pullCommand } from "../operations/pull.ts";
import { pushCommand } from "../operations/push.ts";
import { searchCommand } from "../operations/search.ts";
import { shareCommand } from "../operations/share.ts";

export { capability } from "../operations/capability.ts";
export { buildCommand, deleteCommand, pullCommand, pushCommand, searchCommand, shareCommand };

/** Register the remote commands. */
export function registerRemoteCommands(program: Command, run: RunWithApp): void {
  program
    .command("pull")
    .description("download an image from a remote into the catalog (or the current folder)")
    .argument("<image>", "image URI, e.g. docker://alpine:3.20 or https://host/x.sif")
    .option("--name <name>", "catalog name collection/image:tag[@version] (default: the remote's)")
    .option("--file <path>", "also write the image here (with --no-cache: only here)")
    .option("-f, --force", "replace an existing file (exit 2 without it)")
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
