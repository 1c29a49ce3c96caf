/**
 * A strict fake of the Drive v3 API parts the google-drive client uses, written from Google's
 * documentation: `POST /token` (JWT-bearer grant, RS256 signature checked against registered
 * accounts), `GET/POST /drive/v3/files` (list with a `q` of `and`-joined clauses: mimeType=, name=,
 * trashed=false, '<id>' in parents ('root': the top of My Drive), properties has { key='k' and value='v' }; pageToken paging),
 * `GET/DELETE /drive/v3/files/{id}` (alt=media, Range), the resumable upload session
 * (`POST /upload/drive/v3/files?uploadType=resumable`, then PUT), and `POST …/permissions`.
 * Errors use Google's `{error: {errors: [...], code, message}}` shape.
 *
 * OAuth for installed apps: `GET /o/oauth2/auth` plays the consent screen (checks the client, a
 * loopback redirect_uri, response_type=code, the Drive scope, a PKCE challenge's method) and
 * redirects with a code at once; `POST /token` then takes `authorization_code` (the client secret,
 * the same redirect_uri, the PKCE verifier when a challenge was sent: `invalid_grant` "Missing code
 * verifier." / "Invalid code verifier.", "Malformed auth code." for an unknown or used code) and
 * `refresh_token` ("Token has been expired or revoked." once revoked).
 * @module
 */

import { createHash } from "node:crypto";
import { freePort } from "./_port.ts";

/** A stored file. */
export interface FakeFile {
  id: string;
  name: string;
  mimeType: string;
  parents: string[];
  properties: Record<string, string>;
  contentHints?: { thumbnail?: { image?: string; mimeType?: string } };
  bytes: Uint8Array<ArrayBuffer>;
  modifiedTime: string;
  trashed: boolean;
  permissions: { id: string; type: string; role: string; emailAddress: string }[];
}

/** The running fake. */
export interface DriveFake {
  url: string;
  tokenUri: string;
  files: Map<string, FakeFile>;
  stats: {
    tokens: number;
    unauthorized: number;
    pages: number;
    codeGrants: number;
    refreshGrants: number;
    statusQueries: number;
    /** Upload sessions opened. */
    sessions: number;
    /** Body bytes received by upload PUTs. */
    chunkBytes: number;
  };
  /**
   * Make upload chunks fail with 503: after `after` more chunks succeed, the next `count` fail,
   * keeping none of their bytes, or the first half rounded down to 256 KiB (a dropped connection).
   */
  failChunks(options: { after?: number; count: number; persist?: "none" | "half" }): void;
  /** `<url>/o/oauth2/auth`: the consent screen, which redirects with a code at once. */
  authUri: string;
  addAccount(email: string, key: CryptoKey): void;
  /** Register an OAuth client (type Desktop app). */
  addClient(clientId: string, clientSecret: string): void;
  /** Revoke every refresh token. */
  revokeRefreshTokens(): void;
  /** Flip a byte of the next upload Drive completes (bytes damaged on the way in). */
  corruptNextUpload(): void;
  /** A valid access token, as the token endpoint would issue (for tests that call the fake). */
  issueToken(): Promise<string>;
  /** Expire every issued token (the next call answers 401). */
  expireTokens(): void;
  put(file: Partial<FakeFile> & { name: string }): FakeFile;
  stop(): Promise<void>;
}

function gError(status: number, message: string, reason: string): Response {
  return Response.json({
    error: { errors: [{ domain: "global", reason, message }], code: status, message },
  }, { status });
}

function b64urlDecode(s: string): Uint8Array<ArrayBuffer> {
  const b = atob(
    s.replaceAll("-", "+").replaceAll("_", "/") + "==".slice(0, (4 - s.length % 4) % 4),
  );
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

const FIELDS = ["id", "name", "size", "modifiedTime", "properties", "sha256Checksum"];

/** File fields Drive knows (a subset), for `fields` selections. */
const KNOWN_FIELDS = new Set([
  ...FIELDS,
  "kind",
  "mimeType",
  "parents",
  "trashed",
  "md5Checksum",
  "webViewLink",
  "createdTime",
  "contentHints",
]);

/** The unknown name in a `fields` selection (`nextPageToken,files(id,name)`), if any. */
function badField(fields: string | null): string | undefined {
  if (fields === null || fields.trim() === "*") return undefined;
  const inner = fields.replace(/files\(([^)]*)\)/, (_, x) => `files,${x}`);
  for (const raw of inner.split(",")) {
    const f = raw.trim();
    if (["nextPageToken", "files", "incompleteSearch", "kind"].includes(f)) continue;
    if (!KNOWN_FIELDS.has(f)) return f;
  }
  return undefined;
}

/** Parse a q into predicates; undefined for an unsupported clause. */
function parseQuery(q: string): ((f: FakeFile) => boolean)[] | undefined {
  const clauses: string[] = [];
  let depth = 0, cur = "", inStr = false;
  for (let i = 0; i < q.length; i++) {
    const c = q[i];
    if (c === "\\" && inStr) {
      cur += c + q[++i];
      continue;
    }
    if (c === "'") inStr = !inStr;
    if (!inStr && c === "{") depth++;
    if (!inStr && c === "}") depth--;
    if (!inStr && depth === 0 && q.slice(i, i + 5) === " and ") {
      clauses.push(cur.trim());
      cur = "";
      i += 4;
      continue;
    }
    cur += c;
  }
  clauses.push(cur.trim());
  const str = "'((?:[^'\\\\]|\\\\.)*)'";
  const un = (s: string) => s.replace(/\\(.)/g, "$1");
  const out: ((f: FakeFile) => boolean)[] = [];
  for (const c of clauses) {
    let m;
    if ((m = c.match(new RegExp(`^(mimeType|name)\\s*=\\s*${str}$`)))) {
      const [k, v] = [m[1] as "mimeType" | "name", un(m[2])];
      out.push((f) => f[k] === v);
    } else if (c === "trashed=false" || c === "trashed = false") out.push((f) => !f.trashed);
    else if ((m = c.match(new RegExp(`^${str}\\s+in\\s+parents$`)))) {
      const id = un(m[1]);
      // A file without parents is at the top of My Drive, which `'root'` names.
      out.push((f) => f.parents.includes(id) || (id === "root" && f.parents.length === 0));
    } else if (
      (m = c.match(
        new RegExp(`^properties has \\{ key=${str} and value=${str} \\}$`),
      ))
    ) {
      const [k, v] = [un(m[1]), un(m[2])];
      out.push((f) => f.properties[k] === v);
    } else return undefined;
  }
  return out;
}

/** Start the fake on a free 127.0.0.1 port. */
export function startDriveFake(options: { pageSize?: number } = {}): DriveFake {
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const accounts = new Map<string, CryptoKey>();
  const tokens = new Map<string, number>();
  const files = new Map<string, FakeFile>();
  const sessions = new Map<
    string,
    Omit<FakeFile, "bytes"> & { size: number; parts: Uint8Array[]; received: number }
  >();
  /** Finished sessions: upload_id -> file id (a status query then answers the file). */
  const finished = new Map<string, string>();
  let faults: { after: number; count: number; persist: "none" | "half" } | undefined;
  let chunksSeen = 0;
  let corruptNext = false;
  const stats = {
    tokens: 0,
    unauthorized: 0,
    pages: 0,
    codeGrants: 0,
    refreshGrants: 0,
    statusQueries: 0,
    sessions: 0,
    chunkBytes: 0,
  };
  const clients = new Map<string, string>();
  const codes = new Map<
    string,
    { clientId: string; redirectUri: string; challenge?: string; method?: string }
  >();
  const refreshTokens = new Map<string, string>();
  let n = 0;
  const newId = () => `f${++n}${crypto.randomUUID().slice(0, 8)}`;

  const view = (f: FakeFile) => {
    const all: Record<string, unknown> = {
      ...f,
      size: String(f.bytes.length),
      sha256Checksum: createHash("sha256").update(f.bytes).digest("hex"),
    };
    return Object.fromEntries(FIELDS.map((k) => [k, all[k]]));
  };

  const issue = () => {
    stats.tokens++;
    const t = `ya29.fake-${crypto.randomUUID()}`;
    tokens.set(t, Date.now() + 3599_000);
    return t;
  };

  /**
   * The consent screen (Google's authorization endpoint), approving at once: checks the client,
   * a loopback redirect_uri (what Desktop clients may use), response_type=code, the scope, and a
   * PKCE challenge's method; answers a 302 to the redirect_uri with `code` and `scope`.
   */
  function authorize(url: URL): Response {
    const q = url.searchParams;
    const page = (error: string) =>
      new Response(`<html><body>Error 400: ${error}</body></html>`, {
        status: 400,
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    const clientId = q.get("client_id") ?? "";
    if (!clients.has(clientId)) return page("invalid_client");
    const redirect = q.get("redirect_uri") ?? "";
    let r: URL;
    try {
      r = new URL(redirect);
    } catch {
      return page("redirect_uri_mismatch");
    }
    if (r.protocol !== "http:" || !["127.0.0.1", "[::1]", "localhost"].includes(r.hostname)) {
      return page("redirect_uri_mismatch");
    }
    if (q.get("response_type") !== "code") return page("unsupported_response_type");
    if (!(q.get("scope") ?? "").split(" ").includes("https://www.googleapis.com/auth/drive")) {
      return page("invalid_scope");
    }
    const challenge = q.get("code_challenge") ?? undefined;
    const method = q.get("code_challenge_method") ?? (challenge ? "plain" : undefined);
    if (challenge && method !== "S256" && method !== "plain") return page("invalid_request");
    const code = `4/0Afake${crypto.randomUUID().replaceAll("-", "")}`;
    codes.set(code, { clientId, redirectUri: redirect, challenge, method });
    const to = new URL(redirect);
    to.searchParams.set("code", code);
    to.searchParams.set("scope", q.get("scope")!);
    return new Response(null, { status: 302, headers: { location: to.href } });
  }

  async function codeGrant(form: URLSearchParams): Promise<Response> {
    const bad = (error: string, d: string, status = 400) =>
      Response.json({ error, error_description: d }, { status });
    const clientId = form.get("client_id") ?? "";
    if (!clients.has(clientId)) {
      return bad("invalid_client", "The OAuth client was not found.", 401);
    }
    if (clients.get(clientId) !== form.get("client_secret")) {
      return bad("invalid_client", "Unauthorized", 401);
    }
    const c = codes.get(form.get("code") ?? "");
    if (!c || c.clientId !== clientId) return bad("invalid_grant", "Malformed auth code.");
    if (form.get("redirect_uri") !== c.redirectUri) {
      return bad("redirect_uri_mismatch", "Bad Request");
    }
    if (c.challenge) {
      const verifier = form.get("code_verifier");
      if (!verifier) return bad("invalid_grant", "Missing code verifier.");
      const got = c.method === "S256"
        ? btoa(String.fromCharCode(
          ...new Uint8Array(
            await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)),
          ),
        )).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")
        : verifier;
      if (got !== c.challenge) return bad("invalid_grant", "Invalid code verifier.");
    }
    codes.delete(form.get("code")!);
    stats.codeGrants++;
    const refresh = `1//0fake${crypto.randomUUID().replaceAll("-", "")}`;
    refreshTokens.set(refresh, clientId);
    return Response.json({
      access_token: issue(),
      expires_in: 3599,
      refresh_token: refresh,
      scope: "https://www.googleapis.com/auth/drive",
      token_type: "Bearer",
    });
  }

  function refreshGrant(form: URLSearchParams): Response {
    const clientId = form.get("client_id") ?? "";
    if (!clients.has(clientId) || clients.get(clientId) !== form.get("client_secret")) {
      return Response.json({ error: "invalid_client", error_description: "Unauthorized" }, {
        status: 401,
      });
    }
    if (refreshTokens.get(form.get("refresh_token") ?? "") !== clientId) {
      return Response.json({
        error: "invalid_grant",
        error_description: "Token has been expired or revoked.",
      }, { status: 400 });
    }
    stats.refreshGrants++;
    return Response.json({
      access_token: issue(),
      expires_in: 3599,
      scope: "https://www.googleapis.com/auth/drive",
      token_type: "Bearer",
    });
  }

  async function token(req: Request): Promise<Response> {
    const fail = (d: string) =>
      Response.json({ error: "invalid_grant", error_description: d }, { status: 400 });
    if (!/^application\/x-www-form-urlencoded/.test(req.headers.get("content-type") ?? "")) {
      return Response.json({ error: "invalid_request" }, { status: 400 });
    }
    const form = new URLSearchParams(await req.text());
    if (form.get("grant_type") === "authorization_code") return await codeGrant(form);
    if (form.get("grant_type") === "refresh_token") return refreshGrant(form);
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      return Response.json({ error: "unsupported_grant_type" }, { status: 400 });
    }
    const parts = (form.get("assertion") ?? "").split(".");
    if (parts.length !== 3) return fail("Invalid JWT: malformed");
    const claims = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[1])));
    const key = accounts.get(String(claims.iss));
    if (!key) return fail("Invalid grant: account not found");
    const ok = await crypto.subtle.verify(
      "RSASSA-PKCS1-v1_5",
      key,
      b64urlDecode(parts[2]),
      new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
    );
    if (!ok) return fail("Invalid JWT Signature.");
    if (claims.aud !== `${base}/token`) return fail("Invalid JWT: Failed audience check.");
    if (!String(claims.scope).split(" ").includes("https://www.googleapis.com/auth/drive")) {
      return Response.json({ error: "invalid_scope" }, { status: 400 });
    }
    return Response.json({ access_token: issue(), expires_in: 3599, token_type: "Bearer" });
  }

  /**
   * A PUT to a resumable session, as Drive's "Perform a resumable upload" documents it: with
   * `Content-Range: bytes *\/<size>` and no body it is a status query (308 with `Range: bytes=0-<n>`
   * for what is kept, no Range when nothing is; 200 with the file once complete); with
   * `bytes <a>-<b>/<size>` a chunk, which must match its body's length and the session's size,
   * must not start past the bytes kept (bytes already kept may be sent again), and must be a
   * multiple of 256 KiB unless it is the last. A PUT without Content-Range is the whole file.
   */
  async function chunk(req: Request, url: URL): Promise<Response> {
    const uploadId = url.searchParams.get("upload_id") ?? "";
    const bytes = new Uint8Array(await req.arrayBuffer());
    stats.chunkBytes += bytes.length;
    const doneId = finished.get(uploadId);
    if (doneId !== undefined) {
      const f = files.get(doneId);
      return f ? Response.json(view(f)) : gError(404, "Upload session not found", "notFound");
    }
    const s = sessions.get(uploadId);
    if (!s) return gError(404, "Upload session not found", "notFound");
    const kept = () =>
      s.received > 0
        ? new Response(null, { status: 308, headers: { range: `bytes=0-${s.received - 1}` } })
        : new Response(null, { status: 308 });
    const complete = () => {
      const all = new Uint8Array(s.received);
      let o = 0;
      for (const part of s.parts) {
        all.set(part, o);
        o += part.length;
      }
      const { size: _, parts: _p, received: _r, ...meta } = s;
      if (corruptNext) {
        corruptNext = false;
        all[all.length >> 1] ^= 0xff;
      }
      const f = { ...meta, bytes: all };
      files.set(f.id, f);
      sessions.delete(uploadId);
      finished.set(uploadId, f.id);
      return Response.json(view(f));
    };
    const cr = req.headers.get("content-range");
    if (cr === null) {
      if (Number.isFinite(s.size) && s.size > 0 && bytes.length !== s.size) {
        return gError(400, "Upload length does not match X-Upload-Content-Length", "badRequest");
      }
      s.parts = [bytes];
      s.received = bytes.length;
      return complete();
    }
    const query = cr.match(/^bytes \*\/(\d+|\*)$/);
    if (query) {
      if (bytes.length !== 0) return gError(400, "Invalid Content-Range for a body", "badRequest");
      stats.statusQueries++;
      if (query[1] !== "*" && Number(query[1]) === s.received && s.received === s.size) {
        return complete();
      }
      return kept();
    }
    const m = cr.match(/^bytes (\d+)-(\d+)\/(\d+)$/);
    if (!m) return gError(400, `Invalid Content-Range: ${cr}`, "badRequest");
    const [a, b, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (b < a || b - a + 1 !== bytes.length) {
      return gError(400, "Content-Range does not match the body length", "badRequest");
    }
    if (Number.isFinite(s.size) && s.size > 0 && total !== s.size) {
      return gError(400, "Upload length does not match X-Upload-Content-Length", "badRequest");
    }
    if (b >= total) return gError(400, "Content-Range past the end of the upload", "badRequest");
    if (a > s.received) {
      return gError(
        400,
        `Invalid request. The upload offset ${a} is past the ${s.received} bytes received`,
        "badRequest",
      );
    }
    if (b + 1 < total && bytes.length % (256 * 1024) !== 0) {
      return gError(
        400,
        "Invalid request. The chunk size must be a multiple of 256 KiB, except the last",
        "badRequest",
      );
    }
    let fresh = bytes.subarray(s.received - a);
    const n = ++chunksSeen;
    if (faults && n > faults.after && faults.count > 0) {
      faults.count--;
      const half = Math.floor(fresh.length / 2 / (256 * 1024)) * 256 * 1024;
      fresh = faults.persist === "half" ? fresh.subarray(0, half) : fresh.subarray(0, 0);
      if (fresh.length) {
        s.parts.push(fresh.slice());
        s.received += fresh.length;
      }
      return gError(503, "Backend Error", "backendError");
    }
    if (fresh.length) {
      s.parts.push(fresh.slice());
      s.received += fresh.length;
    }
    return s.received === total ? complete() : kept();
  }

  /**
   * What Drive refuses in file metadata: a property whose key and value take more than 124 bytes
   * (UTF-8), a property value that is not a string, and a contentHints.thumbnail that is not
   * URL-safe base64 of at most 2 MB, or has no mimeType.
   */
  function checkMetadata(body: Record<string, unknown>): Response | undefined {
    const props = body.properties;
    if (props !== undefined) {
      if (typeof props !== "object" || props === null) {
        return gError(400, "Invalid value for: properties", "invalid");
      }
      for (const [k, v] of Object.entries(props)) {
        if (typeof v !== "string") {
          return gError(400, `Invalid value for property: ${k}`, "invalid");
        }
        if (new TextEncoder().encode(k + v).length > 124) {
          return gError(
            400,
            `The size of the property ${k} exceeds the limit of 124 bytes for key and value`,
            "invalidProperty",
          );
        }
      }
    }
    const hints = body.contentHints as { thumbnail?: { image?: unknown; mimeType?: unknown } };
    const t = hints?.thumbnail;
    if (t !== undefined) {
      if (typeof t.image !== "string" || !/^[A-Za-z0-9_-]*={0,2}$/.test(t.image)) {
        return gError(400, "Invalid value for: contentHints.thumbnail.image", "invalid");
      }
      if (typeof t.mimeType !== "string" || t.mimeType === "") {
        return gError(400, "Required: contentHints.thumbnail.mimeType", "required");
      }
      if (b64urlDecode(t.image.replace(/=+$/, "")).length > 2 * 1024 * 1024) {
        return gError(400, "The thumbnail is larger than 2 MB", "thumbnailTooLarge");
      }
    }
  }

  async function json(req: Request): Promise<Record<string, unknown> | Response> {
    if (!/^application\/json/.test(req.headers.get("content-type") ?? "")) {
      return gError(400, "Bad Request: Content-Type must be application/json", "badContent");
    }
    try {
      return JSON.parse(await req.text());
    } catch {
      return gError(400, "Parse Error", "parseError");
    }
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const p = url.pathname;
    if (p === "/token" && req.method === "POST") return await token(req);
    if (p === "/o/oauth2/auth" && req.method === "GET") return authorize(url);
    const h = req.headers.get("authorization") ?? "";
    const exp = h.startsWith("Bearer ") ? tokens.get(h.slice(7)) : undefined;
    if (!exp || exp < Date.now()) {
      stats.unauthorized++;
      return gError(401, "Invalid Credentials", "authError");
    }
    const unknownField = badField(url.searchParams.get("fields"));
    if (unknownField !== undefined) {
      return gError(400, `Invalid field selection ${unknownField}`, "invalidParameter");
    }
    if (p === "/upload/drive/v3/files" && req.method === "POST") {
      if (url.searchParams.get("uploadType") !== "resumable") {
        return gError(400, "Invalid uploadType", "invalidParameter");
      }
      const body = await json(req);
      if (body instanceof Response) return body;
      const size = Number(req.headers.get("x-upload-content-length"));
      if (typeof body.name !== "string") return gError(400, "Required: name", "required");
      const refused = checkMetadata(body);
      if (refused) return refused;
      const id = crypto.randomUUID();
      sessions.set(id, {
        id: newId(),
        name: body.name,
        mimeType: String(body.mimeType ?? "application/octet-stream"),
        parents: (body.parents as string[]) ?? [],
        properties: (body.properties as Record<string, string>) ?? {},
        contentHints: body.contentHints as FakeFile["contentHints"],
        modifiedTime: new Date().toISOString(),
        trashed: false,
        permissions: [],
        size,
        parts: [],
        received: 0,
      });
      stats.sessions++;
      return new Response(null, {
        status: 200,
        headers: { location: `${base}/upload/drive/v3/files?uploadType=resumable&upload_id=${id}` },
      });
    }
    if (p === "/upload/drive/v3/files" && req.method === "PUT") return await chunk(req, url);
    if (p === "/drive/v3/files" && req.method === "GET") {
      const q = url.searchParams.get("q") ?? "";
      const preds = parseQuery(q);
      if (!preds) return gError(400, `Invalid Value: q ${q}`, "invalid");
      const all = [...files.values()].filter((f) => preds.every((pr) => pr(f)));
      const size = options.pageSize ?? 2;
      const start = Number(url.searchParams.get("pageToken") ?? "0");
      const page = all.slice(start, start + size);
      stats.pages++;
      return Response.json({
        files: page.map(view),
        ...(start + size < all.length ? { nextPageToken: String(start + size) } : {}),
      });
    }
    if (p === "/drive/v3/files" && req.method === "POST") {
      const body = await json(req);
      if (body instanceof Response) return body;
      if (typeof body.name !== "string") return gError(400, "Required: name", "required");
      const f = put({ name: body.name, mimeType: String(body.mimeType) });
      return Response.json({ id: f.id });
    }
    let m = p.match(/^\/drive\/v3\/files\/([^/]+)\/permissions$/);
    if (m && req.method === "POST") {
      const f = files.get(m[1]);
      if (!f) return gError(404, `File not found: ${m[1]}.`, "notFound");
      const body = await json(req);
      if (body instanceof Response) return body;
      if (!body.type || !body.role) return gError(400, "Required: type, role", "required");
      if (body.type === "user" && typeof body.emailAddress !== "string") {
        return gError(400, "Required: emailAddress", "required");
      }
      const perm = {
        id: String(Math.floor(Math.random() * 1e12)),
        type: String(body.type),
        role: String(body.role),
        emailAddress: String(body.emailAddress),
      };
      f.permissions.push(perm);
      return Response.json({ id: perm.id });
    }
    m = p.match(/^\/drive\/v3\/files\/([^/]+)$/);
    if (m) {
      const f = files.get(m[1]);
      if (!f) return gError(404, `File not found: ${m[1]}.`, "notFound");
      if (req.method === "DELETE") {
        files.delete(f.id);
        return new Response(null, { status: 204 });
      }
      if (req.method === "GET" && url.searchParams.get("alt") === "media") {
        const r = req.headers.get("range")?.match(/^bytes=(\d+)-(\d*)$/);
        if (r) {
          const from = Number(r[1]);
          const to = r[2] ? Math.min(Number(r[2]), f.bytes.length - 1) : f.bytes.length - 1;
          if (from >= f.bytes.length) {
            return gError(416, "Range not satisfiable", "rangeNotSatisfiable");
          }
          return new Response(f.bytes.slice(from, to + 1), {
            status: 206,
            headers: {
              "content-range": `bytes ${from}-${to}/${f.bytes.length}`,
              "accept-ranges": "bytes",
            },
          });
        }
        return new Response(f.bytes.slice(), {
          headers: { "content-length": String(f.bytes.length), "accept-ranges": "bytes" },
        });
      }
      if (req.method === "GET") return Response.json(view(f));
    }
    return gError(404, "Not Found", "notFound");
  }

  function put(f: Partial<FakeFile> & { name: string }): FakeFile {
    const file: FakeFile = {
      id: newId(),
      mimeType: "application/octet-stream",
      parents: [],
      properties: {},
      bytes: new Uint8Array(),
      modifiedTime: new Date().toISOString(),
      trashed: false,
      permissions: [],
      ...f,
    };
    files.set(file.id, file);
    return file;
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, handle);
  return {
    url: base,
    tokenUri: `${base}/token`,
    authUri: `${base}/o/oauth2/auth`,
    files,
    stats,
    addAccount: (email, key) => void accounts.set(email, key),
    addClient: (id, secret) => void clients.set(id, secret),
    revokeRefreshTokens: () => refreshTokens.clear(),
    failChunks: ({ after = 0, count, persist = "none" }) => {
      chunksSeen = 0;
      faults = { after, count, persist };
    },
    issueToken: () => Promise.resolve(issue()),
    corruptNextUpload: () => void (corruptNext = true),
    expireTokens: () => {
      for (const k of tokens.keys()) tokens.set(k, 0);
    },
    put,
    stop: () => server.shutdown(),
  };
}
