/**
 * The globus:// client: images moved by Globus Transfer tasks between the local Globus Connect
 * Personal endpoint and a remote endpoint (`globus://<endpoint id>:<path>`). Each task is
 * submitted with a submission id, watched with `ctx.poll` until it succeeds, fails or is paused,
 * and reported with that status. A pull lands in a hidden folder of the local endpoint
 * (`<shared folder>/.sregistry-globus/<submission>/`) and is then moved to the store step's path,
 * so the image is recorded in the catalog (the original recorded nothing). Ctrl-C stops watching,
 * not the task: the message names the task and the command that watches it again
 * (`sregistry pull globus://task/<id>`, or `sregistry search globus://task/<id>` for a push).
 * @module
 */

import { copyFile, mkdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join, sep } from "node:path";
import {
  ConfigError,
  IntegrityError,
  InterruptedError,
  NetworkError,
  NotFoundError,
  UsageError,
} from "../../core/errors.ts";
import { serviceBase } from "../../core/base_url.ts";
import { hashFile } from "../../core/hasher.ts";
import { parseImageName } from "../../core/names.ts";
import type {
  Client,
  ClientFactory,
  Context,
  PulledImage,
  PullTarget,
  RemoteRecord,
  SearchHit,
} from "../types.ts";
import {
  call,
  ENDPOINT_SEARCH_MAX,
  type EndpointDoc,
  type FileDoc,
  getEndpoint,
  listDir,
  searchEndpoints,
  submitTask,
  type TaskDoc,
  taskLabel,
  type TransferApi,
} from "./_api.ts";
import { globusAuthorizer } from "./_auth.ts";
import { landingRoot, type LocalGcp, readLocalGcp, rootOf } from "./_local.ts";
import { baseOf, dirOf, type GlobusRef, parseRef } from "./_ref.ts";

const SCHEME = "globus";
const CLIENT_ID = "SREGISTRY_GLOBUS_CLIENT_ID";
const AUTH_BASE = "SREGISTRY_GLOBUS_AUTH_BASE";
const TRANSFER_BASE = "SREGISTRY_GLOBUS_TRANSFER_BASE";
const GCP_DIR = "SREGISTRY_GLOBUS_GCP_DIR";
const POLL = "SREGISTRY_GLOBUS_POLL_INTERVAL";
const TIMEOUT = "SREGISTRY_GLOBUS_TIMEOUT";

/** The original's public native-app client id. */
export const DEFAULT_CLIENT_ID = "ae32247c-2c17-4c43-92b5-ba7fe9957dbb";
/** Where pulls land inside a shared folder of the local endpoint before the store step. */
export const LANDING = ".sregistry-globus";
/** Where a push is staged when the file is outside every shared folder. */
const OUTBOX = "outbox";

const IMAGE_FILE = /\.(sif|simg)$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function seconds(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new ConfigError(`${name} ${JSON.stringify(value)} is not a number of seconds, e.g. 2`);
  }
  return n;
}

/** A catalog collection from an endpoint's display name (`My Laptop` -> `my-laptop`). */
export function collectionOf(name: string | null | undefined, fallback: string): string {
  const slug = (name ?? "").toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(
    /^[-._]+|[-._]+$/g,
    "",
  );
  return slug || fallback.toLowerCase().replace(/[^a-z0-9._-]+/g, "-");
}

/** The catalog name of a remote file: `<endpoint name>/<image>:<tag>` from `<image>:<tag>.sif`. */
export function suggestedNameOf(file: string, endpointName: string): string {
  const stem = file.replace(IMAGE_FILE, "");
  const n = parseImageName(stem.replace(/[^A-Za-z0-9._:@+-]+/g, "-"), {
    defaultCollection: endpointName,
  });
  return n.version ? `${n.url}:${n.tag}@${n.version}` : `${n.url}:${n.tag}`;
}

function statusLine(t: TaskDoc): string {
  const parts = [t.status];
  if (t.nice_status && t.nice_status !== "OK") parts.push(t.nice_status);
  if (t.bytes_transferred) parts.push(`${t.bytes_transferred} bytes`);
  return parts.join(", ");
}

function createGlobusClient(ctx: Context): Client {
  let apiCache: TransferApi | undefined;

  const api = (): TransferApi => {
    if (apiCache) return apiCache;
    const authBase = serviceBase(
      AUTH_BASE,
      ctx.settings.get(AUTH_BASE) ?? "https://auth.globus.org",
    );
    const base = serviceBase(
      TRANSFER_BASE,
      ctx.settings.get(TRANSFER_BASE) ?? "https://transfer.api.globus.org/v0.10",
    );
    const clientId = ctx.settings.get(CLIENT_ID) ?? DEFAULT_CLIENT_ID;
    apiCache = {
      http: ctx.http,
      base,
      auth: globusAuthorizer(ctx, { authBase, clientId }),
      signal: ctx.signal,
      tokenFile: ctx.credentials.path,
    };
    return apiCache;
  };

  const gcp = (): LocalGcp =>
    readLocalGcp(
      ctx.settings.get(GCP_DIR) ?? join(ctx.globals.home, ".globusonline", "lta"),
      ctx.globals.home,
      GCP_DIR,
    );

  /** The local endpoint: its id (client-id.txt, else the original's search), connected. */
  async function localEndpoint(local: LocalGcp): Promise<EndpointDoc> {
    let id = local.id;
    if (!id) {
      const { endpoints } = await searchEndpoints(api(), { filter_scope: "my-gcp-endpoints" });
      id = endpoints.find((e) => e.is_globus_connect && e.gcp_connected)?.id;
      if (!id) {
        throw new ConfigError(
          `No connected Globus Connect Personal endpoint of yours, and no ${
            join(local.dir, "client-id.txt")
          }; start Globus Connect Personal (globusconnectpersonal -start)`,
        );
      }
    }
    const ep = await getEndpoint(api(), id);
    if (ep.is_globus_connect === false) {
      throw new ConfigError(`Globus endpoint ${id} is not a Globus Connect Personal endpoint`);
    }
    if (ep.gcp_connected === false || ep.gcp_paused) {
      throw new ConfigError(
        `Globus Connect Personal endpoint ${id} is ${
          ep.gcp_paused ? "paused" : "not connected"
        }; start or resume it (globusconnectpersonal -start)`,
      );
    }
    return ep;
  }

  /** The entry of `path` in its folder's listing. */
  async function lookup(endpoint: string, path: string): Promise<FileDoc> {
    const name = baseOf(path);
    const entries = await listDir(api(), endpoint, dirOf(path)).catch((e) => {
      if (e instanceof NotFoundError) return [] as FileDoc[];
      throw e;
    });
    const hit = entries.find((e) => e.name === name);
    if (!hit) {
      throw new NotFoundError(
        `No file ${
          JSON.stringify(path)
        } on Globus endpoint ${endpoint}; list it with "sregistry search globus://${endpoint}:${
          dirOf(path) || "~/"
        }"`,
      );
    }
    if (hit.type !== "file") {
      throw new UsageError(`globus://${endpoint}:${path} is a ${hit.type}, not an image file`);
    }
    return hit;
  }

  function interval(): number {
    return seconds(POLL, ctx.settings.get(POLL), 2) * 1000;
  }

  /** Why a paused task waits: the pause rules' messages, else its status. */
  async function pauseReason(t: TaskDoc): Promise<string> {
    try {
      const info = await call<{
        pause_rules?: { message?: string | null }[];
        source_pause_message?: string | null;
        destination_pause_message?: string | null;
      }>(api(), "GET", `/task/${t.task_id}/pause_info`);
      const messages = [
        ...(info.pause_rules ?? []).map((r) => r.message),
        info.source_pause_message,
        info.destination_pause_message,
      ].filter((m): m is string => typeof m === "string" && m.trim() !== "");
      if (messages.length) return messages.join("; ");
    } catch (e) {
      if (e instanceof InterruptedError) throw e;
    }
    return t.nice_status_short_description ?? t.nice_status ?? "no reason given";
  }

  /** Watch a task until it succeeds; failed, paused or inactive tasks end with their reason. */
  async function waitTask(id: string, resume: string): Promise<TaskDoc> {
    const watchAgain = `watch it again with "${resume}"`;
    ctx.log.info(
      `Waiting for Globus task ${id} (Ctrl-C stops waiting, not the task)`,
    );
    try {
      const done = await ctx.poll<TaskDoc>({
        label: `Globus task ${id}`,
        interval: interval(),
        maxInterval: Math.max(interval(), 30_000),
        timeout: seconds(TIMEOUT, ctx.settings.get(TIMEOUT), 86_400) * 1000,
        signal: ctx.signal,
        check: async () => {
          const t = await call<TaskDoc>(api(), "GET", `/task/${encodeURIComponent(id)}`);
          if (t.status === "SUCCEEDED") return { done: true, value: t, status: "SUCCEEDED" };
          if (t.status === "FAILED") {
            const f = t.fatal_error;
            const why = f?.code || f?.description
              ? `${f.code ?? "FAILED"}: ${f.description ?? ""}`.trim()
              : t.nice_status_short_description ?? t.nice_status ?? "no reason given";
            throw new NetworkError(`Globus task ${id} failed (${why.replace(/\s+/g, " ")})`);
          }
          if (t.is_paused) {
            throw new NetworkError(
              `Globus task ${id} is paused (${await pauseReason(
                t,
              )}); it continues when resumed, ${watchAgain}`,
            );
          }
          if (t.status === "INACTIVE") {
            throw new NetworkError(
              `Globus task ${id} is inactive (${
                t.nice_status_short_description ?? t.nice_status ?? "no reason given"
              }); fix it at https://app.globus.org/activity/${id}, then ${watchAgain}`,
            );
          }
          return { done: false, status: statusLine(t) };
        },
      });
      ctx.log.info(`Globus task ${id} SUCCEEDED`);
      return done!;
    } catch (e) {
      if (e instanceof InterruptedError || ctx.signal.aborted) {
        throw new InterruptedError(
          `Stopped waiting for Globus task ${id}; it goes on remotely: ${watchAgain}`,
        );
      }
      if (e instanceof NetworkError && e.message.startsWith("Gave up waiting")) {
        throw new NetworkError(
          `${e.message.replace(/; it may still.*$/, "")}; it goes on remotely: ${watchAgain}`,
          {
            cause: e,
          },
        );
      }
      throw e;
    }
  }

  /** The first transferred file of a task: `{source_path, destination_path}`. */
  async function transferred(
    id: string,
  ): Promise<{ source_path: string; destination_path: string }[]> {
    const r = await call<{ DATA?: { source_path: string; destination_path: string }[] }>(
      api(),
      "GET",
      `/task/${encodeURIComponent(id)}/successful_transfers`,
    );
    return r.DATA ?? [];
  }

  /** Move the landed file of a pull to the store step's path and check it. */
  async function claim(
    local: LocalGcp,
    landed: string,
    into: PullTarget,
    expectedSize: number | undefined,
  ): Promise<{ digest: string; size: number }> {
    const root = rootOf(local, landed);
    const landing = root && join(root, LANDING) + sep;
    if (!landing || !landed.startsWith(landing)) {
      throw new IntegrityError(
        `Globus put the file at ${
          JSON.stringify(landed)
        }, outside ${LANDING} of a shared folder; not moving it`,
      );
    }
    try {
      await rename(landed, into.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        throw new NotFoundError(
          `The file of the transfer is not at ${JSON.stringify(landed)}; pull it again`,
        );
      }
      // Another filesystem: copy, then remove the landed file.
      await copyFile(landed, into.path);
      await rm(landed, { force: true });
    }
    // The submission's own folder held only this file (never the landing folder itself).
    if (dirname(landed) + sep !== landing) {
      await rm(dirname(landed), { recursive: true, force: true }).catch(() => {});
    }
    const { digest, size } = await hashFile(into.path);
    if (expectedSize !== undefined && size !== expectedSize) {
      throw new IntegrityError(
        `The Globus transfer gave ${size} bytes, but the remote file has ${expectedSize}; pull it again`,
      );
    }
    return { digest, size };
  }

  function describe(
    ref: { endpoint: string; path: string },
    source: EndpointDoc,
    entry: FileDoc | undefined,
    task?: string,
  ): RemoteRecord {
    const name = collectionOf(source.display_name, ref.endpoint);
    return {
      url: `${SCHEME}://${ref.endpoint}:${ref.path}`,
      ...(entry?.size !== undefined ? { size: entry.size } : {}),
      metadata: {
        globus_endpoint: ref.endpoint,
        ...(source.display_name ? { globus_endpoint_name: source.display_name } : {}),
        globus_path: ref.path,
        ...(entry?.last_modified ? { last_modified: entry.last_modified } : {}),
        ...(task ? { globus_task: task } : {}),
      },
      suggestedName: suggestedNameOf(baseOf(ref.path), name),
    };
  }

  function filePath(ref: GlobusRef, what: string): { endpoint: string; path: string } {
    if (ref.kind !== "path" || !ref.path || ref.path.endsWith("/")) {
      throw new UsageError(
        `${what} needs a file: globus://<endpoint id>:<path of the image>, e.g. globus://<id>:/~/shub/hello:latest.sif`,
      );
    }
    return { endpoint: ref.endpoint, path: ref.path };
  }

  /**
   * After a push watched again by its task (the first run was interrupted): remove the copy it
   * staged in the outbox, which only that task needed. Anything else is left alone.
   */
  async function dropStaged(sourcePath: string): Promise<void> {
    let local: LocalGcp;
    try {
      local = gcp();
    } catch {
      return;
    }
    for (const root of local.roots) {
      const outbox = join(root, LANDING, OUTBOX) + sep;
      const folder = dirname(sourcePath);
      if (sourcePath.startsWith(outbox) && dirname(folder) + sep === outbox) {
        await rm(folder, { recursive: true, force: true }).catch(() => {});
      }
    }
  }

  async function resumePull(task: string, into: PullTarget): Promise<PulledImage> {
    const local = gcp();
    const t = await call<TaskDoc>(api(), "GET", `/task/${encodeURIComponent(task)}`);
    if (t.type !== "TRANSFER") throw new UsageError(`Globus task ${task} is not a transfer`);
    await waitTask(task, `sregistry pull ${SCHEME}://task/${task}`);
    const [item] = await transferred(task);
    if (!item || !t.source_endpoint_id) {
      throw new NotFoundError(`Globus task ${task} transferred no file`);
    }
    const source = await getEndpoint(api(), t.source_endpoint_id);
    const entry = await lookup(t.source_endpoint_id, item.source_path).catch(() => undefined);
    const got = await claim(local, item.destination_path, into, entry?.size);
    const rec = describe(
      { endpoint: t.source_endpoint_id, path: item.source_path },
      source,
      entry,
      task,
    );
    return { ...rec, file: into.path, format: "unknown", ...got };
  }

  return {
    name: SCHEME,

    async pull(image: string, into: PullTarget): Promise<PulledImage> {
      const parsed = parseRef(image);
      if (parsed.kind === "task") return await resumePull(parsed.task, into);
      const ref = filePath(parsed, "pull");
      const local = gcp();
      const source = await getEndpoint(api(), ref.endpoint);
      const entry = await lookup(ref.endpoint, ref.path);
      const mine = await localEndpoint(local);
      const landing = join(landingRoot(local), LANDING, crypto.randomUUID(), baseOf(ref.path));
      await mkdir(dirname(landing), { recursive: true });
      let task: string;
      try {
        task = await submitTask(api(), "transfer", {
          source_endpoint: ref.endpoint,
          destination_endpoint: mine.id,
          label: taskLabel(`sregistry pull ${baseOf(ref.path)}`),
          sync_level: 3,
          verify_checksum: true,
          DATA: [{
            DATA_TYPE: "transfer_item",
            source_path: ref.path,
            destination_path: landing,
            recursive: false,
          }],
        });
      } catch (e) {
        await rm(dirname(landing), { recursive: true, force: true });
        throw e;
      }
      try {
        await waitTask(task, `sregistry pull ${SCHEME}://task/${task}`);
      } catch (e) {
        // Only a finished task's folder goes; an interrupted one still receives the file.
        if (!(e instanceof InterruptedError)) {
          await rm(dirname(landing), { recursive: true, force: true }).catch(() => {});
        }
        throw e;
      }
      const got = await claim(local, landing, into, entry.size);
      return { ...describe(ref, source, entry, task), file: into.path, format: "unknown", ...got };
    },

    async record(image: string): Promise<RemoteRecord> {
      const ref = filePath(parseRef(image), "record");
      const source = await getEndpoint(api(), ref.endpoint);
      return describe(ref, source, await lookup(ref.endpoint, ref.path));
    },

    async push(path, options) {
      const parsed = parseRef(options.name);
      if (parsed.kind === "task") {
        throw new UsageError(
          `To watch a Globus task again use "sregistry search ${SCHEME}://task/${parsed.task}"`,
        );
      }
      const file = basename(path);
      // No path: the original's `.singularity/shub/<file>`; a folder path gets the file's name.
      let target = parsed.path ?? "~/.singularity/shub/";
      if (target.endsWith("/")) target += file;
      if (options.tag && IMAGE_FILE.test(target)) {
        const b = baseOf(target).replace(IMAGE_FILE, "").replace(/:[^:@]*$/, "");
        target = `${dirOf(target)}${b}:${options.tag}.sif`;
      }
      const local = gcp();
      await getEndpoint(api(), parsed.endpoint);
      const mine = await localEndpoint(local);
      const { digest, size } = await hashFile(path);
      const real = await Deno.realPath(path);
      let source = real;
      let staged: string | undefined;
      if (!rootOf(local, real)) {
        // Globus Connect Personal reads only its shared folders: stage a copy in the first.
        staged = join(landingRoot(local), LANDING, OUTBOX, crypto.randomUUID());
        await mkdir(staged, { recursive: true });
        source = join(staged, file);
        await copyFile(real, source);
      }
      const task = await submitTask(api(), "transfer", {
        source_endpoint: mine.id,
        destination_endpoint: parsed.endpoint,
        label: taskLabel(`sregistry push ${file}`),
        sync_level: 3,
        verify_checksum: true,
        DATA: [{
          DATA_TYPE: "transfer_item",
          source_path: source,
          destination_path: target,
          recursive: false,
        }],
      });
      let done: TaskDoc;
      try {
        done = await waitTask(task, `sregistry search ${SCHEME}://task/${task}`);
      } catch (e) {
        if (staged && !(e instanceof InterruptedError)) {
          await rm(staged, { recursive: true, force: true }).catch(() => {});
        }
        throw e;
      }
      if (staged) await rm(staged, { recursive: true, force: true }).catch(() => {});
      // The task and its final status go into push --json beside the contract's fields.
      const url = `${SCHEME}://${parsed.endpoint}:${target}`;
      const result = { url, digest, size, task, status: done.status };
      return result;
    },

    async search(query: string | undefined, options = {}): Promise<SearchHit[]> {
      const q = query?.replace(/^globus:\/\//i, "").trim() || undefined;
      if (q && /^task\//.test(q)) {
        const ref = parseRef(q);
        if (ref.kind !== "task") throw new UsageError(`${JSON.stringify(query)} is not a task`);
        const t = await waitTask(ref.task, `sregistry search ${SCHEME}://task/${ref.task}`);
        const items = t.type === "TRANSFER" ? await transferred(ref.task) : [];
        for (const i of items) await dropStaged(i.source_path);
        return items.map((i) => ({
          uri: `${SCHEME}://${t.destination_endpoint_id}:${i.destination_path}`,
          details: { task: ref.task, status: t.status, from: i.source_path },
        }));
      }
      // An endpoint listing: --endpoint <id[:path]> [words], or globus://<id>:<path>.
      let listing: { endpoint: string; dir: string; filter?: string } | undefined;
      if (options.endpoint) {
        const ref = parseRef(options.endpoint);
        if (ref.kind !== "path") throw new UsageError("--endpoint takes <endpoint id>[:<path>]");
        listing = { endpoint: ref.endpoint, dir: ref.path ?? "", filter: q };
      } else if (q && UUID.test(q)) {
        // An endpoint id alone: its home folder.
        listing = { endpoint: q, dir: "~/" };
      } else if (q && q.includes(":")) {
        const ref = parseRef(q);
        if (ref.kind === "path") {
          const dir = ref.path === undefined || ref.path.endsWith("/")
            ? ref.path ?? ""
            : dirOf(ref.path);
          const rest = ref.path && !ref.path.endsWith("/") ? baseOf(ref.path) : undefined;
          listing = { endpoint: ref.endpoint, dir, filter: rest };
        }
      }
      if (listing) {
        const { endpoint, dir, filter } = listing;
        const entries = await listDir(api(), endpoint, dir);
        const folder = dir === "" || dir.endsWith("/") ? dir : `${dir}/`;
        return entries
          .filter((e) => e.type === "file" && IMAGE_FILE.test(e.name))
          .filter((e) => !filter || e.name.toLowerCase().includes(filter.toLowerCase()))
          .map((e) => ({
            uri: `${SCHEME}://${endpoint}:${folder || "~/"}${e.name}`,
            details: { size: e.size, modified: e.last_modified },
          }));
      }
      // Endpoints: yours and those shared with you, plus every match when there are words.
      const scopes = ["my-endpoints", "shared-with-me", ...(q ? ["all"] : [])];
      const seen = new Map<string, EndpointDoc>();
      for (const scope of scopes) {
        const r = await searchEndpoints(api(), {
          filter_scope: scope,
          ...(q ? { filter_fulltext: q } : {}),
        });
        if (r.truncated) {
          ctx.log.warning(
            `More than ${ENDPOINT_SEARCH_MAX} endpoints match in scope ${scope}, and Globus serves only the first ${ENDPOINT_SEARCH_MAX}; add words to narrow the search`,
          );
        }
        for (const e of r.endpoints) if (!seen.has(e.id)) seen.set(e.id, e);
      }
      return [...seen.values()].map((e) => ({
        uri: `${SCHEME}://${e.id}`,
        details: {
          name: e.display_name ?? e.canonical_name ?? undefined,
          owner: e.owner_string ?? undefined,
          ...(e.is_globus_connect ? { connected: e.gcp_connected ? "yes" : "no" } : {}),
        },
      }));
    },

    async delete(image: string) {
      const ref = filePath(parseRef(image), "delete");
      await lookup(ref.endpoint, ref.path);
      const task = await submitTask(api(), "delete", {
        endpoint: ref.endpoint,
        label: taskLabel(`sregistry delete ${baseOf(ref.path)}`),
        DATA: [{ DATA_TYPE: "delete_item", path: ref.path }],
      });
      await waitTask(task, `sregistry search ${SCHEME}://task/${task}`);
      return { deleted: [`${SCHEME}://${ref.endpoint}:${ref.path}`] };
    },
  };
}

/** The globus client factory. */
export const globusFactory: ClientFactory = {
  scheme: SCHEME,
  description: "Globus Transfer between Globus Connect Personal and an endpoint",
  settings: [
    {
      name: CLIENT_ID,
      description: "the native app's client id (Globus Auth)",
      default: DEFAULT_CLIENT_ID,
    },
    { name: AUTH_BASE, description: "Globus Auth", default: "https://auth.globus.org" },
    {
      name: TRANSFER_BASE,
      description: "the Transfer API",
      default: "https://transfer.api.globus.org/v0.10",
    },
    {
      name: GCP_DIR,
      description: "the Globus Connect Personal configuration folder",
      default: "~/.globusonline/lta",
    },
    { name: POLL, description: "seconds between the first task checks", default: "2" },
    { name: TIMEOUT, description: "seconds to wait for a task", default: "86400" },
  ],
  create: createGlobusClient,
};
