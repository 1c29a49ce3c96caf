/**
 * A strict Singularity Registry Server fake (singularityhub/sregistry at 10fc5d5), written from
 * ../shared/reference/registry-server-behaviour.md and sregistry-clients.md §4, quirks included:
 *
 * - The signed header is parsed as the server does (one space, then commas, then the first `=`;
 *   the credential split on `/` into kind, base64 user and hour) and checked for the scheme word,
 *   the kind of the endpoint, the server's current UTC hour, a known user and the HMAC. A refused
 *   signature on `chunked_upload`, `/upload`, delete and build is **500 HTML** (as with DEBUG);
 *   on a private pull it is 403.
 * - `GET /api/container/<c>/<n>:<t>[@<v>]`: public collections answer anyone; private ones 403
 *   `{"detail"}` unless signed with kind `pull` by the owner. The weekly download limit answers
 *   **HTTP 200 with the body `429`**, and 403 on the download itself.
 * - `GET /api/collections/` and `/api/containers/`: limit/offset pagination, page size 10,
 *   `{count, next, previous, results}`, public only. `GET /api/collection/<name>`: the collection,
 *   or `{}` when missing or private. Container search by collection, name and tag; label search.
 * - Push: `POST /api/upload/chunked_upload` (kind `push`) -> `{"cid"}`, creating the collection;
 *   `POST /upload` multipart `SREGISTRY_EVENT, name, collection (the cid), tag, file1` (kind
 *   `upload`, over the collection's name) -> `{"message": "Upload Complete"}`. Bodies over the
 *   nginx limit are **413 HTML**. The version is the md5 at first and `sha256.<hex>` a moment
 *   later, as the background worker does.
 * - `gatewayTimeouts` answers 504 after storing the upload (nginx timed out, the server finished);
 *   `lostUploads` answers 504 without storing it.
 * - `DELETE /api/container/<c>/<n>:<t>` (kind `delete`) -> 204; frozen -> 403.
 * - `POST /google_build/build/` (kind `build`) -> 201; the container then reports
 *   `metadata.build_metadata.status` QUEUED, WORKING, then SUCCESS (or FAILURE when the recipe
 *   says `FAIL`) on successive reads, and gets its image on success.
 * - DRF errors are `{"detail": "..."}`; unknown routes 404, wrong methods 405.
 * @module
 */

import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** A user of the fake. */
export interface FakeUser {
  /** The user name. */
  username: string;
  /** Its API token. */
  token: string;
  /** May push anywhere. */
  superuser?: boolean;
}

/** Options of {@link startSregistryServerFake}. */
export interface SregistryFakeOptions {
  /** The users. */
  users: FakeUser[];
  /** nginx's client_max_body_size for /upload and the builder (default 10 GB). */
  maxBodyBytes?: number;
  /** USER_COLLECTIONS: users may create collections (default true). */
  userCollections?: boolean;
}

/** How {@link SregistryFake.put} stores a container. */
export interface FakePutOptions {
  /** The collection is private (created so, or made so). */
  private?: boolean;
  /** The collection's owner (default the first user). */
  owner?: string;
  /** The download URL's origin (default the fake's; a fault proxy's for fault tests). */
  domain?: string;
  /** Frozen: delete is refused. */
  frozen?: boolean;
  /** Container GETs and downloads allowed before the weekly limit answers 429. */
  weeklyLimit?: number;
  /** Labels (key -> value). */
  labels?: Record<string, string>;
}

/** A container as the fake keeps it. */
export interface FakeContainer {
  id: number;
  collection: string;
  name: string;
  tag: string;
  data?: Uint8Array;
  md5?: string;
  sha256?: string;
  uploadedAt: number;
  frozen: boolean;
  domain?: string;
  weeklyLimit?: number;
  reads: number;
  labels: Record<string, string>;
  secret: string;
  build?: { states: string[]; recipe: string };
}

/** A running fake. */
export interface SregistryFake {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `<url>/api`. */
  readonly api: string;
  /** Store a container `<collection>/<name>:<tag>`. */
  put(uri: string, data: Uint8Array, options?: FakePutOptions): FakeContainer;
  /** The container stored under `<collection>/<name>:<tag>`. */
  get(uri: string): FakeContainer | undefined;
  /** Added to the server's clock (a server in the next hour: +3600000). */
  clockOffsetMs: number;
  /** The next this many `/upload` requests store the image, then answer 504 (a proxy timeout). */
  gatewayTimeouts: number;
  /** The next this many `/upload` requests answer 504 without storing (the upload was lost). */
  lostUploads: number;
  /** Requests as `METHOD /path?query`. */
  readonly requests: string[];
  /** Why signatures were refused (for assertions). */
  readonly refusals: string[];
  /** Stop it. */
  stop(): Promise<void>;
}

const PAGE = 10;
const SCHEME = "SREGISTRY-HMAC-SHA256";

function hour(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}T${
    p(d.getUTCHours())
  }Z`;
}

const html = (status: number, title: string) =>
  new Response(
    `<html>\r\n<head><title>${status} ${title}</title></head>\r\n<body>\r\n<center><h1>${status} ${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`,
    { status, headers: { "content-type": "text/html" } },
  );
const detail = (status: number, text: string) => Response.json({ detail: text }, { status });
// Django's debug page for an exception in the view (what a refused signature produces).
const serverError = (why: string) =>
  new Response(
    `<!DOCTYPE html><html><head><title>PermissionDenied at /</title></head><body><h1>Server Error</h1><pre>${why}</pre></body></html>`,
    { status: 500, headers: { "content-type": "text/html" } },
  );

/** Start the fake on a free loopback port. */
export function startSregistryServerFake(options: SregistryFakeOptions): SregistryFake {
  const users = new Map(options.users.map((u) => [u.username, u]));
  const maxBody = options.maxBodyBytes ?? 10 * 1024 ** 3;
  const collections = new Map<string, { id: number; private: boolean; owner: string }>();
  const containers = new Map<string, FakeContainer>();
  const requests: string[] = [];
  const refusals: string[] = [];
  let ids = 0;
  let cids = 0;
  let origin = "";
  const ac = new AbortController();

  const fake: SregistryFake = {
    url: "",
    api: "",
    clockOffsetMs: 0,
    gatewayTimeouts: 0,
    lostUploads: 0,
    requests,
    refusals,
    put(uri, data, o = {}) {
      const m = /^([^/]+)\/([^/:]+):([^/:]+)$/.exec(uri);
      if (!m) throw new Error(`put wants collection/name:tag, not ${uri}`);
      const col = ensureCollection(m[1], o.owner ?? options.users[0].username);
      if (o.private !== undefined) col.private = o.private;
      const c = store(m[1], m[2], m[3], data);
      c.frozen = o.frozen ?? false;
      c.domain = o.domain;
      c.weeklyLimit = o.weeklyLimit;
      c.labels = o.labels ?? {};
      c.uploadedAt = 0;
      return c;
    },
    get: (uri) => containers.get(uri),
    async stop() {
      ac.abort();
      await server.finished;
    },
  };

  function ensureCollection(name: string, owner: string) {
    let c = collections.get(name);
    if (!c) {
      c = { id: ++cids, private: false, owner };
      collections.set(name, c);
    }
    return c;
  }

  function store(collection: string, name: string, tag: string, data: Uint8Array) {
    const key = `${collection}/${name}:${tag}`;
    const c: FakeContainer = containers.get(key) ?? {
      id: ++ids,
      collection,
      name,
      tag,
      uploadedAt: Date.now(),
      frozen: false,
      reads: 0,
      labels: {},
      secret: crypto.randomUUID(),
    };
    c.data = data;
    c.md5 = createHash("md5").update(data).digest("hex");
    c.sha256 = createHash("sha256").update(data).digest("hex");
    c.uploadedAt = Date.now();
    c.build = undefined;
    containers.set(key, c);
    return c;
  }

  /** validate_request: the user the header signs for, or why not. */
  function validate(
    header: string | null,
    kind: string,
    image: { collection: string; name: string; tag: string },
  ): FakeUser | string {
    if (!header) return "no Authorization header";
    const parts = header.split(" ");
    if (parts.length !== 2) return "the header is not '<scheme> <values>'";
    if (parts[0] !== SCHEME) return `wrong scheme ${parts[0]}`;
    const values: Record<string, string> = {};
    for (const item of parts[1].split(",")) {
      const i = item.indexOf("=");
      if (i < 0) return `no = in ${item}`;
      values[item.slice(0, i)] = item.slice(i + 1);
    }
    const credential = values.Credential?.split("/");
    if (!credential || credential.length !== 3 || !values.Signature) return "no Credential";
    const [k, user64, ts] = credential;
    if (k !== kind) return `wrong kind ${k}, wanted ${kind}`;
    const serverHour = hour(Date.now() + fake.clockOffsetMs);
    if (ts !== serverHour) return `stale timestamp ${ts}, server hour ${serverHour}`;
    let username: string;
    try {
      username = new TextDecoder().decode(Uint8Array.from(atob(user64), (c) => c.charCodeAt(0)));
    } catch {
      return "bad base64 user";
    }
    const user = users.get(username);
    if (!user) return `unknown user ${username}`;
    const payload = `${kind}|${image.collection}|${ts}|${image.name}|${image.tag}|`;
    const want = createHmac("sha256", user.token).update(payload).digest("hex");
    const got = values.Signature;
    if (
      got.length !== want.length ||
      !timingSafeEqual(new TextEncoder().encode(got), new TextEncoder().encode(want))
    ) {
      return "signature mismatch";
    }
    return user;
  }

  function check(header: string | null, kind: string, image: {
    collection: string;
    name: string;
    tag: string;
  }): FakeUser | undefined {
    const r = validate(header, kind, image);
    if (typeof r === "string") {
      refusals.push(`${kind}: ${r}`);
      return undefined;
    }
    return r;
  }

  const version = (c: FakeContainer) =>
    c.md5 && Date.now() - c.uploadedAt > 100 ? `sha256.${c.sha256}` : c.md5 ?? null;

  function containerJson(c: FakeContainer) {
    const building = c.build && c.build.states[0] !== "SUCCESS";
    return {
      id: c.id,
      name: c.name,
      image: c.data && !building
        ? `${c.domain ?? origin}/containers/${c.id}/download/${c.secret}`
        : null,
      tag: c.tag,
      add_date: "2024-07-01T10:00:00.000000-06:00",
      metrics: {},
      version: c.data && !building ? version(c) : null,
      frozen: c.frozen,
      metadata: c.build ? { build_metadata: { status: c.build.states[0] } } : {},
      collection: c.collection,
    };
  }

  const listItem = (c: FakeContainer) => ({
    name: c.name,
    tag: c.tag,
    uri: `${c.collection}/${c.name}:${c.tag}`,
    detail: `${origin}/containers/${c.id}`,
  });

  function collectionJson(name: string) {
    const col = collections.get(name)!;
    return {
      id: col.id,
      name,
      add_date: "2024-07-01T10:00:00.000000-06:00",
      modify_date: "2024-07-01T10:00:00.000000-06:00",
      metadata: {},
      containers: [...containers.values()].filter((c) => c.collection === name).map(listItem),
    };
  }

  const publicContainers = () =>
    [...containers.values()].filter((c) => !collections.get(c.collection)?.private);

  function paginate(url: URL, all: unknown[]) {
    const limit = Math.max(1, Math.min(100, Number(url.searchParams.get("limit") ?? PAGE) || PAGE));
    const offset = Math.max(0, Number(url.searchParams.get("offset") ?? 0) || 0);
    const link = (o: number) => `${origin}${url.pathname}?limit=${limit}&offset=${o}`;
    return Response.json({
      count: all.length,
      next: offset + limit < all.length ? link(offset + limit) : null,
      previous: offset > 0 ? link(Math.max(0, offset - limit)) : null,
      results: all.slice(offset, offset + limit),
    });
  }

  /** The body, up to nginx's limit: drained and refused with 413 beyond it. */
  async function readLimited(req: Request): Promise<Uint8Array | undefined> {
    const declared = Number(req.headers.get("content-length") ?? NaN);
    const chunks: Uint8Array[] = [];
    let size = 0;
    let over = Number.isFinite(declared) && declared > maxBody;
    if (req.body) {
      for await (const chunk of req.body) {
        size += chunk.byteLength;
        if (size > maxBody) over = true;
        if (!over) chunks.push(chunk);
      }
    }
    if (over) return undefined;
    const out = new Uint8Array(size);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.byteLength;
    }
    return out;
  }

  async function form(req: Request, body: Uint8Array): Promise<FormData | undefined> {
    const type = req.headers.get("content-type") ?? "";
    if (!type.startsWith("multipart/form-data")) return undefined;
    try {
      return await new Response(body as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": type },
      }).formData();
    } catch {
      return undefined;
    }
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    const path = decodeURIComponent(url.pathname);
    const auth = req.headers.get("authorization");

    const cm = /^\/api\/container\/([^/]+)\/([^/:@]+)(?::([^/@]+))?(?:@([^/]+))?\/?$/.exec(path);
    if (cm) {
      const [, collection, name, tag = "latest", ver] = cm;
      const c = containers.get(`${collection}/${name}:${tag}`);
      if (req.method === "DELETE") {
        const user = check(auth, "delete", { collection, name, tag });
        if (!user) return serverError("Invalid credentials");
        if (!c) return detail(404, "Container Not Found");
        const col = collections.get(collection)!;
        if (!user.superuser && col.owner !== user.username) return detail(403, "Unauthorized");
        if (c.frozen) {
          return detail(403, `${collection}/${name}:${tag} is frozen, delete not allowed.`);
        }
        containers.delete(`${collection}/${name}:${tag}`);
        return new Response(null, { status: 204 });
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        return detail(405, `Method "${req.method}" not allowed.`);
      }
      if (!c || (ver && ver !== version(c) && ver !== c.md5 && ver !== `sha256.${c.sha256}`)) {
        return detail(404, "Not found.");
      }
      const col = collections.get(collection)!;
      if (col.private) {
        if (!auth) {
          return detail(403, "You do not have permission to perform this action.");
        }
        const user = check(auth, "pull", { collection, name, tag });
        if (!user || (!user.superuser && user.username !== col.owner)) {
          return detail(403, "You do not have permission to perform this action.");
        }
      }
      if (c.weeklyLimit !== undefined && ++c.reads > c.weeklyLimit) {
        // Response(429) in the view: DRF renders the number as the body of a 200.
        return new Response("429", { headers: { "content-type": "application/json" } });
      }
      if (c.build && c.build.states.length > 1) {
        const out = containerJson(c);
        c.build.states.shift();
        return Response.json(out);
      }
      return Response.json(containerJson(c));
    }

    const dl = /^\/containers\/(\d+)\/download\/([^/]+)$/.exec(path);
    if (dl) {
      if (req.method !== "GET" && req.method !== "HEAD") return detail(405, "Method not allowed.");
      const c = [...containers.values()].find((x) => x.id === Number(dl[1]));
      if (!c || c.secret !== dl[2] || !c.data) return new Response("Not Found", { status: 404 });
      if (c.weeklyLimit !== undefined && ++c.reads > c.weeklyLimit) return html(403, "Forbidden");
      return new Response(req.method === "HEAD" ? null : c.data as Uint8Array<ArrayBuffer>, {
        headers: {
          "content-type": "application/img",
          "content-length": String(c.data.length),
          "content-disposition": `attachment; filename=${c.collection}-${c.name}-${c.tag}.sif`,
        },
      });
    }

    if (req.method === "GET" && (path === "/api/collections/" || path === "/api/collections")) {
      const names = [...collections.entries()].filter(([, c]) => !c.private).map(([n]) => n);
      return paginate(url, names.sort().map(collectionJson));
    }
    if (req.method === "GET" && (path === "/api/containers/" || path === "/api/containers")) {
      return paginate(url, publicContainers().map(containerJson));
    }
    const colm = /^\/api\/collection\/([^/]+)\/?$/.exec(path);
    if (colm && req.method === "GET") {
      const col = collections.get(colm[1]);
      return Response.json(!col || col.private ? {} : collectionJson(colm[1]));
    }
    const search =
      /^\/api\/container\/search(?:\/collection\/([^/]+))?\/name\/([^/]+)(?:\/tag\/([^/]+))?\/?$/
        .exec(path);
    if (search && req.method === "GET") {
      const [, collection, name, tag] = search;
      const hits = publicContainers().filter((c) =>
        (!collection || c.collection === collection) && c.name.includes(name) &&
        (!tag || c.tag === tag)
      );
      return Response.json(hits.map(containerJson));
    }
    const labels = /^\/api\/labels\/search(?:\/([^/]+)\/key)?(?:\/([^/]+)\/value)?\/?$/.exec(path);
    if (labels && req.method === "GET") {
      const [, key, value] = labels;
      const found = new Map<string, { key: string; value: string; containers: string[] }>();
      for (const c of publicContainers()) {
        for (const [k, v] of Object.entries(c.labels)) {
          if (key && k.toLowerCase() !== key.toLowerCase()) continue;
          if (value && v.toLowerCase() !== value.toLowerCase()) continue;
          const e = found.get(`${k}\0${v}`) ?? { key: k, value: v, containers: [] };
          e.containers.push(`${c.collection}/${c.name}:${c.tag}`);
          found.set(`${k}\0${v}`, e);
        }
      }
      return Response.json([...found.values()]);
    }

    if (path === "/api/upload/chunked_upload" || path === "/api/upload/chunked_upload/") {
      if (req.method !== "POST") return detail(405, `Method "${req.method}" not allowed.`);
      let body: { collection?: unknown; name?: unknown; tag?: unknown };
      try {
        body = await req.json();
      } catch {
        return detail(400, "JSON parse error");
      }
      const { collection, name, tag } = body;
      if (typeof collection !== "string" || typeof name !== "string" || typeof tag !== "string") {
        return detail(400, "collection, name and tag are required");
      }
      const user = check(auth, "push", { collection, name, tag });
      if (!user) return serverError("Invalid credentials");
      const col = collections.get(collection);
      if (!col && !user.superuser && options.userCollections === false) {
        return detail(403, "You do not have permission to create a collection.");
      }
      if (col && !user.superuser && col.owner !== user.username) {
        return detail(403, "You do not have permission to push to this collection.");
      }
      const c = containers.get(`${collection}/${name}:${tag}`);
      if (c?.frozen) {
        return detail(403, `${collection}/${name}:${tag} is frozen, push not allowed.`);
      }
      return Response.json({ cid: ensureCollection(collection, user.username).id });
    }

    if (path === "/upload" || path === "/upload/") {
      if (req.method !== "POST") return html(405, "Not Allowed");
      const body = await readLimited(req);
      if (!body) return html(413, "Request Entity Too Large");
      const f = await form(req, body);
      if (!f) return html(400, "Bad Request");
      const event = f.get("SREGISTRY_EVENT");
      const cid = f.get("collection");
      const name = f.get("name");
      const tag = f.get("tag");
      const file = f.get("file1");
      if (
        typeof event !== "string" || typeof cid !== "string" || typeof name !== "string" ||
        typeof tag !== "string" || !(file instanceof File)
      ) {
        return serverError("MultiValueDictKeyError: missing upload fields");
      }
      const collection = [...collections.entries()].find(([, c]) => String(c.id) === cid)?.[0];
      if (!collection) return serverError(`Collection.DoesNotExist: ${cid}`);
      const image = { collection, name, tag };
      const user = check(event, "upload", image);
      if (!user || (auth !== null && auth !== event)) return serverError("Invalid credentials");
      if (fake.lostUploads > 0) {
        fake.lostUploads--;
        return html(504, "Gateway Time-out");
      }
      store(collection, name, tag, new Uint8Array(await file.arrayBuffer()));
      if (fake.gatewayTimeouts > 0) {
        fake.gatewayTimeouts--;
        return html(504, "Gateway Time-out");
      }
      return Response.json({ message: "Upload Complete" });
    }

    if (path === "/google_build/build/" || path === "/google_build/build") {
      if (req.method !== "POST") return detail(405, `Method "${req.method}" not allowed.`);
      const body = await readLimited(req);
      if (!body) return html(413, "Request Entity Too Large");
      const f = await form(req, body);
      const fields = ["SREGISTRY_EVENT", "name", "collection", "tag"].map((k) => f?.get(k));
      const recipe = f?.get("datafile");
      if (!fields.every((v) => typeof v === "string") || !(recipe instanceof File)) {
        return detail(400, "SREGISTRY_EVENT, name, collection, tag and datafile are required");
      }
      const [event, name, collection, tag] = fields as string[];
      const user = check(event, "build", { collection, name, tag });
      if (!user) return serverError("Invalid credentials");
      const col = collections.get(collection);
      if (!col) return detail(400, `Collection ${collection} does not exist.`);
      if (!user.superuser && col.owner !== user.username) {
        return detail(403, "You do not own this collection.");
      }
      const text = await recipe.text();
      const c = store(collection, name, tag, new TextEncoder().encode(`built from:\n${text}`));
      c.build = {
        recipe: text,
        states: ["QUEUED", "WORKING", /FAIL/.test(text) ? "FAILURE" : "SUCCESS"],
      };
      return Response.json({ message: "Build submitted", id: c.id }, { status: 201 });
    }

    return detail(404, "Not found.");
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    handle,
  );
  origin = `http://127.0.0.1:${server.addr.port}`;
  (fake as { url: string }).url = origin;
  (fake as { api: string }).api = `${origin}/api`;
  return fake;
}
