/**
 * The command table: every command's name, summary, arguments, options and examples, and a loader
 * that imports the command's module only when that command runs. Help, suggestions and usage errors
 * need nothing but this file, so `sregistry --help` or a typo loads no command code at all.
 *
 * Loaders are string-literal dynamic imports so that `deno compile` embeds every command module
 * (tests/compile_graph_test.ts checks it).
 * @module
 */

import type { App } from "./app.ts";
import { UsageError } from "../core/errors.ts";

/** One option of a command. */
export interface OptionSpec {
  /** The long name without dashes (`name` for `--name`). */
  name: string;
  /** `boolean` flags take no value; `string` options take one. */
  type: "boolean" | "string";
  /** A one-letter alias (`f` for `-f`). */
  short?: string;
  /** What the value is, for help (`<uri>`). */
  value?: string;
  /** The value when the option is not given. */
  default?: string | boolean;
  /** The command cannot run without it. */
  required?: boolean;
  /** One line of help. */
  description: string;
}

/** One positional argument. */
export interface ArgSpec {
  /** Its name in help (`image`). */
  name: string;
  /** It must be given. */
  required?: boolean;
  /** It takes every remaining positional. */
  variadic?: boolean;
  /** One line of help. */
  description: string;
}

/** Parsed option values, keyed by long name (`no-cache`, `dry-run` keep their dashes). */
export type OptionValues = Record<string, string | boolean | undefined>;

/** What a loader returns: runs the command with the app, its positionals and its options. */
export type CommandRun = (app: App, args: string[], opts: OptionValues) => Promise<void>;

/** Which lazily loaded parts of the app a command uses (main loads them before it runs). */
export type AppPart = "catalog" | "clients";

/** One command. */
export interface CommandSpec {
  /** The command word. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Positional arguments, in order; at most the last is variadic. */
  args: readonly ArgSpec[];
  /** The command's own options (the global ones are added by the program). */
  options: readonly OptionSpec[];
  /** Example command lines, shown in `--help`. */
  examples: readonly string[];
  /** A paragraph shown in `--help` before the examples. */
  notes?: string;
  /** What the app must have ready: the catalog code, the client registry and http stack. */
  needs: readonly AppPart[];
  /** Import the command's module and return its runner. */
  load(): Promise<CommandRun>;
}

/** The flags every command accepts, anywhere on the line. */
export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  { name: "debug", type: "boolean", description: "print debug messages (credentials stay hidden)" },
  {
    name: "quiet",
    short: "q",
    type: "boolean",
    description: "only warnings and errors; no progress bars",
  },
  { name: "json", type: "boolean", description: "print data, and errors, as JSON" },
  { name: "help", short: "h", type: "boolean", description: "print help for the command" },
  { name: "version", short: "V", type: "boolean", description: "print the version and exit" },
  {
    name: "ca-file",
    type: "string",
    value: "<pem>",
    description: "also trust the CA certificates in this PEM file (as SREGISTRY_CA_FILE)",
  },
  {
    name: "insecure",
    type: "boolean",
    description: "do not verify TLS certificates, for testing only (as SREGISTRY_HTTPS_NOVERIFY)",
  },
  {
    name: "plain-http",
    type: "boolean",
    description: "plain http to registries (as SREGISTRY_<CLIENT>_NOHTTPS=true for every client)",
  },
];

const str = (v: string | boolean | undefined): string | undefined =>
  typeof v === "string" ? v : undefined;
const bool = (v: string | boolean | undefined): boolean | undefined =>
  typeof v === "boolean" ? v : undefined;

const METADATA: OptionSpec = {
  name: "metadata",
  type: "string",
  value: "<json>",
  description: "extra metadata: a JSON object or @file.json",
};
const ARCH: OptionSpec = {
  name: "arch",
  type: "string",
  value: "<arch>",
  description: "architecture, short for --platform linux/<arch>",
};

/** `--platform`, or `--arch` as `linux/<arch>`; both at once is a usage error. */
function platformOf(o: Record<string, string | boolean | undefined>): string | undefined {
  const platform = str(o.platform);
  const arch = str(o.arch);
  if (platform && arch) {
    throw new UsageError(
      `Give --platform ${JSON.stringify(platform)} or --arch ${JSON.stringify(arch)}, not both`,
    );
  }
  return arch ? `linux/${arch}` : platform;
}

const FORCE: OptionSpec = {
  name: "force",
  short: "f",
  type: "boolean",
  description: "replace an existing file or value",
};

/** Every command, in the order help lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "version",
    summary: "print the version, with the Deno and SQLite versions",
    args: [],
    options: [],
    examples: ["sregistry version", "sregistry version --json"],
    needs: [],
    load: async () => (await import("./commands/version.ts")).versionCommand,
  },
  {
    name: "images",
    summary: "list images in the local catalog (all, or those matching a query)",
    args: [{
      name: "query",
      variadic: true,
      description: "match name, tag, uri or collection (substring); '*' for all",
    }],
    options: [
      {
        name: "no-trunc",
        type: "boolean",
        description: "cut nothing: full versions and digests, even past the terminal width",
      },
      {
        name: "format",
        type: "string",
        value: "<template>",
        description: "print each image with a template of fields (see below)",
      },
    ],
    notes: "Versions that are hashes show their first 12 characters; --no-trunc and --json show\n" +
      "them whole. The table fits the terminal (or $COLUMNS), cutting its widest column with …,\n" +
      "unless --no-trunc.\n" +
      "--format fields, as docker images --format: {{.Name}} {{.Collection}} {{.Tag}} {{.Version}}\n" +
      "{{.Digest}} {{.Uri}} {{.Size}} {{.Bytes}} {{.Created}} {{.Client}} {{.Platform}} {{.Path}}\n" +
      '{{.Url}} {{.ID}}, and {{json .}}; \\t is a tab; a leading "table" aligns columns under a header.',
    examples: [
      "sregistry images",
      'sregistry images vsoch          # every image whose name, tag or uri contains "vsoch"',
      "sregistry images --no-trunc",
      "sregistry images --format '{{.Name}}:{{.Tag}} {{.Size}}'",
      "sregistry images --format 'table {{.Name}}\\t{{.Tag}}\\t{{.Version}}\\t{{.Size}}'",
      "sregistry images --json | jq '.[].uri'",
    ],
    needs: ["catalog"],
    load: async () => {
      const m = await import("./commands/local.ts");
      return (app, args, o) =>
        m.imagesCommand(app, args, { noTrunc: bool(o["no-trunc"]), format: str(o.format) });
    },
  },
  {
    name: "inspect",
    summary: "print an image's catalog entry and metadata as JSON, or read any SIF file",
    args: [{ name: "query", description: "image name: collection/image[:tag][@version]" }],
    options: [
      {
        name: "file",
        type: "string",
        value: "<path>",
        description: "read this image file directly (no catalog, no Singularity needed)",
      },
      { name: "objects", type: "boolean", description: "list the SIF header and data objects" },
    ],
    examples: [
      "sregistry inspect vsoch/hello-world",
      "sregistry inspect vsoch/hello-world:latest@<version> | jq .metrics",
      "sregistry inspect --file ./hello.sif | jq .labels",
      "sregistry inspect --file ./hello.sif --objects",
    ],
    needs: ["catalog"],
    load: async () => {
      const m = await import("./commands/local.ts");
      return (app, [query], o) =>
        m.inspectCommand(app, query, { file: str(o.file), objects: bool(o.objects) });
    },
  },
  {
    name: "get",
    summary: "print the path of an image's file (else its url)",
    args: [{
      name: "query",
      required: true,
      description: "image name; without a tag any tag matches (latest first, then newest)",
    }],
    options: [],
    examples: [
      "singularity run $(sregistry get vsoch/hello-world)",
      "sregistry get vsoch/hello-world:v1 --json",
    ],
    needs: ["catalog"],
    load: async () => {
      const m = await import("./commands/local.ts");
      return (app, [query]) => m.getCommand(app, query);
    },
  },
  {
    name: "add",
    summary: "add an image file to the catalog (moved into storage, or copied with --copy)",
    args: [{ name: "image", required: true, description: "path of the image file" }],
    options: [
      {
        name: "name",
        type: "string",
        value: "<uri>",
        description: "the image's name: collection/image[:tag][@version]",
      },
      { name: "copy", type: "boolean", description: "copy the file instead of moving it" },
      { ...FORCE, description: "replace a different file already stored under this name" },
      METADATA,
    ],
    notes: "Without @version the version is the file's sha256.",
    examples: [
      "sregistry add hello.sif --name vsoch/hello-world:latest",
      `sregistry add --copy hello.sif --name vsoch/hello-world:v1 --metadata '{"maintainer": "me"}'`,
    ],
    needs: ["catalog"],
    load: async () => {
      const m = await import("./commands/local.ts");
      return (app, [image], o) =>
        m.addCommand(app, image, {
          name: str(o.name),
          copy: bool(o.copy),
          force: bool(o.force),
          metadata: str(o.metadata),
        });
    },
  },
  {
    name: "mv",
    summary: "move an image's file to a folder or a path (the catalog follows)",
    args: [
      { name: "name", required: true, description: "image name" },
      {
        name: "path",
        required: true,
        description: "an existing folder (the file keeps its name) or a new file path",
      },
    ],
    options: [],
    examples: [
      "sregistry mv vsoch/hello-world:latest /data/images/",
      "sregistry mv vsoch/hello-world:latest /data/images/hello.sif",
    ],
    needs: ["catalog"],
    load: async () => {
      const m = await import("./commands/local.ts");
      return (app, [name, path]) => m.mvCommand(app, name, path);
    },
  },
  {
    name: "rename",
    summary: "give an image a new name; its file moves within storage, the version is kept",
    args: [
      { name: "name", required: true, description: "image name" },
      { name: "newname", required: true, description: "the new name: collection/image[:tag]" },
    ],
    options: [],
    examples: ["sregistry rename vsoch/hello-world:latest vsoch/hello:v1"],
    needs: ["catalog"],
    load: async () => {
      const m = await import("./commands/local.ts");
      return (app, [name, newName]) => m.renameCommand(app, name, newName);
    },
  },
  {
    name: "rm",
    summary: "remove an image from the catalog and delete its file",
    args: [{
      name: "image",
      required: true,
      description: "image name; without @version the newest version of the tag",
    }],
    options: [],
    examples: ["sregistry rm vsoch/hello-world:latest"],
    needs: ["catalog"],
    load: async () => {
      const m = await import("./commands/local.ts");
      return (app, [image]) => m.rmCommand(app, image);
    },
  },
  {
    name: "record",
    summary: "record an image's metadata (and url) in the catalog without a file",
    args: [{
      name: "name",
      required: true,
      description: "image name; a URI scheme (docker://) names the client",
    }],
    options: [
      {
        name: "url",
        type: "string",
        value: "<url>",
        description: "where the image can be fetched from",
      },
      { ...METADATA, description: "metadata: a JSON object or @file.json" },
      {
        name: "platform",
        type: "string",
        value: "<os/arch>",
        description:
          "with a client URI: which image of a multi-platform name (default: this machine's)",
      },
      ARCH,
    ],
    examples: [
      "sregistry record docker://alpine:3.20          # metadata from the registry, no download",
      "sregistry record docker://alpine:3.20 --arch arm64",
      "sregistry record vsoch/hello-world:v1 --url https://example.org/hello.sif",
      "sregistry record docker://alpine:3.20 --metadata @alpine.json",
    ],
    needs: ["catalog", "clients"],
    load: async () => {
      const m = await import("./commands/local.ts");
      return (app, [name], o) =>
        m.recordCommand(app, name, {
          url: str(o.url),
          metadata: str(o.metadata),
          platform: platformOf(o),
        });
    },
  },
  {
    name: "labels",
    summary: "search the labels stored in the catalog by key and/or value",
    args: [],
    options: [
      {
        name: "key",
        short: "k",
        type: "string",
        value: "<key>",
        description: "label key contains this (case-insensitive)",
      },
      {
        name: "value",
        short: "v",
        type: "string",
        value: "<value>",
        description: "label value contains this (case-insensitive)",
      },
    ],
    notes:
      "With the registry client active (SREGISTRY_CLIENT or backend activate), the server's label search.",
    examples: [
      "sregistry labels --key maintainer",
      "sregistry labels -k org.label-schema -v 1.0 --json",
    ],
    needs: ["catalog", "clients"],
    load: async () => {
      const m = await import("./commands/local.ts");
      return (app, _args, o) => m.labelsCommand(app, { key: str(o.key), value: str(o.value) });
    },
  },
  {
    name: "pull",
    summary: "download an image from a remote into the catalog (or the current folder)",
    args: [{
      name: "image",
      required: true,
      description: "image URI, e.g. docker://alpine:3.20 or https://host/x.sif",
    }],
    options: [
      {
        name: "name",
        type: "string",
        value: "<name>",
        description: "catalog name collection/image:tag[@version] (default: the remote's)",
      },
      {
        name: "file",
        type: "string",
        value: "<path>",
        description: "also write the image here (with --no-cache: only here)",
      },
      { ...FORCE, description: "replace an existing file (exit 2 without it)" },
      {
        name: "no-cache",
        type: "boolean",
        description: "do not store in the catalog; write to the current folder",
      },
      {
        name: "platform",
        type: "string",
        value: "<os/arch>",
        description: "platform of a multi-platform image (default: this machine's)",
      },
      ARCH,
    ],
    examples: [
      "sregistry pull https://example.org/hello.sif --name demo/hello:1.0",
      "sregistry pull --no-cache --file ./alpine.sif docker://alpine:3.20",
      "sregistry --json pull oras://127.0.0.1:5000/demo/hello:1.0",
      "sregistry pull --ca-file ./ca.pem oras://registry.example.org/demo/hello:1.0",
      "sregistry pull --plain-http oras://registry.lan:5000/demo/hello:1.0",
    ],
    needs: ["catalog", "clients"],
    load: async () => {
      const m = await import("./commands/remote.ts");
      return (app, [image], o) =>
        m.pullCommand(app, image, {
          name: str(o.name),
          file: str(o.file),
          force: bool(o.force),
          cache: o["no-cache"] === true ? false : undefined,
          platform: platformOf(o),
        });
    },
  },
  {
    name: "push",
    summary: "upload a local image to a remote",
    args: [{ name: "image", required: true, description: "path of the image file" }],
    options: [
      {
        name: "name",
        type: "string",
        value: "<uri>",
        required: true,
        description: "remote name with its client, e.g. oras://host/demo/hello:1.0",
      },
      {
        name: "tag",
        type: "string",
        value: "<tag>",
        description: "tag (overrides the tag in --name)",
      },
      { ...FORCE, description: "create a missing bucket without asking" },
      {
        name: "platform",
        type: "string",
        value: "<os/arch>",
        description: "platform the remote records for the image (default: the image's own)",
      },
      ARCH,
    ],
    examples: [
      "sregistry push hello.sif --name oras://127.0.0.1:5000/demo/hello:1.0",
      "sregistry push hello-arm64.sif --name library://demo/tools/hello:1.0 --arch arm64",
      "sregistry push hello.sif --name oras://registry.lan:5000/demo/hello:1.0 --plain-http",
    ],
    needs: ["catalog", "clients"],
    load: async () => {
      const m = await import("./commands/remote.ts");
      return (app, [image], o) =>
        m.pushCommand(app, image, {
          name: str(o.name)!,
          tag: str(o.tag),
          force: bool(o.force),
          platform: platformOf(o),
        });
    },
  },
  {
    name: "search",
    summary: "list images on a remote",
    args: [{
      name: "query",
      variadic: true,
      description: "queries, each optionally with a client URI (docker://library)",
    }],
    options: [{
      name: "endpoint",
      type: "string",
      value: "<endpoint>",
      description: "the server or endpoint to search (registry: a base URL)",
    }],
    examples: [
      "sregistry search oras://127.0.0.1:5000/demo",
      "sregistry search registry://vsoch/ --endpoint https://registry.example.org",
    ],
    needs: ["catalog", "clients"],
    load: async () => {
      const m = await import("./commands/remote.ts");
      return (app, args, o) => m.searchCommand(app, args, { endpoint: str(o.endpoint) });
    },
  },
  {
    name: "delete",
    summary: "delete an image on a remote",
    args: [{ name: "image", required: true, description: "remote image URI" }],
    options: [
      { ...FORCE, description: "do not ask for confirmation" },
      {
        name: "platform",
        type: "string",
        value: "<os/arch>",
        description: "which image of a multi-platform name (default: this machine's)",
      },
      ARCH,
    ],
    examples: [
      "sregistry delete oras://127.0.0.1:5000/demo/hello:1.0",
      "sregistry delete --arch arm64 library://demo/tools/hello:1.0",
    ],
    needs: ["catalog", "clients"],
    load: async () => {
      const m = await import("./commands/remote.ts");
      return (app, [image], o) =>
        m.deleteCommand(app, image, { force: bool(o.force), platform: platformOf(o) });
    },
  },
  {
    name: "share",
    summary: "share a remote image with someone",
    args: [{ name: "image", required: true, description: "remote image URI" }],
    options: [{
      name: "email",
      type: "string",
      value: "<address>",
      description: "who to share with",
    }],
    examples: ["sregistry share google-drive://demo/hello:1.0 --email me@example.org"],
    needs: ["catalog", "clients"],
    load: async () => {
      const m = await import("./commands/remote.ts");
      return (app, [image], o) => m.shareCommand(app, image, { email: str(o.email) });
    },
  },
  {
    name: "build",
    summary: "build an image on a remote builder",
    args: [{
      name: "args",
      variadic: true,
      description: "recipe file, then builder-specific arguments",
    }],
    options: [
      {
        name: "name",
        type: "string",
        value: "<uri>",
        required: true,
        description: "image URI with its client, e.g. google-build://demo/hello",
      },
      {
        name: "preview",
        short: "p",
        type: "boolean",
        description: "show what would be built without building",
      },
      {
        name: "watch",
        type: "string",
        value: "<id>",
        description: "resume watching a build left running (its id)",
      },
    ],
    examples: [
      "sregistry build Singularity --name google-build://demo/hello",
      "sregistry build --watch <id> --name google-build://demo/hello",
    ],
    needs: ["catalog", "clients"],
    load: async () => {
      const m = await import("./commands/remote.ts");
      return (app, args, o) =>
        m.buildCommand(app, args, {
          name: str(o.name)!,
          preview: bool(o.preview),
          watch: str(o.watch),
        });
    },
  },
  {
    name: "backend",
    summary: "manage clients in the secrets file (active client, settings)",
    args: [
      {
        name: "action",
        description:
          "ls [client] | status | activate <client> | deactivate | delete <client> | add <client> <var> <value> | rm <client> <var>",
      },
      { name: "args", variadic: true, description: "arguments of the action" },
    ],
    options: [{ ...FORCE, description: "with add: replace an existing value" }],
    examples: [
      "sregistry backend add oras NOHTTPS true      # stores SREGISTRY_ORAS_NOHTTPS",
      "sregistry backend activate docker",
      "sregistry backend ls docker --json         # its settings, capabilities and stored values",
    ],
    needs: ["clients"],
    load: async () => {
      const m = await import("./commands/backend.ts");
      return (app, [action, ...args], o) =>
        m.backendCommand(app, action, args, { force: bool(o.force) });
    },
  },
  {
    name: "cache",
    summary: "list or prune the blob cache (layers kept between OCI pulls)",
    args: [{ name: "action", description: "ls | prune" }],
    options: [
      {
        name: "dry-run",
        type: "boolean",
        description: "with prune: say what would be removed, remove nothing",
      },
    ],
    notes:
      "The cache lives in $SINGULARITY_CACHEDIR/sregistry/blobs (default ~/.singularity/cache/sregistry/blobs).\n" +
      "prune removes every complete blob not touched in the last 10 minutes (stored OCI archives carry\n" +
      "their own copies, so nothing in the catalog needs the cache), and unfinished downloads\n" +
      "(.partial, .partial.json, .tmp, stale .lock) older than a day.",
    examples: [
      "sregistry cache ls",
      "sregistry cache prune --dry-run",
      "sregistry cache prune --json",
    ],
    needs: [],
    load: async () => {
      const m = await import("./commands/cache.ts");
      return (app, [action], o) => m.cacheCommand(app, action, { dryRun: bool(o["dry-run"]) });
    },
  },
  {
    name: "shell",
    summary: "open an interactive JavaScript prompt with a client, the catalog and the library",
    args: [{
      name: "scheme",
      description: "the client (s3, docker://, ...); default: the usual client selection",
    }],
    options: [],
    notes:
      "In scope: client, ctx, factory, catalog, names, sregistry (the library) and app. Inputs are\n" +
      "JavaScript with top-level await; declarations last for the session. Without a terminal,\n" +
      "standard input is read line by line and any failing line makes the exit code 1.",
    examples: [
      "sregistry shell s3",
      "echo 'client.name' | sregistry shell docker",
      "echo 'catalog.images().length' | sregistry shell",
    ],
    needs: ["catalog", "clients"],
    load: async () => {
      const m = await import("./commands/shell.ts");
      return (app, [scheme]) => m.shellCommand(app, scheme);
    },
  },
  {
    name: "completions",
    summary: "print a completion script for bash, zsh or fish",
    args: [{ name: "shell", description: "bash | zsh | fish" }],
    options: [{
      name: "names",
      type: "boolean",
      description: "print the catalog's image names, one a line (what the scripts call)",
    }],
    examples: [
      "sregistry completions bash > ~/.local/share/bash-completion/completions/sregistry",
      "sregistry completions zsh > ~/.zfunc/_sregistry",
      "sregistry completions fish > ~/.config/fish/completions/sregistry.fish",
    ],
    needs: ["catalog"],
    load: async () => {
      const m = await import("./commands/completions.ts");
      return (app, [shell], o) => m.completionsCommand(app, shell, { names: bool(o.names) });
    },
  },
];

/** The command named `name`, if any. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}
