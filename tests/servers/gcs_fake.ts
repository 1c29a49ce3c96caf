/**
 * A strict fake of Google Cloud Storage's JSON API and of Google's OAuth2 token endpoint
 * (Deno.serve on 127.0.0.1, a free port), written from Google's documentation:
 *
 * - `POST /token`: the JWT-bearer grant. The assertion's RS256 signature is checked with the
 *   account's public key, and its claims: `iss` a known account, `scope` present, `aud` this
 *   endpoint's URL, `iat`/`exp` at most an hour apart and around now. Failures answer Google's OAuth
 *   error JSON (`{"error": "invalid_grant", "error_description": ...}`).
 * - Every API call needs `Authorization: Bearer <token>` with a token this fake issued and has not
 *   expired (401 with Google's `error.errors[]` shape otherwise); writes need a write scope (403).
 *   A resumable session URI is its own credential, as Google documents, so chunk PUTs need none.
 * - Buckets get/insert; objects list (prefix, pageToken, maxResults, at most `pageLimit` per page),
 *   get (JSON, or `alt=media` with Range), delete, patch (metadata merge, null deletes), ACL insert
 *   (refused on a uniform-access bucket), and the resumable upload: POST `uploadType=resumable` gives
 *   a session URI; PUTs carry `Content-Range`, every chunk but the last a multiple of 256 KiB (400
 *   otherwise), 308 with `Range` says what is persisted, `bytes *\/<size>` asks, the last chunk
 *   answers 200 with the object resource.
 *
 * Fault hooks drop (stall) or 503 a chunk after persisting part of it, and expire every token.
 * @module
 */

import { createHash } from "node:crypto";

/** 256 KiB: the chunk granularity of resumable uploads. */
export const CHUNK_QUANTUM = 256 * 1024;

/** One stored object. */
export interface FakeObject {
  /** Its bytes. */
  data: Uint8Array<ArrayBuffer>;
  /** Custom metadata. */
  metadata?: Record<string, string>;
  /** Content type. */
  contentType: string;
  /** Generation. */
  generation: number;
  /** Metageneration. */
  metageneration: number;
  /** RFC 3339 creation time. */
  timeCreated: string;
  /** RFC 3339 update time. */
  updated: string;
  /** ACL entries added through the ACL API. */
  acl: { entity: string; role: string }[];
}

/** A running fake. */
export interface GcsFake {
  /** `http://127.0.0.1:<port>` (STORAGE_EMULATOR_HOST). */
  readonly url: string;
  /** The token endpoint (a key file's `token_uri`). */
  readonly tokenUri: string;
  /** Buckets: name -> objects. */
  readonly buckets: Map<string, { uniform: boolean; objects: Map<string, FakeObject> }>;
  /** Create a bucket. */
  addBucket(name: string, options?: { uniform?: boolean }): void;
  /** Store an object directly (as another tool would have). */
  put(bucket: string, name: string, data: Uint8Array, metadata?: Record<string, string>): void;
  /** Register a service account's public key. */
  addAccount(email: string, publicKey: CryptoKey): void;
  /** Make every issued token invalid (the next API call with it gets 401). */
  expireTokens(): void;
  /**
   * The scopes of the token an `Authorization` header carries, or undefined when it is not a
   * bearer token this fake issued or it has expired (other Google API fakes share the tokens).
   */
  tokenScopes(authorization: string | null): string[] | undefined;
  /** The next `n` chunk PUTs persist what they got up to a 256 KiB boundary, then stall. */
  dropChunks(n: number): void;
  /** The next `n` chunk PUTs persist what they got up to a 256 KiB boundary, then answer 503. */
  failChunks(n: number): void;
  /** Counters. */
  readonly stats: {
    tokens: number;
    tokenErrors: string[];
    unauthorized: number;
    statusQueries: number;
    chunks: number;
    listPages: number;
    requests: string[];
  };
  /** Stop it. */
  stop(): Promise<void>;
}

/** Options of {@link startGcsFake}. */
export interface GcsFakeOptions {
  /** Most items per list page whatever maxResults says (GCS may return fewer; default 1000). */
  pageLimit?: number;
  /** Lifetime of issued tokens in seconds (default 3599). */
  tokenLifetime?: number;
}

const WRITE_SCOPES = [
  "https://www.googleapis.com/auth/devstorage.full_control",
  "https://www.googleapis.com/auth/devstorage.read_write",
  "https://www.googleapis.com/auth/cloud-platform",
];
const READ_SCOPES = [...WRITE_SCOPES, "https://www.googleapis.com/auth/devstorage.read_only"];

function gError(status: number, message: string, reason: string, extra: object = {}): Response {
  return Response.json(
    {
      error: {
        code: status,
        message,
        errors: [{ message, domain: "global", reason, ...extra }],
      },
    },
    {
      status,
      headers: status === 401
        ? { "www-authenticate": 'Bearer realm="https://accounts.google.com/"' }
        : {},
    },
  );
}

function oauthError(status: number, error: string, description: string): Response {
  return Response.json({ error, error_description: description }, { status });
}

function b64urlDecode(s: string): Uint8Array<ArrayBuffer> {
  const b = s.replaceAll("-", "+").replaceAll("_", "/");
  return Uint8Array.from(atob(b + "=".repeat((4 - b.length % 4) % 4)), (c) => c.charCodeAt(0));
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C (Castagnoli), base64 of its big-endian bytes, as GCS reports `crc32c`. */
function crc32c(data: Uint8Array): string {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  c = (c ^ 0xffffffff) >>> 0;
  return btoa(String.fromCharCode(c >>> 24, (c >>> 16) & 255, (c >>> 8) & 255, c & 255));
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/;

interface Session {
  bucket: string;
  name: string;
  metadata?: Record<string, string>;
  contentType: string;
  total?: number;
  received: Uint8Array[];
  persisted: number;
  done?: FakeObject;
}

/** Start the fake. */
export function startGcsFake(options: GcsFakeOptions = {}): GcsFake {
  const pageLimit = options.pageLimit ?? 1000;
  const buckets: GcsFake["buckets"] = new Map();
  const accounts = new Map<string, CryptoKey>();
  const tokens = new Map<string, { expires: number; scopes: string[] }>();
  const sessions = new Map<string, Session>();
  const stats: GcsFake["stats"] = {
    tokens: 0,
    tokenErrors: [],
    unauthorized: 0,
    statusQueries: 0,
    chunks: 0,
    listPages: 0,
    requests: [],
  };
  let drops = 0;
  let fails = 0;
  let generation = 1_700_000_000_000_000;
  const stalls: (() => void)[] = [];
  const ac = new AbortController();
  let base = "";

  const resource = (bucket: string, name: string, o: FakeObject) => {
    const enc = encodeURIComponent(name);
    return {
      kind: "storage#object",
      id: `${bucket}/${name}/${o.generation}`,
      selfLink: `${base}/storage/v1/b/${bucket}/o/${enc}`,
      mediaLink:
        `${base}/download/storage/v1/b/${bucket}/o/${enc}?generation=${o.generation}&alt=media`,
      name,
      bucket,
      generation: String(o.generation),
      metageneration: String(o.metageneration),
      contentType: o.contentType,
      storageClass: "STANDARD",
      size: String(o.data.length),
      md5Hash: createHash("md5").update(o.data).digest("base64"),
      crc32c: crc32c(o.data),
      etag: `C${o.generation.toString(36)}${o.metageneration}`,
      timeCreated: o.timeCreated,
      updated: o.updated,
      ...(o.metadata && Object.keys(o.metadata).length ? { metadata: { ...o.metadata } } : {}),
    };
  };

  const store = (
    bucket: string,
    name: string,
    data: Uint8Array,
    contentType: string,
    metadata?: Record<string, string>,
  ): FakeObject => {
    const t = new Date().toISOString();
    const o: FakeObject = {
      data: data.slice(),
      metadata,
      contentType,
      generation: ++generation,
      metageneration: 1,
      timeCreated: t,
      updated: t,
      acl: [],
    };
    buckets.get(bucket)!.objects.set(name, o);
    return o;
  };

  async function tokenEndpoint(req: Request): Promise<Response> {
    const fail = (s: number, e: string, d: string) => {
      stats.tokenErrors.push(`${e}: ${d}`);
      return oauthError(s, e, d);
    };
    if (req.method !== "POST") return fail(405, "invalid_request", "Method not allowed");
    if (!/^application\/x-www-form-urlencoded/i.test(req.headers.get("content-type") ?? "")) {
      return fail(400, "invalid_request", "Invalid Content-Type");
    }
    const form = new URLSearchParams(await req.text());
    const grant = form.get("grant_type");
    if (grant !== "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      return fail(400, "unsupported_grant_type", `Invalid grant_type: ${grant ?? ""}`);
    }
    const assertion = form.get("assertion");
    if (!assertion) return fail(400, "invalid_request", "Missing required parameter: assertion");
    const parts = assertion.split(".");
    if (parts.length !== 3) return fail(400, "invalid_grant", "Invalid JWT: malformed");
    let header: Record<string, unknown>, claims: Record<string, unknown>;
    try {
      header = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[0])));
      claims = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[1])));
    } catch {
      return fail(400, "invalid_grant", "Invalid JWT: malformed");
    }
    if (header.alg !== "RS256") return fail(400, "invalid_grant", "Invalid JWT: alg must be RS256");
    const key = accounts.get(String(claims.iss));
    if (!key) return fail(400, "invalid_grant", "Invalid grant: account not found");
    const ok = await crypto.subtle.verify(
      "RSASSA-PKCS1-v1_5",
      key,
      b64urlDecode(parts[2]),
      new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
    );
    if (!ok) return fail(400, "invalid_grant", "Invalid JWT Signature.");
    if (claims.aud !== `${base}/token`) {
      return fail(400, "invalid_grant", "Invalid JWT: Failed audience check.");
    }
    const now = Math.floor(Date.now() / 1000);
    const iat = Number(claims.iat), exp = Number(claims.exp);
    if (
      !Number.isInteger(iat) || !Number.isInteger(exp) || exp <= iat || exp - iat > 3600 ||
      iat > now + 300 || exp < now - 300
    ) {
      return fail(
        400,
        "invalid_grant",
        "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
      );
    }
    if (typeof claims.scope !== "string" || claims.scope.trim() === "") {
      return fail(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.");
    }
    stats.tokens++;
    const token = `ya29.fake-${crypto.randomUUID()}`;
    const life = options.tokenLifetime ?? 3599;
    tokens.set(token, { expires: Date.now() + life * 1000, scopes: claims.scope.split(" ") });
    return Response.json({ access_token: token, expires_in: life, token_type: "Bearer" });
  }

  /** undefined when the caller may go on; else the refusal. */
  function checkAuth(req: Request, write: boolean): Response | undefined {
    const h = req.headers.get("authorization");
    const t = h?.startsWith("Bearer ") ? tokens.get(h.slice(7)) : undefined;
    if (!t || t.expires < Date.now()) {
      stats.unauthorized++;
      return gError(401, "Invalid Credentials", "authError", {
        locationType: "header",
        location: "Authorization",
      });
    }
    if (!t.scopes.some((s) => (write ? WRITE_SCOPES : READ_SCOPES).includes(s))) {
      return gError(403, "Insufficient Permission", "insufficientPermissions");
    }
    return undefined;
  }

  async function readJson(req: Request): Promise<Record<string, unknown> | Response> {
    if (!/^application\/json/i.test(req.headers.get("content-type") ?? "")) {
      return gError(400, "Invalid Content-Type; expected application/json", "invalid");
    }
    try {
      const v = JSON.parse(await req.text());
      if (v && typeof v === "object" && !Array.isArray(v)) return v;
    } catch {
      // below
    }
    return gError(400, "Parse Error", "parseError");
  }

  function media(req: Request, o: FakeObject): Response {
    const headers = new Headers({
      "content-type": o.contentType,
      "accept-ranges": "bytes",
      etag: `"${createHash("md5").update(o.data).digest("hex")}"`,
      "last-modified": new Date(o.updated).toUTCString(),
      "x-goog-generation": String(o.generation),
      "x-goog-hash": `crc32c=${crc32c(o.data)},md5=${
        createHash("md5").update(o.data).digest("base64")
      }`,
    });
    const range = req.headers.get("range");
    const size = o.data.length;
    if (!range) {
      headers.set("content-length", String(size));
      return new Response(req.method === "HEAD" ? null : o.data.slice(), { status: 200, headers });
    }
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (!m) return gError(400, `Invalid range: ${range}`, "invalid");
    const start = Number(m[1]);
    const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (start >= size || end < start) {
      return new Response(null, { status: 416, headers: { "content-range": `bytes */${size}` } });
    }
    headers.set("content-range", `bytes ${start}-${end}/${size}`);
    headers.set("content-length", String(end - start + 1));
    return new Response(o.data.slice(start, end + 1), { status: 206, headers });
  }

  async function startUpload(req: Request, bucket: string, q: URLSearchParams) {
    const denied = checkAuth(req, true);
    if (denied) return denied;
    if (!buckets.has(bucket)) {
      return gError(404, "The specified bucket does not exist.", "notFound");
    }
    let meta: Record<string, unknown> = {};
    const text = await req.text();
    if (text !== "") {
      if (!/^application\/json/i.test(req.headers.get("content-type") ?? "")) {
        return gError(400, "Invalid Content-Type; expected application/json", "invalid");
      }
      try {
        meta = JSON.parse(text);
      } catch {
        return gError(400, "Parse Error", "parseError");
      }
    }
    const name = q.get("name") ?? (typeof meta.name === "string" ? meta.name : undefined);
    if (!name) return gError(400, "Required", "required");
    const md = meta.metadata as Record<string, unknown> | undefined;
    if (md !== undefined) {
      if (typeof md !== "object" || md === null) return gError(400, "Invalid metadata", "invalid");
      for (const [k, v] of Object.entries(md)) {
        if (typeof v !== "string") {
          return gError(400, `Invalid value for metadata key ${k}: must be a string`, "invalid");
        }
      }
      if (JSON.stringify(md).length > 8192) {
        return gError(400, "Metadata is larger than 8 KiB", "invalid");
      }
    }
    const lengthHeader = req.headers.get("x-upload-content-length");
    const id = crypto.randomUUID().replaceAll("-", "");
    sessions.set(id, {
      bucket,
      name,
      metadata: md as Record<string, string> | undefined,
      contentType: typeof meta.contentType === "string"
        ? meta.contentType
        : req.headers.get("x-upload-content-type") ?? "application/octet-stream",
      total: lengthHeader ? Number(lengthHeader) : undefined,
      received: [],
      persisted: 0,
    });
    const loc = `${base}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${
      encodeURIComponent(name)
    }&upload_id=${id}`;
    return new Response(null, { status: 200, headers: { location: loc } });
  }

  const incomplete = (s: Session) =>
    new Response(null, {
      status: 308,
      headers: s.persisted > 0 ? { range: `bytes=0-${s.persisted - 1}` } : {},
    });

  function persist(s: Session, bytes: Uint8Array) {
    s.received.push(bytes);
    s.persisted += bytes.length;
  }

  function finalize(s: Session): Response {
    const all = new Uint8Array(s.persisted);
    let off = 0;
    for (const c of s.received) {
      all.set(c, off);
      off += c.length;
    }
    s.done = store(s.bucket, s.name, all, s.contentType, s.metadata);
    return Response.json(resource(s.bucket, s.name, s.done));
  }

  async function putChunk(req: Request, s: Session): Promise<Response> {
    const cr = req.headers.get("content-range");
    if (!cr) return gError(400, "Missing Content-Range header", "invalid");
    const q = /^bytes \*\/(\d+|\*)$/.exec(cr);
    if (q) {
      stats.statusQueries++;
      await req.body?.cancel();
      if (s.done) return Response.json(resource(s.bucket, s.name, s.done));
      if (q[1] !== "*") {
        const total = Number(q[1]);
        if (s.total !== undefined && s.total !== total) {
          return gError(400, "Total size mismatch", "invalid");
        }
        s.total = total;
        if (s.persisted === total) return finalize(s);
      }
      return incomplete(s);
    }
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr);
    if (!m) return gError(400, `Invalid Content-Range: ${cr}`, "invalid");
    const start = Number(m[1]), end = Number(m[2]);
    const total = m[3] === "*" ? undefined : Number(m[3]);
    if (end < start) return gError(400, `Invalid Content-Range: ${cr}`, "invalid");
    if (total !== undefined) {
      if (s.total !== undefined && s.total !== total) {
        return gError(400, "Total size mismatch", "invalid");
      }
      if (end >= total) return gError(400, `Invalid Content-Range: ${cr}`, "invalid");
      s.total = total;
    }
    if (s.done) {
      await req.body?.cancel();
      return Response.json(resource(s.bucket, s.name, s.done));
    }
    const len = end - start + 1;
    const declared = Number(req.headers.get("content-length") ?? NaN);
    if (declared !== len) {
      await req.body?.cancel();
      return gError(400, "Content-Length does not match Content-Range", "invalid");
    }
    const last = total !== undefined && end + 1 === total;
    if (!last && len % CHUNK_QUANTUM !== 0) {
      await req.body?.cancel();
      return gError(
        400,
        `Invalid request. The number of bytes uploaded is required to be equal or greater than 262144, except for the final request (it's recommended to be the exact multiple of 262144). The received request contained ${len} bytes, which does not meet this requirement.`,
        "invalid",
      );
    }
    if (start > s.persisted) {
      await req.body?.cancel();
      return gError(
        400,
        `Invalid request. According to the Content-Range header, the upload offset is ${start} byte(s), which exceeds already uploaded size of ${s.persisted} byte(s).`,
        "invalid",
      );
    }
    stats.chunks++;
    if (drops > 0 || fails > 0) {
      const drop = drops > 0;
      if (drop) drops--;
      else fails--;
      // Take part of the chunk, keep it up to a 256 KiB boundary, then stall or fail.
      const reader = req.body!.getReader();
      const want = Math.max(1, Math.floor(len / 2));
      const got: Uint8Array[] = [];
      let n = 0;
      while (n < want) {
        const r = await reader.read();
        if (r.done) break;
        got.push(r.value);
        n += r.value.length;
      }
      const bytes = new Uint8Array(n);
      let off = 0;
      for (const c of got) {
        bytes.set(c, off);
        off += c.length;
      }
      const keep = Math.floor(Math.min(n, len) / CHUNK_QUANTUM) * CHUNK_QUANTUM;
      const skip = s.persisted - start;
      if (keep > skip) persist(s, bytes.slice(skip, keep));
      if (drop) {
        reader.cancel().catch(() => {});
        await new Promise<void>((resolve) => stalls.push(resolve));
        return new Response(null, { status: 503 });
      }
      reader.cancel().catch(() => {});
      return gError(503, "Backend Error", "backendError");
    }
    const body = new Uint8Array(await req.arrayBuffer());
    if (body.length !== len) return gError(400, "Body does not match Content-Range", "invalid");
    const skip = s.persisted - start;
    if (skip < len) persist(s, body.slice(skip));
    if (s.total !== undefined && s.persisted === s.total) return finalize(s);
    return incomplete(s);
  }

  async function objectApi(
    req: Request,
    bucket: string,
    name: string | undefined,
    q: URLSearchParams,
    download: boolean,
  ): Promise<Response> {
    const b = buckets.get(bucket);
    const write = !["GET", "HEAD"].includes(req.method);
    const denied = checkAuth(req, write);
    if (denied) return denied;
    if (!b) return gError(404, "The specified bucket does not exist.", "notFound");
    if (name === undefined) {
      if (req.method !== "GET") return gError(405, "Method not allowed", "methodNotAllowed");
      stats.listPages++;
      const prefix = q.get("prefix") ?? "";
      const max = Math.min(Number(q.get("maxResults") ?? 1000) || 1000, pageLimit);
      const token = q.get("pageToken");
      let after = "";
      if (token !== null) {
        try {
          after = new TextDecoder().decode(b64urlDecode(token));
        } catch {
          return gError(400, "Invalid page token", "invalid");
        }
      }
      const names = [...b.objects.keys()].filter((n) => n.startsWith(prefix) && n > after).sort();
      const page = names.slice(0, max);
      const more = names.length > max;
      const last = page.at(-1) ?? "";
      return Response.json({
        kind: "storage#objects",
        ...(more
          ? {
            nextPageToken: btoa(last).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, ""),
          }
          : {}),
        ...(page.length ? { items: page.map((n) => resource(bucket, n, b.objects.get(n)!)) } : {}),
      });
    }
    const aclPath = name.endsWith("\u0000acl");
    const objName = aclPath ? name.slice(0, -4) : name;
    const o = b.objects.get(objName);
    const gen = q.get("generation");
    if (!o || (gen !== null && gen !== String(o.generation))) {
      return gError(404, `No such object: ${bucket}/${objName}`, "notFound");
    }
    if (aclPath) {
      if (req.method !== "POST") return gError(405, "Method not allowed", "methodNotAllowed");
      const body = await readJson(req);
      if (body instanceof Response) return body;
      if (b.uniform) {
        return gError(
          400,
          "Cannot insert legacy ACL for an object when uniform bucket-level access is enabled. Read more at https://cloud.google.com/storage/docs/uniform-bucket-level-access",
          "invalid",
        );
      }
      if (typeof body.entity !== "string" || typeof body.role !== "string") {
        return gError(400, "Required", "required");
      }
      o.acl.push({ entity: body.entity, role: body.role });
      return Response.json({
        kind: "storage#objectAccessControl",
        entity: body.entity,
        role: body.role,
      });
    }
    const alt = q.get("alt") ?? "json";
    switch (req.method) {
      case "GET":
      case "HEAD":
        if (download || alt === "media") return media(req, o);
        if (alt !== "json") return gError(400, `Invalid alt: ${alt}`, "invalid");
        return Response.json(resource(bucket, objName, o));
      case "DELETE":
        b.objects.delete(objName);
        return new Response(null, { status: 204 });
      case "PATCH": {
        const body = await readJson(req);
        if (body instanceof Response) return body;
        if (body.metadata !== undefined) {
          const next = { ...o.metadata };
          for (const [k, v] of Object.entries(body.metadata as Record<string, unknown>)) {
            if (v === null) delete next[k];
            else if (typeof v === "string") next[k] = v;
            else return gError(400, `Invalid value for metadata key ${k}`, "invalid");
          }
          o.metadata = next;
        }
        o.metageneration++;
        o.updated = new Date().toISOString();
        return Response.json(resource(bucket, objName, o));
      }
      default:
        return gError(405, "Method not allowed", "methodNotAllowed");
    }
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const q = url.searchParams;
    const raw = url.pathname;
    stats.requests.push(`${req.method} ${raw}${url.search}`);
    if (raw === "/token") return await tokenEndpoint(req);
    let m = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(raw);
    if (m) {
      const bucket = decodeURIComponent(m[1]);
      const id = q.get("upload_id");
      if (id !== null) {
        const s = sessions.get(id);
        if (!s || s.bucket !== bucket || req.method !== "PUT") {
          await req.body?.cancel();
          return gError(404, "The requested upload was not found.", "notFound");
        }
        return await putChunk(req, s);
      }
      if (req.method !== "POST") return gError(405, "Method not allowed", "methodNotAllowed");
      const type = q.get("uploadType");
      if (type === null) {
        return gError(
          400,
          "Upload requests must include an uploadType URL parameter and a URL path beginning with /upload/",
          "wrongUrlForUpload",
        );
      }
      if (type !== "resumable") {
        return gError(400, `This fake supports uploadType=resumable only, not ${type}`, "invalid");
      }
      return await startUpload(req, bucket, q);
    }
    m = /^\/(download\/)?storage\/v1\/b\/([^/]+)\/o(?:\/([^/]+)(\/acl)?)?$/.exec(raw);
    if (m) {
      const name = m[3] === undefined
        ? undefined
        : decodeURIComponent(m[3]) + (m[4] ? "\u0000acl" : "");
      if (m[1] && (name === undefined || q.get("alt") !== "media")) {
        return gError(400, "Download requests need alt=media", "invalid");
      }
      return await objectApi(req, decodeURIComponent(m[2]), name, q, m[1] !== undefined);
    }
    if (raw === "/storage/v1/b") {
      const denied = checkAuth(req, req.method !== "GET");
      if (denied) return denied;
      if (req.method !== "POST") return gError(405, "Method not allowed", "methodNotAllowed");
      if (!q.get("project")) return gError(400, "Required parameter: project", "required");
      const body = await readJson(req);
      if (body instanceof Response) return body;
      const name = body.name;
      if (typeof name !== "string") return gError(400, "Required", "required");
      if (!BUCKET_NAME.test(name)) return gError(400, `Invalid bucket name: '${name}'`, "invalid");
      if (buckets.has(name)) {
        return gError(
          409,
          "Your previous request to create the named bucket succeeded and you already own it.",
          "conflict",
        );
      }
      buckets.set(name, { uniform: false, objects: new Map() });
      return Response.json({ kind: "storage#bucket", id: name, name });
    }
    m = /^\/storage\/v1\/b\/([^/]+)$/.exec(raw);
    if (m) {
      const denied = checkAuth(req, req.method !== "GET");
      if (denied) return denied;
      if (req.method !== "GET") return gError(405, "Method not allowed", "methodNotAllowed");
      const name = decodeURIComponent(m[1]);
      const b = buckets.get(name);
      if (!b) return gError(404, "The specified bucket does not exist.", "notFound");
      return Response.json({
        kind: "storage#bucket",
        id: name,
        name,
        iamConfiguration: { uniformBucketLevelAccess: { enabled: b.uniform } },
      });
    }
    await req.body?.cancel();
    return gError(404, "Not Found", "notFound");
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => handle(req),
  );
  base = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  return {
    url: base,
    tokenUri: `${base}/token`,
    buckets,
    addBucket(name, o = {}) {
      buckets.set(name, { uniform: o.uniform ?? false, objects: new Map() });
    },
    put(bucket, name, data, metadata) {
      if (!buckets.has(bucket)) buckets.set(bucket, { uniform: false, objects: new Map() });
      store(bucket, name, data, "application/octet-stream", metadata);
    },
    addAccount: (email, key) => void accounts.set(email, key),
    expireTokens: () => tokens.clear(),
    tokenScopes(h) {
      const t = h?.startsWith("Bearer ") ? tokens.get(h.slice(7)) : undefined;
      return t && t.expires >= Date.now() ? [...t.scopes] : undefined;
    },
    dropChunks: (n) => void (drops = n),
    failChunks: (n) => void (fails = n),
    stats,
    async stop() {
      for (const s of stalls.splice(0)) s();
      ac.abort();
      await server.finished.catch(() => {});
    },
  };
}

/** A generated service account: its key file's JSON and the public key the fake checks. */
export interface TestAccount {
  /** The key file's content. */
  json: string;
  /** The account email. */
  email: string;
  /** Its public key. */
  publicKey: CryptoKey;
  /** The PEM private key (to look for in output). */
  pem: string;
}

/** Generate an RSA key with WebCrypto and a key file naming `tokenUri` (no key is committed). */
export async function makeTestAccount(
  tokenUri: string,
  email = `sregistry-test@fake-project.iam.gserviceaccount.com`,
): Promise<TestAccount> {
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  let b64 = "";
  for (const b of der) b64 += String.fromCharCode(b);
  b64 = btoa(b64);
  const pem = `-----BEGIN PRIVATE KEY-----\n${
    b64.match(/.{1,64}/g)!.join("\n")
  }\n-----END PRIVATE KEY-----\n`;
  const json = JSON.stringify(
    {
      type: "service_account",
      project_id: "fake-project",
      private_key_id: crypto.randomUUID().replaceAll("-", ""),
      private_key: pem,
      client_email: email,
      client_id: "1234567890",
      token_uri: tokenUri,
    },
    null,
    2,
  );
  return { json, email, publicKey: pair.publicKey, pem };
}
