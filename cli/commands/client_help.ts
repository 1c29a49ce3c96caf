/**
 * `sregistry help <client>` (and `backend ls <client>`): a client's settings, from its factory's
 * declared list (name, default, secret, required, description), and its capabilities, read from
 * the client object itself: `create(ctx)` does no I/O by contract, so building the client is cheap
 * and what it offers cannot drift from what help says.
 * @module
 */

import type { App } from "../app.ts";
import {
  CAPABILITIES,
  capabilitiesOf,
  type Capability,
  type ClientFactory,
} from "../../clients/types.ts";
import { UsageError } from "../../core/errors.ts";
import { formatTable } from "../render/table.ts";
import { commandNames, suggest } from "../program.ts";

/** What help says about a client. */
export interface ClientHelp {
  /** Its scheme. */
  scheme: string;
  /** Other schemes that select it. */
  aliases: string[];
  /** One line. */
  description: string;
  /** Its declared settings. */
  settings: {
    name: string;
    default: string | null;
    secret: boolean;
    required: boolean;
    description: string;
  }[];
  /** The commands it supports; null when the client could not be built. */
  capabilities: Capability[] | null;
  /** Why the client could not be built, if it could not. */
  error?: string;
}

/** The help facts of `factory`, building its client with the app's context. */
export function describeClient(app: App, factory: ClientFactory): ClientHelp {
  let capabilities: Capability[] | null = null;
  let error: string | undefined;
  try {
    capabilities = capabilitiesOf(app.buildClient(factory).client);
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  return {
    scheme: factory.scheme,
    aliases: [...(factory.aliases ?? [])],
    description: factory.description,
    settings: factory.settings.map((s) => ({
      name: s.name,
      default: s.default ?? null,
      secret: s.secret === true,
      required: s.required === true,
      description: s.description,
    })),
    capabilities,
    ...(error === undefined ? {} : { error }),
  };
}

/** The text form of {@link ClientHelp}. */
export function formatClientHelp(h: ClientHelp): string {
  const schemes = [h.scheme, ...h.aliases].map((s) => `${s}://`).join(", ");
  const parts = [`${h.scheme}: ${h.description}\nSchemes: ${schemes}`];
  if (h.settings.length) {
    const rows = h.settings.map((s) => [
      s.name,
      s.default ?? "",
      `${s.required ? "(required) " : ""}${s.secret ? "(secret) " : ""}${s.description}`,
    ]);
    const table = formatTable(rows, ["SETTING", "DEFAULT", "DESCRIPTION"]);
    parts.push(`Settings:\n${table.split("\n").map((l) => `  ${l}`).join("\n")}`);
  } else {
    parts.push("Settings: none");
  }
  if (h.capabilities) {
    const missing = CAPABILITIES.filter((c) => !h.capabilities!.includes(c));
    parts.push(
      `Capabilities: ${h.capabilities.join(", ") || "none"}${
        missing.length ? `\nNot supported: ${missing.join(", ")} (exit 7)` : ""
      }`,
    );
  } else {
    parts.push(`Capabilities: unknown (the client could not be built: ${h.error})`);
  }
  parts.push(
    `Set a setting with "export NAME=value", or keep it in the secrets file with\n` +
      `"sregistry backend add ${h.scheme} NAME value". Secret values are never printed.`,
  );
  return parts.join("\n\n");
}

/**
 * `help <client>`.
 * @throws {UsageError} when `name` is neither a command nor a client, with a suggestion.
 */
export function clientHelpCommand(app: App, name: string): Promise<void> {
  const n = name.toLowerCase();
  const factory = app.factories.find((f) => f.scheme === n || f.aliases?.includes(n));
  if (!factory) {
    const schemes = app.factories.flatMap((f) => [f.scheme, ...(f.aliases ?? [])]);
    const near = suggest(name, [...commandNames(), ...schemes]);
    throw new UsageError(
      `${JSON.stringify(name)} is neither a command nor a client${
        near ? ` (did you mean ${near}?)` : ""
      }: see "sregistry --help" for the commands; clients: ${schemes.sort().join(", ")}`,
    );
  }
  const help = describeClient(app, factory);
  if (app.json) app.out.json(help);
  else app.out.line(formatClientHelp(help));
  return Promise.resolve();
}
