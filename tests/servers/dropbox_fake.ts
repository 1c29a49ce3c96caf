/**
 * A strict Dropbox API v2 fake (Deno.serve on 127.0.0.1), written from Dropbox's HTTP
 * documentation: RPC endpoints want `Content-Type: application/json`, content endpoints
 * `application/octet-stream` and a JSON `Dropbox-API-Arg`; a bad token is 401 with
 * `error_summary` and a `.tag` (invalid_access_token, expired_access_token); endpoint errors are
 * 409 with `error_summary` and `error`; a wrong session offset is `incorrect_offset` with
 * `correct_offset`, and an unknown session `not_found` (both wrapped in `lookup_failed` by
 * `upload_session/finish`, as its UploadSessionFinishError does). Bad input (a missing required
 * field, a missing or malformed `Dropbox-API-Arg`, the wrong Content-Type, a body that is not JSON)
 * is 400 in plain text, `Error in call to API function "<route>": ...`, as Dropbox answers it.
 * `/oauth2/token` takes a form and serves the refresh_token and authorization_code (PKCE) grants. A
 * path prefix before `/2/` or
 * `/oauth2/` is ignored, so a fault proxy can tell routes apart by a base-URL prefix.
 * @module
 */

import { createHash } from "node:crypto";

/** Dropbox's content_hash: SHA-256 over the SHA-256 digests of each 4 MiB block. */
export function dropboxContentHash(bytes: Uint8Array): string {
  const outer = createHash("sha256");
  for (let o = 0; o < bytes.length; o += 4 * 1024 * 1024) {
    outer.update(createHash("sha256").update(bytes.subarray(o, o + 4 * 1024 * 1024)).digest());
  }
  return outer.digest("hex");
}

/** A running fake. */
export interface DropboxFake {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Store a file at a path (`/collection/image:tag.sif`). */
  put(path: string, bytes: Uint8Array): void;
  /** A stored file. */
  get(path: string): Uint8Array | undefined;
  /** Accept a token. */
  addToken(token: string): void;
  /** Make a token expired (401 expired_access_token). */
  expire(token: string): void;
  /** Every token issued from now on is already expired (a server that keeps refusing). */
  expireIssued(): void;
  /** Accept a refresh token for an app key. */
  addRefreshToken(appKey: string, refreshToken: string): void;
  /** Accept an authorization code for an app key (once). */
  addCode(appKey: string, code: string): void;
  /** PKCE code_verifiers received. */
  readonly verifiers: string[];
  /** Requests seen, `METHOD path`. */
  readonly calls: string[];
  /** Make the next append/finish of a session report this offset as the correct one. */
  skewNextOffset(): void;
  /**
   * After `after` more appends/finishes, answer the next `count` with 500; with `keep`, the first
   * of them is applied before the answer is lost (the server moved on, the client does not know).
   */
  failAppends(options: { after?: number; count: number; keep?: boolean }): void;
  /** The Range header of each download (null: a full one). */
  readonly ranges: (string | null)[];
  /** Flip a byte of the next file an upload commits (bytes damaged on the way in). */
  corruptNextSave(): void;
  /** Flip a byte in the next full download (a damaged copy on the way). */
  corruptNextDownload(): void;
  /** End the next full download after this many bytes (its Content-Length says more). */
  dropDownloadOnce(bytes: number): void;
  /** Forget every upload session (they expire after 7 days). */
  expireSessions(): void;
  /** Stop it. */
  stop(): Promise<void>;
}

const json = (status: number, body: unknown, headers: HeadersInit = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

const endpointError = (summary: string, error: unknown) =>
  json(409, { error_summary: summary, error });

/** Dropbox's 400 answer to bad input: plain text naming the function and what is wrong. */
const badInput = (route: string, detail: string) =>
  new Response(`Error in call to API function "${route.slice(3)}": ${detail}`, {
    status: 400,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });

/** The 400 for a required argument that is missing. */
const missing = (route: string, field: string, where = 'HTTP header "Dropbox-API-Arg"') =>
  badInput(route, `${where}: missing required field '${field}'`);

/** Start the fake. */
export function startDropboxFake(): DropboxFake {
  const files = new Map<string, { bytes: Uint8Array; display: string; rev: number }>();
  const tokens = new Set<string>();
  const expired = new Set<string>();
  const refresh = new Map<string, string>();
  const sessions = new Map<string, { bytes: Uint8Array[]; offset: number }>();
  const links = new Map<string, string>();
  const calls: string[] = [];
  const codes = new Map<string, string>();
  const verifiers: string[] = [];
  let skew = false;
  let dropAt: number | undefined;
  let expireNew = false;
  let corrupt = false;
  let corruptSave = false;
  const ranges: (string | null)[] = [];
  let sessionCount = 0;
  let failing: { after: number; count: number; keep: boolean; seen: number } | undefined;
  let issued = 0;
  const ac = new AbortController();

  const meta = (path: string) => {
    const f = files.get(path.toLowerCase())!;
    return {
      ".tag": "file",
      name: f.display.split("/").pop(),
      id: `id:${f.display}`,
      path_lower: path.toLowerCase(),
      path_display: f.display,
      size: f.bytes.length,
      rev: `0${f.rev}`,
      server_modified: "2026-01-01T00:00:00Z",
      content_hash: dropboxContentHash(f.bytes),
    };
  };

  function auth(req: Request): Response | undefined {
    const h = req.headers.get("authorization") ?? "";
    const t = h.replace(/^Bearer /, "");
    if (expired.has(t)) {
      return json(401, {
        error_summary: "expired_access_token/",
        error: { ".tag": "expired_access_token" },
      });
    }
    if (!h.startsWith("Bearer ") || !tokens.has(t)) {
      return json(401, {
        error_summary: "invalid_access_token/",
        error: { ".tag": "invalid_access_token" },
      });
    }
  }

  const concat = (parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  };

  function save(path: string, bytes: Uint8Array, mode: string) {
    const key = path.toLowerCase();
    if (mode === "add" && files.has(key)) {
      return endpointError("path/conflict/file/..", {
        ".tag": "path",
        reason: { ".tag": "conflict", conflict: { ".tag": "file" } },
      });
    }
    if (corruptSave) {
      corruptSave = false;
      bytes = bytes.slice();
      bytes[bytes.length >> 1] ^= 0xff;
    }
    files.set(key, { bytes, display: path, rev: (files.get(key)?.rev ?? 0) + 1 });
    return json(200, meta(path));
  }

  async function content(req: Request, route: string): Promise<Response> {
    const rawArg = req.headers.get("dropbox-api-arg") ??
      new URL(req.url).searchParams.get("arg");
    if (rawArg === null) {
      await req.body?.cancel();
      return badInput(route, 'Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg".');
    }
    if (/[^\x20-\x7e]/.test(rawArg)) {
      // HTTP headers carry bytes: Dropbox wants characters past 0x7e escaped as \uXXXX.
      await req.body?.cancel();
      return badInput(
        route,
        'Bad HTTP "Dropbox-API-Arg" header: non-ASCII characters must be escaped',
      );
    }
    let arg: Record<string, unknown>;
    try {
      arg = JSON.parse(rawArg);
      if (typeof arg !== "object" || arg === null) throw new Error();
    } catch {
      await req.body?.cancel();
      return new Response(
        `Error in call to API function "${route.slice(3)}": Bad HTTP "Dropbox-API-Arg" header`,
        { status: 400, headers: { "content-type": "text/plain" } },
      );
    }
    if (route === "/2/files/download") {
      await req.body?.cancel();
      if (typeof arg.path !== "string") return missing(route, "path");
      const path = arg.path;
      const f = files.get(path.toLowerCase());
      if (!f) {
        return endpointError("path/not_found/..", {
          ".tag": "path",
          path: { ".tag": "not_found" },
        });
      }
      const headers = {
        "dropbox-api-result": JSON.stringify(meta(path)),
        "content-type": "application/octet-stream",
        "accept-ranges": "bytes",
        etag: `W/"${f.rev}"`,
      };
      ranges.push(req.headers.get("range"));
      const range = req.headers.get("range")?.match(/^bytes=(\d+)-(\d*)$/);
      if (corrupt && !range) {
        corrupt = false;
        const bad = f.bytes.slice();
        bad[bad.length >> 1] ^= 0xff;
        return new Response(bad, { headers });
      }
      if (dropAt !== undefined && !range) {
        // The connection ends after `dropAt` bytes of a full download.
        const cut = f.bytes.slice(0, dropAt);
        dropAt = undefined;
        return new Response(
          new ReadableStream<Uint8Array>({
            start(c) {
              c.enqueue(cut);
              c.close();
            },
          }),
          { headers: { ...headers, "content-length": String(f.bytes.length) } },
        );
      }
      if (range) {
        const start = Number(range[1]);
        const end = range[2] ? Math.min(Number(range[2]), f.bytes.length - 1) : f.bytes.length - 1;
        return new Response(f.bytes.slice(start, end + 1), {
          status: 206,
          headers: { ...headers, "content-range": `bytes ${start}-${end}/${f.bytes.length}` },
        });
      }
      return new Response(f.bytes.slice(), { headers });
    }
    if (req.method !== "POST") return new Response("method", { status: 405 });
    if (req.headers.get("content-type") !== "application/octet-stream") {
      await req.body?.cancel();
      return new Response(
        `Error in call to API function "${route.slice(3)}": Bad HTTP "Content-Type" header: "${
          req.headers.get("content-type")
        }".  Expecting one of "application/octet-stream", "text/plain; charset=dropbox-cors-hack".`,
        { status: 400 },
      );
    }
    const body = new Uint8Array(await req.arrayBuffer());
    if (route === "/2/files/upload") {
      if (typeof arg.path !== "string") return missing(route, "path");
      if (body.length > 150 * 1024 * 1024) {
        return badInput(
          route,
          "request body is too large (more than 150 MiB): use an upload session",
        );
      }
      return save(arg.path, body, String(arg.mode ?? "add"));
    }
    if (route === "/2/files/upload_session/start") {
      const id = `session-${++sessionCount}`;
      sessions.set(id, { bytes: [body], offset: body.length });
      return json(200, { session_id: id });
    }
    const cursor = arg.cursor as { session_id?: string; offset?: number } | undefined;
    if (typeof cursor?.session_id !== "string" || typeof cursor.offset !== "number") {
      return missing(route, typeof cursor === "object" ? "cursor.offset" : "cursor");
    }
    // append_v2 answers an UploadSessionLookupError as is; finish wraps it in lookup_failed.
    const lookup = (tag: string, extra: Record<string, unknown> = {}) =>
      route === "/2/files/upload_session/finish"
        ? endpointError(`lookup_failed/${tag}/..`, {
          ".tag": "lookup_failed",
          lookup_failed: { ".tag": tag, ...extra },
        })
        : endpointError(`${tag}/..`, { ".tag": tag, ...extra });
    const s = sessions.get(cursor.session_id);
    if (!s) return lookup("not_found");
    if (failing && failing.count > 0 && ++failing.seen > failing.after) {
      failing.count--;
      // The first failure lands before the answer is lost: the server has the chunk.
      if (failing.keep && cursor.offset === s.offset) {
        failing.keep = false;
        s.bytes.push(body);
        s.offset += body.length;
      }
      return new Response("Internal Server Error", { status: 500 });
    }
    if (skew && cursor.offset === s.offset) {
      skew = false;
      s.bytes.push(body);
      s.offset += body.length;
      // The server got the previous chunk although the client never heard back.
      return lookup("incorrect_offset", { correct_offset: s.offset });
    }
    if (cursor.offset !== s.offset) {
      return lookup("incorrect_offset", { correct_offset: s.offset });
    }
    s.bytes.push(body);
    s.offset += body.length;
    if (route === "/2/files/upload_session/append_v2") return json(200, null);
    if (route === "/2/files/upload_session/finish") {
      const commit = arg.commit as { path?: string; mode?: string } | undefined;
      if (typeof commit?.path !== "string") return missing(route, "commit");
      sessions.delete(cursor.session_id);
      return save(commit.path, concat(s.bytes), commit.mode ?? "add");
    }
    return new Response("unknown endpoint", { status: 404 });
  }

  async function rpc(req: Request, route: string): Promise<Response> {
    if (req.method !== "POST") return new Response("method", { status: 405 });
    if (req.headers.get("content-type") !== "application/json") {
      await req.body?.cancel();
      return new Response(
        `Error in call to API function "${route.slice(3)}": Bad HTTP "Content-Type" header: "${
          req.headers.get("content-type")
        }".  Expecting one of "application/json".`,
        { status: 400 },
      );
    }
    let arg: Record<string, unknown>;
    try {
      arg = await req.json();
    } catch {
      return badInput(route, "request body: could not decode input as JSON");
    }
    const path = typeof arg?.path === "string" ? arg.path : undefined;
    const notFound = () =>
      endpointError("path/not_found/..", { ".tag": "path", path: { ".tag": "not_found" } });
    switch (route) {
      case "/2/files/get_metadata":
        if (path === undefined) return missing(route, "path", "request body");
        return files.has(path.toLowerCase()) ? json(200, meta(path)) : notFound();
      case "/2/files/delete_v2":
        if (path === undefined) return missing(route, "path", "request body");
        if (!files.has(path.toLowerCase())) {
          return endpointError("path_lookup/not_found/..", {
            ".tag": "path_lookup",
            path_lookup: { ".tag": "not_found" },
          });
        }
        {
          const m = meta(path);
          files.delete(path.toLowerCase());
          return json(200, { metadata: m });
        }
      case "/2/files/list_folder":
      case "/2/files/list_folder/continue": {
        let start = 0;
        if (route.endsWith("continue")) {
          if (typeof arg.cursor !== "string" || !/^cursor-\d+$/.test(arg.cursor)) {
            return endpointError("reset/..", { ".tag": "reset" });
          }
          start = Number(arg.cursor.slice(7));
        } else if (path === undefined) return missing(route, "path", "request body");
        const all = [...files.keys()].sort().map(meta);
        // Two entries a page, so any real listing needs the cursor.
        const page = all.slice(start, start + 2);
        return json(200, {
          entries: page,
          cursor: `cursor-${start + page.length}`,
          has_more: start + page.length < all.length,
        });
      }
      case "/2/sharing/create_shared_link_with_settings": {
        if (path === undefined) return missing(route, "path", "request body");
        if (!files.has(path.toLowerCase())) return notFound();
        const existing = links.get(path.toLowerCase());
        if (existing) {
          return endpointError("shared_link_already_exists/metadata/..", {
            ".tag": "shared_link_already_exists",
            shared_link_already_exists: { ".tag": "metadata", metadata: { url: existing } },
          });
        }
        const url = `https://www.dropbox.com/s/fake${links.size}/${
          encodeURIComponent(path.split("/").pop()!)
        }?dl=0`;
        links.set(path.toLowerCase(), url);
        return json(200, { ".tag": "file", url, name: path.split("/").pop() });
      }
      default:
        return new Response("unknown endpoint", { status: 404 });
    }
  }

  async function token(req: Request): Promise<Response> {
    if (!/^application\/x-www-form-urlencoded/.test(req.headers.get("content-type") ?? "")) {
      await req.body?.cancel();
      return json(400, { error: "invalid_request", error_description: "Content-Type" });
    }
    const form = new URLSearchParams(await req.text());
    if (form.get("grant_type") === "refresh_token") {
      const key = form.get("client_id") ?? "";
      if (!key || refresh.get(form.get("refresh_token") ?? "") !== key) {
        return json(400, { error: "invalid_grant", error_description: "refresh token is invalid" });
      }
      const t = `sl.fake-${++issued}`;
      tokens.add(t);
      if (expireNew) expired.add(t);
      return json(200, { access_token: t, token_type: "bearer", expires_in: 14400 });
    }
    if (form.get("grant_type") === "authorization_code") {
      const key = codes.get(form.get("code") ?? "");
      const verifier = form.get("code_verifier") ?? "";
      if (!key || key !== form.get("client_id") || !/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) {
        return json(400, { error: "invalid_grant", error_description: "code or verifier" });
      }
      codes.delete(form.get("code")!);
      verifiers.push(verifier);
      const t = `sl.fake-${++issued}`;
      const r = `refresh-${issued}`;
      tokens.add(t);
      refresh.set(r, key);
      return json(200, {
        access_token: t,
        refresh_token: r,
        token_type: "bearer",
        expires_in: 14400,
      });
    }
    return json(400, { error: "unsupported_grant_type" });
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      const at = url.pathname.search(/\/(2|oauth2)\//);
      const route = at >= 0 ? url.pathname.slice(at) : url.pathname;
      calls.push(`${req.method} ${route}`);
      if (route === "/oauth2/token") return await token(req);
      const denied = auth(req);
      if (denied) {
        await req.body?.cancel();
        return denied;
      }
      const isContent = route === "/2/files/download" || route.startsWith("/2/files/upload");
      return isContent ? await content(req, route) : await rpc(req, route);
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    put: (path, bytes) => void files.set(path.toLowerCase(), { bytes, display: path, rev: 1 }),
    get: (path) => files.get(path.toLowerCase())?.bytes,
    addToken: (t) => void tokens.add(t),
    expire: (t) => void expired.add(t),
    expireIssued: () => void (expireNew = true),
    addRefreshToken: (k, r) => void refresh.set(r, k),
    calls,
    verifiers,
    addCode: (k, c) => void codes.set(c, k),
    skewNextOffset: () => void (skew = true),
    failAppends: ({ after = 0, count, keep = false }) =>
      void (failing = { after, count, keep, seen: 0 }),
    expireSessions: () => sessions.clear(),
    ranges,
    dropDownloadOnce: (n) => void (dropAt = n),
    corruptNextDownload: () => void (corrupt = true),
    corruptNextSave: () => void (corruptSave = true),
    async stop() {
      ac.abort();
      await server.finished;
    },
  };
}
