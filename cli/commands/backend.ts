/**
 * `sregistry backend`: manage the secrets file (active client, per-client settings). Same actions
 * as sregistry-cli, with its bugs fixed: `rm` upper-cases the variable, `status` does not count the
 * active-client key as a client nor rewrite the file, backend names are validated and lower-cased,
 * missing arguments are usage errors, and values that look like credentials are never printed.
 * @module
 */

import { FACTORIES, findFactory } from "../../clients/mod.ts";
import type { ClientFactory } from "../../clients/types.ts";
import type { App } from "../app.ts";
import { NotFoundError, UsageError } from "../../core/errors.ts";
import { DEFAULT_SECRETS, type Secrets, type SecretsData } from "../../core/secrets.ts";
import { formatTable } from "../render/table.ts";
import { describeClient, formatClientHelp } from "./client_help.ts";

const SECRET_KEY = /token|password|passwd|secret|key|credential/i;

/** A copy of a client section with credential-looking values masked. */
export function maskSettings(section: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(section).map(([k, v]) => [k, SECRET_KEY.test(k) && v ? "********" : v]),
  );
}

function clientsIn(data: SecretsData): string[] {
  return Object.keys(data).filter((k) => k !== "SREGISTRY_CLIENT").sort();
}

/**
 * The clients the user configured: sections on file that are more than the built-in defaults
 * (which read() returns when there is no file, and the first write stores).
 */
function configuredIn(secrets: Secrets, data: SecretsData): string[] {
  if (!secrets.exists()) return [];
  return clientsIn(data).filter((name) =>
    JSON.stringify(data[name]) !== JSON.stringify(DEFAULT_SECRETS[name])
  );
}

function section(data: SecretsData, name: string): Record<string, unknown> {
  const s = data[name];
  return s && typeof s === "object" && !Array.isArray(s) ? s as Record<string, unknown> : {};
}

const VARIABLE = /^[A-Z][A-Z0-9_]*$/;

/** The `SREGISTRY_<NAME>_` form of a scheme or alias (upper case, `-` as `_`). */
function prefixOf(name: string): string {
  return `SREGISTRY_${name.toUpperCase().replaceAll("-", "_")}_`;
}

/**
 * The one prefix a client's settings use, read from its declared settings: the scheme's or an
 * alias's prefix that most of them carry (the http(s) client, scheme `https`, declares
 * `SREGISTRY_HTTP_*`), else their common prefix cut at a `_`, else the scheme's.
 */
function clientPrefix(factory: ClientFactory): string {
  const names = factory.settings.map((s) => s.name.toUpperCase());
  const carried = [factory.scheme, ...(factory.aliases ?? [])].map(prefixOf)
    .map((p) => ({ p, n: names.filter((name) => name.startsWith(p)).length }))
    .filter((c) => c.n > 0)
    .sort((a, b) => b.n - a.n || b.p.length - a.p.length);
  if (carried.length > 0) return carried[0].p;
  if (names.length > 0) {
    let common = names[0];
    for (const n of names) while (!n.startsWith(common)) common = common.slice(0, -1);
    const cut = common.slice(0, common.lastIndexOf("_") + 1);
    if (cut.startsWith("SREGISTRY_") && cut.length > "SREGISTRY_".length) return cut;
  }
  return prefixOf(factory.scheme);
}

/** Every prefix that names a factory: its settings' prefix, its scheme's and its aliases'. */
function prefixesOf(factory: ClientFactory): string[] {
  return [
    clientPrefix(factory),
    prefixOf(factory.scheme),
    ...(factory.aliases ?? []).map(prefixOf),
  ];
}

/**
 * The full variable name `backend add/rm` uses: the client's one prefix (that of its declared
 * settings) plus the short name. The short form (`TOKEN`), the full form (`SREGISTRY_HTTP_TOKEN`)
 * and the form of a scheme or alias (`SREGISTRY_HTTPS_TOKEN`) all map onto the same name, upper
 * case. A full name with another client's prefix is refused, as that client would never read it.
 * @throws {UsageError} when `variable` belongs to another client, or is not letters, digits and
 * underscores (it must work as an environment variable).
 */
export function variableName(
  client: string,
  variable: string,
  factories: readonly ClientFactory[] = FACTORIES,
): string {
  const v = variable.toUpperCase();
  if (!VARIABLE.test(v)) {
    throw new UsageError(
      `Variable name ${
        JSON.stringify(variable)
      } is not allowed: use letters, digits and underscores, starting with a letter (like TOKEN or BASE_URL)`,
    );
  }
  const factory = factories.find((f) => f.scheme === client || f.aliases?.includes(client));
  if (!factory) {
    const prefix = prefixOf(client);
    return v.startsWith(prefix) ? v : `${prefix}${v}`;
  }
  // A declared name is kept as it is (SREGISTRY_DOCKERHUB_SECRETS, AWS_ACCESS_KEY_ID).
  const declared = factory.settings.find((s) => s.name.toUpperCase() === v);
  if (declared) return declared.name;
  const prefix = clientPrefix(factory);
  // Longest first: SREGISTRY_HTTPS_TOKEN is the https form, not SREGISTRY_HTTP_ + "S_TOKEN".
  const own = prefixesOf(factory).sort((a, b) => b.length - a.length).find((p) => v.startsWith(p));
  if (own) return `${prefix}${v.slice(own.length)}`;
  const other = factories
    .filter((f) => f !== factory)
    .flatMap((f) => prefixesOf(f).map((p) => ({ f, p })))
    .sort((a, b) => b.p.length - a.p.length)
    .find(({ p }) => v.startsWith(p));
  if (other) {
    throw new UsageError(
      `${
        JSON.stringify(variable)
      } is a setting of the ${other.f.scheme} client, not of ${factory.scheme}: use "sregistry backend add ${other.f.scheme} ${
        v.slice(other.p.length)
      } <value>", or give the short name (${prefix}<NAME> for ${factory.scheme})`,
    );
  }
  if (v.startsWith("SREGISTRY_")) {
    throw new UsageError(
      `${
        JSON.stringify(variable)
      } is not a setting of the ${factory.scheme} client: give the short name, which becomes ${prefix}<NAME>`,
    );
  }
  return `${prefix}${v}`;
}

function need(value: string | undefined, usage: string): string {
  if (!value) throw new UsageError(`Missing argument: usage: sregistry backend ${usage}`);
  return value;
}

/** Run one `backend` action. */
export function backendCommand(
  app: App,
  action: string | undefined,
  args: string[],
  opts: { force?: boolean },
): Promise<void> {
  const { secrets, out, log } = app;
  const print = (text: string, json: unknown) => app.json ? out.json(json) : out.line(text);
  switch (action) {
    case undefined:
      throw new UsageError(
        "Missing action: use one of ls, status, activate, deactivate, add, rm, delete (see sregistry backend --help)",
      );
    case "ls":
    case "list": {
      const data = secrets.read();
      const name = args[0];
      if (name !== undefined) {
        const factory = app.factories.find((f) =>
          f.scheme === name.toLowerCase() || f.aliases?.includes(name.toLowerCase())
        );
        if (factory) {
          // A registered client: its settings and capabilities, then what the file holds for it.
          const help = describeClient(app, factory);
          const stored = factory.scheme in data
            ? maskSettings(section(data, factory.scheme))
            : null;
          if (app.json) out.json({ name: factory.scheme, settings: stored ?? {}, client: help });
          else {
            out.line(
              `${formatClientHelp(help)}\n\nIn the secrets file (${secrets.path}):\n${
                stored ? JSON.stringify(stored, null, 4) : "nothing"
              }`,
            );
          }
          break;
        }
        if (!(name in data) || name === "SREGISTRY_CLIENT") {
          throw new NotFoundError(
            `${name} is not a configured client; configured: ${
              clientsIn(data).join(", ") || "none"
            }`,
          );
        }
        const masked = maskSettings(section(data, name));
        print(`${name}\n${JSON.stringify(masked, null, 4)}`, { name, settings: masked });
        break;
      }
      const active = data.SREGISTRY_CLIENT;
      // Without a file, read() gives the built-in defaults: nothing is configured yet.
      const configured = configuredIn(secrets, data);
      const rows = app.factories.map((f) => ({
        client: f.scheme,
        configured: configured.includes(f.scheme),
        active: active === f.scheme,
        description: f.description,
      }));
      if (app.json) out.json(rows);
      else {
        out.line(formatTable(
          rows.map((r) => [
            r.active ? `${r.client} *` : r.client,
            r.configured ? "yes" : "",
            r.description,
          ]),
          ["CLIENT", "CONFIGURED", "DESCRIPTION"],
        ));
      }
      break;
    }
    case "status": {
      const data = secrets.read();
      const clients = configuredIn(secrets, data);
      const active = typeof data.SREGISTRY_CLIENT === "string" ? data.SREGISTRY_CLIENT : undefined;
      const found = clients.length === 1
        ? "There is 1 client"
        : `There are ${clients.length === 0 ? "no" : clients.length} clients`;
      print(
        `[backend status]\n${found} found in secrets.\n${
          active ? `active: ${active}` : "There is no active client."
        }`,
        { secrets: secrets.path, clients, active: active ?? null },
      );
      break;
    }
    case "activate": {
      const name = findFactory(need(args[0], "activate <client>"), app.factories).scheme;
      const data = secrets.read();
      data.SREGISTRY_CLIENT = name;
      secrets.write(data);
      print(`[activate] ${name}`, { active: name });
      break;
    }
    case "deactivate": {
      const data = secrets.read();
      if (data.SREGISTRY_CLIENT === undefined) {
        log.info("There is no active client.");
      } else {
        delete data.SREGISTRY_CLIENT;
        secrets.write(data);
      }
      print("[deactivated]", { active: null });
      break;
    }
    case "delete": {
      const name = need(args[0], "delete <client>");
      const data = secrets.read();
      if (!(name in data) || name === "SREGISTRY_CLIENT") {
        throw new NotFoundError(`${name} is not a configured client; see "sregistry backend ls"`);
      }
      delete data[name];
      if (data.SREGISTRY_CLIENT === name) delete data.SREGISTRY_CLIENT;
      secrets.write(data);
      print(`[delete] ${name}`, { deleted: name });
      break;
    }
    case "add": {
      const usage = "add <client> <variable> <value>";
      const client = findFactory(need(args[0], usage), app.factories).scheme;
      const variable = variableName(client, need(args[1], usage));
      const value = need(args[2], usage);
      const data = secrets.read();
      const sec = section(data, client);
      if (variable in sec && !opts.force) {
        throw new UsageError(`${variable} is already set; use --force to override`);
      }
      data[client] = { ...sec, [variable]: value };
      secrets.write(data);
      log.addSecret(SECRET_KEY.test(variable) ? value : undefined);
      const shown = SECRET_KEY.test(variable) ? "********" : value;
      print(`[add] ${client}\n${variable} ${shown}`, { client, variable, value: shown });
      break;
    }
    case "rm":
    case "remove": {
      const usage = "rm <client> <variable>";
      const client = findFactory(need(args[0], usage), app.factories).scheme;
      const variable = variableName(client, need(args[1], usage));
      const data = secrets.read();
      const sec = section(data, client);
      // Old files may hold the short name (token) rather than the full one.
      const key = [variable, args[1], args[1].toUpperCase()].find((k) => k in sec);
      if (key === undefined) {
        throw new NotFoundError(
          `${variable} is not set for ${client}; see "sregistry backend ls ${client}"`,
        );
      }
      delete sec[key];
      data[client] = sec;
      secrets.write(data);
      print(`[remove] ${key}`, { client, removed: key });
      break;
    }
    default:
      throw new UsageError(
        `${
          JSON.stringify(action)
        } is not a backend action: use ls, status, activate, deactivate, add, rm or delete`,
      );
  }
  return Promise.resolve();
}
