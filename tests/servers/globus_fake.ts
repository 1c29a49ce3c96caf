/**
 * A strict fake of Globus Auth (`/v2/oauth2/authorize`, `/v2/web/auth-code`, `/v2/oauth2/token`)
 * and the Transfer API v0.10 (`endpoint_search`, `endpoint/<id>`, `operation/endpoint/<id>/ls`,
 * `submission_id`, `transfer`, `delete`, `task/<id>`, `task/<id>/successful_transfers`,
 * `task/<id>/pause_info`) on Deno.serve, written from Globus's public API documentation:
 *
 * - a missing, unknown or expired bearer token is 401 `{"code": "AuthenticationFailed", "message",
 *   "request_id"}`; a malformed request is 400 `ClientError.BadRequest`; a missing endpoint 404
 *   `EndpointNotFound`, a missing folder 404 `ClientError.NotFound`;
 * - the token endpoint takes only form bodies; the authorization_code grant checks the client id,
 *   the redirect URI and the PKCE verifier against the challenge of `/authorize`; the refresh_token
 *   grant answers a new transfer token; refusals are `{"error": "invalid_grant"}`;
 * - `endpoint_search` pages as documented: `limit` 1 to 100 (default 25), `offset` from 0,
 *   `offset + limit` at most 1000 (else 400), `has_next_page` while more match;
 * - a task is ACTIVE when submitted and moves on at each `GET task/<id>`: the second look runs it
 *   (copies the files between the endpoints' folders, so real bytes move) and it is SUCCEEDED, or
 *   FAILED with a `fatal_error`, or stays ACTIVE with `is_paused` (a pause rule with a message), or
 *   is INACTIVE (suspended until the user acts, e.g. expired endpoint credentials), or
 *   stays ACTIVE for ever (`hang`), as configured per source path.
 *
 * Endpoints map Globus paths to folders: `/x` is `<root>/x`, `~/x` is `<home>/x`. A Globus Connect
 * Personal endpoint has root `/` (host paths) and only its `allowed` folders readable. A path prefix
 * before `/v0.10/` or `/v2/` is ignored, so a fault proxy can tell routes apart.
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, normalize, sep } from "node:path";

/** An endpoint of the fake. */
export interface FakeEndpoint {
  /** The endpoint id. */
  id: string;
  /** Its display name. */
  display_name: string;
  /** The folder `/` maps to (`/` for a Globus Connect Personal endpoint). */
  root: string;
  /** The Globus path of `~` (default `/`). */
  home?: string;
  /** Globus Connect Personal: true, with `gcp_connected`. */
  gcp?: boolean;
  /** Whether the Globus Connect Personal program runs (default true). */
  connected?: boolean;
  /** The only readable and writable folders (host paths), for Globus Connect Personal. */
  allowed?: string[];
  /** `my-endpoints` (yours) or `shared-with-me`. */
  scope?: "my-endpoints" | "shared-with-me";
}

/** How a task with a matching source path ends. */
export type TaskFate =
  | { fail: { code: string; description: string } }
  | { pause: string }
  | { inactive: { code: string; description: string } }
  | { hang: true };

interface Task {
  id: string;
  type: "TRANSFER" | "DELETE";
  status: string;
  polls: number;
  source?: string;
  destination: string;
  label?: string;
  items: { source_path?: string; destination_path?: string; path?: string }[];
  done: { source_path: string; destination_path: string }[];
  fatal_error?: { code: string; description: string };
  paused?: string;
  inactive?: { code: string; description: string };
  bytes: number;
  submission: string;
}

/** A running fake. */
export interface GlobusFake {
  /** `http://127.0.0.1:<port>` (the Auth base). */
  readonly url: string;
  /** `<url>/v0.10` (the Transfer base). */
  readonly transferBase: string;
  /** Add an endpoint. */
  addEndpoint(ep: FakeEndpoint): void;
  /** Accept a transfer access token (lifetime in seconds, default 172800). */
  addToken(token: string, lifetime?: number): void;
  /** Make a token expired. */
  expire(token: string): void;
  /** Accept a refresh token for a client id. */
  addRefreshToken(clientId: string, token: string): void;
  /** Register a native app client id (for `/authorize`). */
  addClient(clientId: string): void;
  /** Make tasks whose source path ends with `suffix` end this way. */
  fate(suffix: string, fate: TaskFate): void;
  /** Forget the fate of `suffix`: a hanging task then runs at its next look. */
  clearFate(suffix: string): void;
  /** Tasks seen, by id. */
  readonly tasks: Map<string, Task>;
  /** Requests seen, `METHOD path`. */
  readonly calls: string[];
  /** `GET task/<id>` answered so far. */
  readonly taskPolls: number;
  /** `GET task/<id>` answered for tasks whose first source path ends with `suffix`. */
  pollsFor(suffix: string): number;
  /** Stop it. */
  stop(): Promise<void>;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });

const b64url = (b: Uint8Array) => Buffer.from(b).toString("base64url");

/** Start the fake. */
export function startGlobusFake(): GlobusFake {
  const endpoints = new Map<string, FakeEndpoint>();
  const tokens = new Map<string, number>();
  const refresh = new Map<string, string>();
  const clients = new Set<string>();
  const codes = new Map<string, { client: string; challenge: string; redirect: string }>();
  const submissions = new Map<string, string | undefined>();
  const fates: [string, TaskFate][] = [];
  const tasks = new Map<string, Task>();
  const calls: string[] = [];
  let taskPolls = 0;
  let issued = 0;
  const ac = new AbortController();
  let url = "";

  const rid = () => crypto.randomUUID().replaceAll("-", "").slice(0, 9);
  const error = (status: number, code: string, message: string, resource: string) =>
    json(status, { code, message, request_id: rid(), resource });
  const bad = (message: string, resource: string) =>
    error(400, "ClientError.BadRequest", message, resource);

  function issue(lifetime = 172_800): string {
    const t = `Ag${++issued}${crypto.randomUUID().replaceAll("-", "")}`;
    tokens.set(t, Date.now() + lifetime * 1000);
    return t;
  }

  function authenticate(req: Request, resource: string): Response | undefined {
    const h = req.headers.get("authorization");
    if (!h) return error(401, "AuthenticationFailed", "No Authorization header found", resource);
    const m = h.match(/^Bearer (\S+)$/);
    const until = m ? tokens.get(m[1]) : undefined;
    if (!until || until <= Date.now()) {
      return error(401, "AuthenticationFailed", "Token is not active", resource);
    }
    return undefined;
  }

  /** A Globus path on an endpoint as a host path, or an error message. */
  function hostPath(ep: FakeEndpoint, path: string): string | { status: number; error: string } {
    if (path.split("/").includes("..")) return { status: 400, error: "Path may not contain '..'" };
    const home = ep.home ?? "/";
    const abs = path === "~" || path.startsWith("~/")
      ? join(home, path.slice(1))
      : path === "/~" || path.startsWith("/~/")
      ? join(home, path.slice(2))
      : path.startsWith("/")
      ? path
      : join(home, path);
    const host = normalize(join(ep.root, abs));
    if (ep.allowed && !ep.allowed.some((a) => host === a || host.startsWith(a + sep))) {
      return { status: 403, error: `Permission denied for path '${path}'` };
    }
    return host;
  }

  function endpointDoc(ep: FakeEndpoint) {
    return {
      DATA_TYPE: "endpoint",
      id: ep.id,
      display_name: ep.display_name,
      canonical_name: `fake#${ep.display_name}`,
      owner_string: "someone@globusid.org",
      is_globus_connect: ep.gcp === true,
      gcp_connected: ep.gcp ? ep.connected !== false : null,
      gcp_paused: ep.gcp ? false : null,
      description: null,
    };
  }

  function taskDoc(t: Task) {
    const src = t.source ? endpoints.get(t.source) : undefined;
    return {
      DATA_TYPE: "task",
      task_id: t.id,
      type: t.type,
      status: t.status,
      label: t.label ?? null,
      source_endpoint_id: t.source ?? null,
      source_endpoint_display_name: src?.display_name ?? null,
      destination_endpoint_id: t.destination,
      nice_status: t.status === "ACTIVE"
        ? (t.paused ? "PAUSED" : t.polls ? "OK" : "Queued")
        : t.status === "INACTIVE"
        ? t.inactive!.code
        : null,
      nice_status_short_description: t.status === "ACTIVE"
        ? (t.paused ? "paused" : "OK")
        : t.status === "INACTIVE"
        ? t.inactive!.description
        : null,
      is_paused: t.paused !== undefined,
      is_ok: t.status === "ACTIVE" ? true : null,
      fatal_error: t.fatal_error ?? null,
      files: t.items.length,
      files_transferred: t.done.length,
      bytes_transferred: t.bytes,
      request_time: "2026-01-01T00:00:00+00:00",
    };
  }

  function run(t: Task): void {
    const first = t.items[0];
    const p = first.source_path ?? first.path ?? "";
    const fate = fates.find(([s]) => p.endsWith(s))?.[1];
    if (fate && "hang" in fate) return;
    if (fate && "pause" in fate) {
      t.paused = fate.pause;
      return;
    }
    if (fate && "inactive" in fate) {
      t.status = "INACTIVE";
      t.inactive = fate.inactive;
      return;
    }
    if (fate && "fail" in fate) {
      t.status = "FAILED";
      t.fatal_error = fate.fail;
      return;
    }
    const dst = endpoints.get(t.destination)!;
    for (const item of t.items) {
      if (t.type === "DELETE") {
        const h = hostPath(dst, item.path!);
        if (typeof h !== "string") {
          t.status = "FAILED";
          t.fatal_error = { code: "PERMISSION_DENIED", description: h.error };
          return;
        }
        rmSync(h, { force: true, recursive: true });
        continue;
      }
      const src = endpoints.get(t.source!)!;
      const from = hostPath(src, item.source_path!);
      const to = hostPath(dst, item.destination_path!);
      if (typeof from !== "string" || typeof to !== "string") {
        t.status = "FAILED";
        t.fatal_error = {
          code: "PERMISSION_DENIED",
          description: (typeof from !== "string" ? from : to as { error: string }).error,
        };
        return;
      }
      let size: number;
      try {
        size = statSync(from).size;
      } catch {
        t.status = "FAILED";
        t.fatal_error = {
          code: "FILE_NOT_FOUND",
          description: `No such file or directory: '${item.source_path}'`,
        };
        return;
      }
      // Globus creates missing destination folders; the file appears whole.
      mkdirSync(dirname(to), { recursive: true });
      const tmp = `${to}.globus-tmp-${t.id}`;
      copyFileSync(from, tmp);
      renameSync(tmp, to);
      t.bytes += size;
      t.done.push({ source_path: item.source_path!, destination_path: item.destination_path! });
    }
    t.status = "SUCCEEDED";
  }

  const TRANSFER_KEYS = new Set([
    "DATA_TYPE",
    "submission_id",
    "source_endpoint",
    "destination_endpoint",
    "label",
    "sync_level",
    "verify_checksum",
    "preserve_timestamp",
    "encrypt_data",
    "deadline",
    "notify_on_succeeded",
    "notify_on_failed",
    "notify_on_inactive",
    "skip_source_errors",
    "fail_on_quota_errors",
    "DATA",
  ]);
  const ITEM_KEYS = new Set(["DATA_TYPE", "source_path", "destination_path", "recursive"]);
  const DELETE_KEYS = new Set([
    "DATA_TYPE",
    "submission_id",
    "endpoint",
    "label",
    "recursive",
    "deadline",
    "DATA",
  ]);

  async function submit(req: Request, kind: "transfer" | "delete"): Promise<Response> {
    const resource = `/${kind}`;
    if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) {
      return bad("Request body must be JSON (Content-Type: application/json)", resource);
    }
    let doc: Record<string, unknown>;
    try {
      doc = await req.json();
    } catch {
      return bad("Request body is not valid JSON", resource);
    }
    if (!doc || typeof doc !== "object" || doc.DATA_TYPE !== kind) {
      return bad(`DATA_TYPE must be '${kind}'`, resource);
    }
    const keys = kind === "transfer" ? TRANSFER_KEYS : DELETE_KEYS;
    const unknown = Object.keys(doc).find((k) => !keys.has(k));
    if (unknown) return bad(`Unknown field '${unknown}'`, resource);
    const sub = doc.submission_id;
    if (typeof sub !== "string" || !submissions.has(sub)) {
      return bad("Invalid or missing submission_id; get one from /submission_id", resource);
    }
    const already = submissions.get(sub);
    if (already) {
      return json(200, {
        DATA_TYPE: `${kind}_result`,
        code: "Duplicate",
        message: "A task with the provided submission_id was already submitted",
        task_id: already,
        submission_id: sub,
        request_id: rid(),
        resource,
      });
    }
    if (typeof doc.label === "string" && (doc.label.length > 128 || /[^\w ,-]/.test(doc.label))) {
      return bad("Invalid label", resource);
    }
    const items = doc.DATA;
    if (!Array.isArray(items) || items.length === 0) {
      return bad("DATA must be a non-empty list", resource);
    }
    for (const item of items as Record<string, unknown>[]) {
      if (kind === "transfer") {
        if (item?.DATA_TYPE !== "transfer_item") {
          return bad("DATA items must be transfer_item", resource);
        }
        const extra = Object.keys(item).find((k) => !ITEM_KEYS.has(k));
        if (extra) return bad(`Unknown field '${extra}' in transfer_item`, resource);
        if (typeof item.source_path !== "string" || typeof item.destination_path !== "string") {
          return bad("transfer_item needs source_path and destination_path", resource);
        }
      } else if (item?.DATA_TYPE !== "delete_item" || typeof item.path !== "string") {
        return bad("DATA items must be delete_item with a path", resource);
      }
    }
    const ids = kind === "transfer"
      ? [doc.source_endpoint, doc.destination_endpoint]
      : [doc.endpoint];
    for (const id of ids) {
      if (typeof id !== "string") return bad("Endpoint ids are required", resource);
      if (!endpoints.has(id)) {
        return error(404, "EndpointNotFound", `No such endpoint with id '${id}'`, resource);
      }
    }
    const t: Task = {
      id: crypto.randomUUID(),
      type: kind === "transfer" ? "TRANSFER" : "DELETE",
      status: "ACTIVE",
      polls: 0,
      source: kind === "transfer" ? doc.source_endpoint as string : undefined,
      destination: (kind === "transfer" ? doc.destination_endpoint : doc.endpoint) as string,
      label: doc.label as string | undefined,
      items: items as Task["items"],
      done: [],
      bytes: 0,
      submission: sub,
    };
    tasks.set(t.id, t);
    submissions.set(sub, t.id);
    return json(202, {
      DATA_TYPE: `${kind}_result`,
      code: "Accepted",
      message:
        "The transfer has been accepted and a task has been created and queued for execution",
      task_id: t.id,
      submission_id: sub,
      request_id: rid(),
      resource,
      task_link: { DATA_TYPE: "link", href: `task/${t.id}?format=json`, rel: "related" },
    });
  }

  async function token(req: Request): Promise<Response> {
    const oauthError = (error: string, status = 400) => json(status, { error });
    if (
      !(req.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded")
    ) {
      return oauthError("invalid_request");
    }
    const f = new URLSearchParams(await req.text());
    const grant = f.get("grant_type");
    const client = f.get("client_id") ?? "";
    if (!clients.has(client)) return oauthError("invalid_client", 401);
    const transfer = () => ({
      access_token: issue(),
      expires_in: 172_800,
      resource_server: "transfer.api.globus.org",
      token_type: "Bearer",
      scope: "urn:globus:auth:scope:transfer.api.globus.org:all",
    });
    if (grant === "authorization_code") {
      const c = codes.get(f.get("code") ?? "");
      if (!c || c.client !== client || c.redirect !== f.get("redirect_uri")) {
        return oauthError("invalid_grant");
      }
      const verifier = f.get("code_verifier") ?? "";
      if (b64url(createHash("sha256").update(verifier).digest()) !== c.challenge) {
        return oauthError("invalid_grant");
      }
      codes.delete(f.get("code")!);
      const rt = `rt-transfer-${++issued}`;
      refresh.set(rt, client);
      return json(200, {
        access_token: issue(),
        expires_in: 172_800,
        resource_server: "auth.globus.org",
        token_type: "Bearer",
        scope: "openid profile email",
        refresh_token: `rt-auth-${issued}`,
        id_token: "eyJ.fake.jwt",
        state: "_default",
        other_tokens: [{ ...transfer(), refresh_token: rt }],
      });
    }
    if (grant === "refresh_token") {
      const rt = f.get("refresh_token") ?? "";
      if (refresh.get(rt) !== client) return oauthError("invalid_grant");
      return json(200, { ...transfer(), refresh_token: rt });
    }
    return oauthError("unsupported_grant_type");
  }

  function authorize(u: URL): Response {
    const p = u.searchParams;
    const client = p.get("client_id") ?? "";
    const redirect = p.get("redirect_uri") ?? "";
    if (!clients.has(client)) return new Response("Unknown client_id", { status: 400 });
    if (redirect !== `${url}/v2/web/auth-code`) {
      return new Response("redirect_uri is not registered", { status: 400 });
    }
    if (
      p.get("response_type") !== "code" || p.get("code_challenge_method") !== "S256" ||
      !/^[A-Za-z0-9_-]{43}$/.test(p.get("code_challenge") ?? "") ||
      !(p.get("scope") ?? "").includes("urn:globus:auth:scope:transfer.api.globus.org:all")
    ) {
      return new Response("Bad authorize request", { status: 400 });
    }
    const code = crypto.randomUUID().replaceAll("-", "").slice(0, 30);
    codes.set(code, { client, challenge: p.get("code_challenge")!, redirect });
    const to = new URL(redirect);
    to.searchParams.set("code", code);
    to.searchParams.set("state", p.get("state") ?? "");
    return new Response(null, { status: 302, headers: { location: to.href } });
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const u = new URL(req.url);
      const at = u.pathname.search(/\/(v0\.10|v2)\//);
      const path = at < 0 ? u.pathname : u.pathname.slice(at);
      calls.push(`${req.method} ${path}`);
      if (path === "/v2/oauth2/authorize" && req.method === "GET") return authorize(u);
      if (path === "/v2/web/auth-code" && req.method === "GET") {
        return new Response(
          `<html><body>Native App Authorization Code<pre id="code">${
            u.searchParams.get("code")
          }</pre></body></html>`,
          { headers: { "content-type": "text/html" } },
        );
      }
      if (path === "/v2/oauth2/token") {
        if (req.method !== "POST") return json(405, { error: "invalid_request" });
        return await token(req);
      }
      if (!path.startsWith("/v0.10/")) {
        return error(404, "ClientError.NotFound", "No such API", path);
      }
      const resource = path.slice("/v0.10".length);
      const denied = authenticate(req, resource);
      if (denied) {
        await req.body?.cancel();
        return denied;
      }
      const q = u.searchParams;
      let m: RegExpMatchArray | null;
      if (req.method === "GET" && resource === "/submission_id") {
        const value = crypto.randomUUID();
        submissions.set(value, undefined);
        return json(200, { DATA_TYPE: "submission_id", value });
      }
      if (req.method === "POST" && resource === "/transfer") return await submit(req, "transfer");
      if (req.method === "POST" && resource === "/delete") return await submit(req, "delete");
      if (req.method === "GET" && resource === "/endpoint_search") {
        const scope = q.get("filter_scope") ?? "all";
        const scopes = [
          "all",
          "my-endpoints",
          "my-gcp-endpoints",
          "recently-used",
          "in-use",
          "shared-by-me",
          "shared-with-me",
          "administered-by-me",
        ];
        if (!scopes.includes(scope)) return bad(`Invalid filter_scope '${scope}'`, resource);
        const text = q.get("filter_fulltext");
        if (scope === "all" && !text) {
          return bad("filter_fulltext is required when filter_scope is 'all'", resource);
        }
        // Paging as documented: limit 1..100 (default 25), offset from 0, offset + limit <= 1000.
        const limit = Number(q.get("limit") ?? "25");
        if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
          return bad("limit must be between 1 and 100", resource);
        }
        const offset = Number(q.get("offset") ?? "0");
        if (!Number.isInteger(offset) || offset < 0) {
          return bad("offset must be a non-negative integer", resource);
        }
        if (offset + limit > 1000) {
          return bad("offset + limit must be at most 1000", resource);
        }
        const hits = [...endpoints.values()].filter((e) =>
          (scope === "all" ||
            (scope === "my-gcp-endpoints"
              ? e.gcp && e.scope === "my-endpoints"
              : e.scope === scope)) &&
          (!text || e.display_name.toLowerCase().includes(text.toLowerCase()))
        );
        return json(200, {
          DATA_TYPE: "endpoint_list",
          offset,
          limit,
          has_next_page: offset + limit < hits.length,
          DATA: hits.slice(offset, offset + limit).map(endpointDoc),
        });
      }
      if (req.method === "GET" && (m = resource.match(/^\/endpoint\/([^/]+)$/))) {
        const ep = endpoints.get(decodeURIComponent(m[1]));
        if (!ep) {
          return error(404, "EndpointNotFound", `No such endpoint with id '${m[1]}'`, resource);
        }
        return json(200, endpointDoc(ep));
      }
      if (req.method === "GET" && (m = resource.match(/^\/operation\/endpoint\/([^/]+)\/ls$/))) {
        const ep = endpoints.get(decodeURIComponent(m[1]));
        if (!ep) {
          return error(404, "EndpointNotFound", `No such endpoint with id '${m[1]}'`, resource);
        }
        if (ep.gcp && ep.connected === false) {
          return error(
            502,
            "ExternalError.DirListingFailed.GCDisconnected",
            `The Globus Connect Personal endpoint '${ep.display_name}' is not currently connected`,
            resource,
          );
        }
        const path = q.get("path") ?? "~/";
        const host = hostPath(ep, path);
        if (typeof host !== "string") {
          return host.status === 403
            ? error(403, "ExternalError.DirListingFailed.PermissionDenied", host.error, resource)
            : bad(host.error, resource);
        }
        let entries: Deno.DirEntry[];
        try {
          if (!Deno.statSync(host).isDirectory) {
            return error(
              502,
              "ExternalError.DirListingFailed.NotDirectory",
              `Path '${path}' is not a directory`,
              resource,
            );
          }
          entries = [...Deno.readDirSync(host)];
        } catch {
          return error(
            404,
            "ClientError.NotFound",
            `Directory '${path}' not found on endpoint`,
            resource,
          );
        }
        return json(200, {
          DATA_TYPE: "file_list",
          path,
          endpoint: ep.id,
          length: entries.length,
          DATA: entries.filter((e) => !e.name.includes(".globus-tmp-")).map((e) => {
            const st = Deno.statSync(join(host, e.name));
            return {
              DATA_TYPE: "file",
              name: e.name,
              type: e.isDirectory ? "dir" : e.isSymlink ? "link" : "file",
              size: st.size,
              permissions: "0644",
              last_modified: "2026-01-01 00:00:00+00:00",
              user: "user",
              group: "user",
            };
          }),
        });
      }
      if (req.method === "GET" && (m = resource.match(/^\/task\/([^/]+)(\/[a-z_]+)?$/))) {
        const t = tasks.get(decodeURIComponent(m[1]));
        if (!t) return error(404, "TaskNotFound", `Task ${m[1]} not found`, resource);
        if (!m[2]) {
          taskPolls++;
          t.polls++;
          // The first look finds it queued; the second finds it run.
          if (t.polls >= 2 && t.status === "ACTIVE" && !t.paused) run(t);
          return json(200, taskDoc(t));
        }
        if (m[2] === "/successful_transfers") {
          if (t.type !== "TRANSFER") {
            return bad("Only transfer tasks have successful transfers", resource);
          }
          return json(200, {
            DATA_TYPE: "successful_transfers",
            marker: 0,
            next_marker: null,
            DATA: t.done.map((d) => ({ DATA_TYPE: "successful_transfer", ...d })),
          });
        }
        if (m[2] === "/pause_info") {
          return json(200, {
            DATA_TYPE: "pause_info_limited",
            pause_rules: t.paused
              ? [{ DATA_TYPE: "pause_rule_limited", id: "rule-1", message: t.paused }]
              : [],
            source_pause_message: null,
            destination_pause_message: null,
          });
        }
      }
      await req.body?.cancel();
      return error(404, "ClientError.NotFound", `Unknown resource ${resource}`, resource);
    },
  );
  url = `http://127.0.0.1:${server.addr.port}`;
  return {
    url,
    transferBase: `${url}/v0.10`,
    addEndpoint: (ep) => void endpoints.set(ep.id, ep),
    addToken: (t, lifetime = 172_800) => void tokens.set(t, Date.now() + lifetime * 1000),
    expire: (t) => void tokens.set(t, 0),
    addRefreshToken: (client, t) => {
      clients.add(client);
      refresh.set(t, client);
    },
    addClient: (c) => void clients.add(c),
    fate: (suffix, f) => void fates.push([suffix, f]),
    clearFate: (suffix) => {
      for (let i = fates.length - 1; i >= 0; i--) if (fates[i][0] === suffix) fates.splice(i, 1);
    },
    tasks,
    calls,
    get taskPolls() {
      return taskPolls;
    },
    pollsFor: (suffix) =>
      [...tasks.values()].filter((t) => (t.items[0]?.source_path ?? "").endsWith(suffix))
        .reduce((n, t) => n + t.polls, 0),
    async stop() {
      ac.abort();
      await server.finished;
    },
  };
}
