/**
 * A strict fake of the Sylabs library API (as cloud.sylabs.io and Singularity Registry Server serve
 * it), written from scs-library-client's requests and the server's observed behaviour:
 *
 * - config discovery (`/assets/config/config.prod.json`) and `version` (`apiVersion` picks the v2
 *   upload and, from 2.0.0-alpha.2, the per-architecture tags), both without a token;
 * - a bearer-token check on every other call, errors in the library's envelope
 *   `{"data": null, "error": {"code", "message"}}`;
 * - the OCI redirect to a real distribution registry (off with `ociRedirect: false`);
 * - entities, collections, containers and image records: created on POST, 404 until then, bodies
 *   checked (names, ids, `sha256.<hex>` hashes), tags per architecture (v2) or plain (v1, which
 *   answers 415 to a Content-Type header as Singularity Registry Server does);
 * - the legacy transfers on the **real S3 API of a Swift server**: downloads answer 302 to a
 *   SigV4-presigned GET, the v2 upload hands out a presigned PUT, and the multipart upload runs a
 *   real S3 multipart upload (CreateMultipartUpload, presigned UploadPart URLs, and
 *   CompleteMultipartUpload with the client's ETags). An upload is accepted only when the stored
 *   object has the image's sha256 and the declared size; the image's architecture is read from
 *   the uploaded SIF's header, as the library does.
 *
 * Presigned URLs point at a small gateway in front of Swift that forwards every request unchanged
 * (Host included, so the signature holds) and refuses one that carries an Authorization header as
 * S3 does ("Only one auth mechanism allowed"), recording it in `leakedAuth`. The gateway also logs
 * what the store received and injects the suite's faults (a 503 for a part, a cut or slow body);
 * `holdPartsAfter` parks part requests so a test can interrupt a push at a known point.
 * @module
 */

import { createHash, createHmac } from "node:crypto";
import http from "node:http";
import { parseSifHeader } from "../../core/sif.ts";
import { forward } from "./_forward.ts";

/** The S3 side of a Swift server (tests/servers/swift.ts `Swift.s3`). */
export interface FakeS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** Options of {@link startLibraryFake}. */
export interface LibraryFakeOptions {
  /** The token a client must send. */
  token: string;
  /** The registry URL the OCI redirect names. */
  registry?: string;
  /** Registry URL for containers named broken/dropped/slow (a fault proxy). */
  faultRegistry?: string;
  /** The collection seeded images live in (`lib/<namespace>/<name>`), also the registry namespace. */
  namespace: string;
  /** Bytes of every seeded container (tags `latest` and `v1`, amd64). */
  images: Record<string, Uint8Array>;
  /** false: no OCI redirect (404), so clients use the legacy flow. */
  ociRedirect?: boolean;
  /** Image hashes to report instead of the true ones (`sha256.<hex>`), to test verification. */
  hashes?: Record<string, string>;
  /** The object store for legacy transfers (Swift's S3 API); without it they answer 503. */
  s3?: FakeS3;
  /** The bucket (created when missing). Default `library-fake`. */
  bucket?: string;
  /** What `version` reports. Default `2.0.0-alpha.1` (Singularity Registry Server: v1 tags). */
  apiVersion?: string;
  /** Multipart part size the server hands out. Default 5 MiB (S3's minimum). */
  partSize?: number;
  /**
   * Faults for the suite, by container name: `broken` answers 503 on every call naming it, the
   * object store cuts `dropped` after 20,000 bytes and sends `slow` at 24 KiB/s.
   */
  faults?: boolean;
  /** false: no multipart upload (`_multipart` answers 404), as on an older library. */
  multipart?: boolean;
}

/** A running fake. */
export interface LibraryFake {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Authorization headers the presigned host received (must stay empty). */
  leakedAuth: string[];
  /** Every library call after the token check: `METHOD /path`. */
  calls: string[];
  /** Part numbers presigned, in order. */
  partsPresigned: number[];
  /** Requests the object store got through the gateway: `METHOD /bucket/key?query`. */
  storeLog: string[];
  /** The most part uploads the object store received at once. */
  readonly maxPartsInFlight: number;
  /** Body bytes the object store sent for the `slow` image. */
  readonly slowSent: number;
  /** Part presign requests waiting in {@link LibraryFake.holdPartsAfter}. */
  readonly held: number;
  /** Answer `n` more part presign requests, then hold the others until {@link release}. */
  holdPartsAfter(n: number): void;
  /** The object store answers 503 to the next `times` uploads of part `n`. */
  failPart(n: number, times: number): void;
  /** Stop holding: held requests answer 503 (their clients are gone), new ones pass. */
  release(): void;
  /** Stop the servers. */
  stop(): Promise<void>;
}

const envelope = (status: number, message: string) =>
  Response.json({ data: null, error: { code: status, message } }, { status });
const ok = (data: unknown) => Response.json({ data });

const NAME = /^[a-z0-9]+([._-][a-z0-9]+)*$/i;

/** The architecture the uploaded SIF's header names, as the library reads it ("unknown" if none). */
function sifArch(bytes: Uint8Array): string {
  try {
    return parseSifHeader(bytes, { name: "upload", size: bytes.length }).arch;
  } catch {
    return "unknown";
  }
}

/** Go's semver order for the versions the library uses (`2.0.0-alpha.2`). */
function atLeast(version: string, wanted: string): boolean {
  const parse = (v: string) => {
    const [core, pre] = v.replace(/^v/, "").split("-", 2);
    return { core: core.split(".").map(Number), pre };
  };
  const a = parse(version), b = parse(wanted);
  for (let i = 0; i < 3; i++) {
    if ((a.core[i] ?? 0) !== (b.core[i] ?? 0)) return (a.core[i] ?? 0) > (b.core[i] ?? 0);
  }
  if (!a.pre || !b.pre) return !a.pre;
  return a.pre.localeCompare(b.pre, "en", { numeric: true }) >= 0;
}

// ---- SigV4 query presigning, written from AWS's documentation (independent of core/auth). ----

const rfc3986 = (s: string) =>
  encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
const sha256Hex = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

/** A presigned URL: the signature in the query, `UNSIGNED-PAYLOAD`, host (+ `headers`) signed. */
export function presignS3(
  s3: FakeS3,
  method: string,
  path: string,
  query: Record<string, string> = {},
  headers: Record<string, string> = {},
  expires = 900,
): string {
  const u = new URL(s3.endpoint);
  const amz = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const scope = `${amz.slice(0, 8)}/${s3.region}/s3/aws4_request`;
  const h: Record<string, string> = { host: u.host };
  for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = v;
  const names = Object.keys(h).sort();
  const params = {
    ...query,
    "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
    "X-Amz-Credential": `${s3.accessKeyId}/${scope}`,
    "X-Amz-Date": amz,
    "X-Amz-Expires": String(expires),
    "X-Amz-SignedHeaders": names.join(";"),
  };
  const q = Object.entries(params).map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonical = [
    method,
    path,
    q,
    names.map((n) => `${n}:${h[n]}\n`).join(""),
    names.join(";"),
    "UNSIGNED-PAYLOAD",
  ].join("\n");
  const toSign = ["AWS4-HMAC-SHA256", amz, scope, sha256Hex(canonical)].join("\n");
  let key: Uint8Array = new Uint8Array(
    createHmac("sha256", `AWS4${s3.secretAccessKey}`).update(amz.slice(0, 8)).digest(),
  );
  for (const p of [s3.region, "s3", "aws4_request"]) {
    key = new Uint8Array(createHmac("sha256", key).update(p).digest());
  }
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  return `${u.origin}${path}?${q}&X-Amz-Signature=${signature}`;
}

/** The forwarding gateway in front of the object store (see the module doc). */
async function startGateway(
  upstream: string,
  leaked: string[],
  log: string[],
  parts: { now: number; max: number; fail: Map<number, number> },
  faults: StoreFault[],
) {
  const up = new URL(upstream);
  const server = http.createServer((req, res) => {
    log.push(`${req.method} ${req.url}`);
    const part = Number(/[?&]partNumber=(\d+)/.exec(req.url ?? "")?.[1]);
    const failures = parts.fail.get(part) ?? 0;
    if (req.method === "PUT" && failures > 0) {
      parts.fail.set(part, failures - 1);
      req.resume();
      res.writeHead(503, { "content-type": "application/xml" });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>Please reduce your request rate.</Message></Error>`,
      );
      return;
    }
    if (req.method === "PUT" && /[?&]partNumber=/.test(req.url ?? "")) {
      parts.max = Math.max(parts.max, ++parts.now);
      res.on("close", () => parts.now--);
    }
    const auth = req.headers.authorization;
    if (auth && (req.url ?? "").includes("X-Amz-Signature=")) {
      leaked.push(auth);
      req.resume();
      res.writeHead(400, { "content-type": "application/xml" });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified</Message></Error>`,
      );
      return;
    }
    const fault = req.method === "GET"
      ? faults.find((f) => (req.url ?? "").includes(f.key))
      : undefined;
    const out = forward(req, res, up, fault, fault && ((n) => fault.sent += n));
    req.on("error", () => out.destroy());
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}

/** A fault on downloads of one object (matched by its key). */
interface StoreFault {
  key: string;
  dropAfter?: number;
  rate?: number;
  sent: number;
}

interface Entity {
  id: string;
  name: string;
}
interface Collection {
  id: string;
  name: string;
  entity: string;
  entityName: string;
}
interface Container {
  id: string;
  name: string;
  collection: string;
  entityName: string;
  collectionName: string;
  imageTags: Record<string, string>;
  archTags: Record<string, Record<string, string>>;
}
interface Image {
  id: string;
  hash: string;
  container: string;
  description: string;
  size: number;
  uploaded: boolean;
  arch?: string;
  key: string;
  pending?: { size: number; sha256: string };
  upload?: { uploadId: string; size: number; totalParts: number; partSize: number };
}

/** Start the fake (and its object-store gateway) on free ports. */
export async function startLibraryFake(o: LibraryFakeOptions): Promise<LibraryFake> {
  const leakedAuth: string[] = [];
  const calls: string[] = [];
  const partsPresigned: number[] = [];
  const storeLog: string[] = [];
  const apiVersion = o.apiVersion ?? "2.0.0-alpha.1";
  const partSize = o.partSize ?? 5 * 1024 * 1024;
  const bucket = o.bucket ?? "library-fake";
  const inFlight = { now: 0, max: 0, fail: new Map<number, number>() };
  const faults: StoreFault[] = o.faults
    ? [
      { key: "/images/img-dropped.sif?", dropAfter: 20_000, sent: 0 },
      { key: "/images/img-slow.sif?", rate: 24 * 1024, sent: 0 },
    ]
    : [];
  const gateway = o.s3
    ? await startGateway(o.s3.endpoint, leakedAuth, storeLog, inFlight, faults)
    : undefined;
  const s3 = o.s3 && gateway ? { ...o.s3, endpoint: gateway.url } : undefined;
  let ids = 0;
  const newId = (kind: string) => `${kind}${(++ids).toString(16).padStart(8, "0")}`;

  const entities = new Map<string, Entity>();
  const collections = new Map<string, Collection>();
  const containers = new Map<string, Container>();
  const images = new Map<string, Image>();
  const known = new Set(Object.keys(o.images));

  async function store(
    method: string,
    key: string,
    query: Record<string, string> = {},
    body?: Uint8Array<ArrayBuffer> | string,
  ) {
    const res = await fetch(presignS3(s3!, method, `/${bucket}/${key}`, query), { method, body });
    return res;
  }

  function entity(name: string): Entity {
    let e = entities.get(name);
    if (!e) entities.set(name, e = { id: newId("e"), name });
    return e;
  }
  function collection(e: Entity, name: string): Collection {
    const k = `${e.name}/${name}`;
    let c = collections.get(k);
    if (!c) collections.set(k, c = { id: newId("c"), name, entity: e.id, entityName: e.name });
    return c;
  }
  function container(c: Collection, name: string): Container {
    const k = `${c.entityName}/${c.name}/${name}`;
    let n = containers.get(k);
    if (!n) {
      containers.set(
        k,
        n = {
          id: newId("n"),
          name,
          collection: c.id,
          entityName: c.entityName,
          collectionName: c.name,
          imageTags: {},
          archTags: {},
        },
      );
    }
    return n;
  }

  if (s3) {
    const mb = await fetch(presignS3(s3, "PUT", `/${bucket}`), { method: "PUT" });
    await mb.body?.cancel();
    if (mb.status !== 200 && mb.status !== 409) throw new Error(`CreateBucket: ${mb.status}`);
  }
  for (const [name, bytes] of Object.entries(o.images)) {
    const n = container(collection(entity("lib"), o.namespace), name);
    const img: Image = {
      id: `img-${name}`,
      hash: o.hashes?.[name] ?? `sha256.${sha256Hex(bytes)}`,
      container: n.id,
      description: "",
      size: bytes.length,
      uploaded: true,
      arch: "amd64",
      key: `images/img-${name}.sif`,
    };
    images.set(img.id, img);
    n.imageTags.latest = n.imageTags.v1 = img.id;
    n.archTags.amd64 = { latest: img.id, v1: img.id };
    if (s3) {
      const r = await store("PUT", img.key, {}, new Uint8Array(bytes));
      await r.body?.cancel();
      if (r.status !== 200) throw new Error(`seeding ${name}: ${r.status}`);
    }
  }

  let holdBudget: number | undefined;
  let heldCount = 0;
  let releaseAll: () => void = () => {};
  let released = Promise.resolve();

  async function readJson(req: Request): Promise<Record<string, unknown> | Response> {
    try {
      const v = JSON.parse(await req.text());
      if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch { /* below */ }
    return envelope(400, "Request body is not a JSON object");
  }

  /** The image a reference names for an architecture (a tag, or `sha256.<hex>`). */
  function resolve(path: string, tag: string, arch: string): Image | undefined {
    const n = containers.get(path);
    if (!n) return undefined;
    if (tag.startsWith("sha256.")) {
      return [...images.values()].find((i) => i.container === n.id && i.hash === tag);
    }
    const id = n.archTags[arch]?.[tag] ??
      (n.imageTags[tag] && images.get(n.imageTags[tag])?.arch === arch
        ? n.imageTags[tag]
        : undefined);
    return id ? images.get(id) : undefined;
  }

  function record(i: Image) {
    const n = [...containers.values()].find((c) => c.id === i.container)!;
    return {
      id: i.id,
      hash: i.hash,
      size: i.size,
      uploaded: i.uploaded,
      arch: i.arch,
      signed: false,
      container: i.container,
      containerName: n.name,
      collectionName: n.collectionName,
      entityName: n.entityName,
      description: i.description,
    };
  }

  /** After an upload: the object must hold the image's bytes; its SIF header names the arch. */
  async function finish(i: Image, size: number): Promise<Response | undefined> {
    const r = await store("GET", i.key);
    if (r.status !== 200) {
      await r.body?.cancel();
      return envelope(400, `No uploaded object for image ${i.id} (${r.status})`);
    }
    const bytes = new Uint8Array(await r.arrayBuffer());
    if (bytes.length !== size) {
      return envelope(400, `Uploaded size ${bytes.length} does not match ${size}`);
    }
    if (`sha256.${sha256Hex(bytes)}` !== i.hash) {
      await (await store("DELETE", i.key)).body?.cancel();
      return envelope(400, `Uploaded image does not match its hash ${i.hash}`);
    }
    i.size = size;
    i.uploaded = true;
    i.arch = sifArch(bytes);
    i.pending = undefined;
    i.upload = undefined;
    return undefined;
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const p = url.pathname;
    if (p === "/assets/config/config.prod.json") {
      return Response.json({ libraryAPI: { uri: url.origin }, tokenAPI: { uri: url.origin } });
    }
    if (p === "/version") return ok({ version: "v1.0.0", apiVersion });
    if (req.headers.get("authorization") !== `Bearer ${o.token}`) {
      return envelope(401, "Invalid token");
    }
    calls.push(`${req.method} ${p}`);
    if (o.faults && /\/broken(:|$|\?)/.test(p)) return envelope(503, "Service unavailable");
    const arch = url.searchParams.get("arch") || "amd64";
    if (p === "/v1/token-status") return ok({ status: "valid" });
    if (p === "/v1/oci-redirect") {
      if (o.ociRedirect === false || !o.registry) return envelope(404, "Not found");
      const ns = url.searchParams.get("namespace") ?? "";
      const parts = ns.split("/");
      if (parts.length !== 3) return envelope(400, "Bad namespace");
      const name = parts[2];
      if ((url.searchParams.get("accessTypes") ?? "").includes("push")) known.add(name);
      const faulty = ["broken", "dropped", "slow"].includes(name) && o.faultRegistry;
      return ok({
        url: faulty ? o.faultRegistry : o.registry,
        token: "registry-token-from-library",
        name: `${o.namespace}/${name}`,
      });
    }

    // Entities, collections, containers.
    let m = /^\/v1\/(entities|collections|containers)\/(.+)$/.exec(p);
    if (m && req.method === "GET") {
      const map = { entities, collections, containers }[m[1] as "entities"] as Map<string, unknown>;
      const found = map.get(decodeURIComponent(m[2]));
      return found ? ok(found) : envelope(404, `${m[1]} ${m[2]} not found`);
    }
    m = /^\/v1\/(entities|collections|containers)$/.exec(p);
    if (m && req.method === "POST") {
      const body = await readJson(req);
      if (body instanceof Response) return body;
      const name = body.name;
      if (typeof name !== "string" || !NAME.test(name)) {
        return envelope(400, `Invalid name ${JSON.stringify(name)}`);
      }
      if (m[1] === "entities") {
        if (entities.has(name)) return envelope(409, `Entity ${name} already exists`);
        return ok(entity(name));
      }
      if (m[1] === "collections") {
        const e = [...entities.values()].find((x) => x.id === body.entity);
        if (!e) return envelope(400, `Unknown entity ${JSON.stringify(body.entity)}`);
        if (collections.has(`${e.name}/${name}`)) return envelope(409, "Collection exists");
        return ok(collection(e, name));
      }
      const c = [...collections.values()].find((x) => x.id === body.collection);
      if (!c) return envelope(400, `Unknown collection ${JSON.stringify(body.collection)}`);
      if (containers.has(`${c.entityName}/${c.name}/${name}`)) {
        return envelope(409, "Container exists");
      }
      return ok(container(c, name));
    }

    // Image records.
    m = /^\/v1\/(images|imagefile)\/([^/]+\/[^/]+\/[^/:]+):(.+)$/.exec(p);
    if (m && (req.method === "GET" || req.method === "DELETE")) {
      const img = resolve(m[2], m[3], arch);
      if (!img || (m[1] === "imagefile" && !img.uploaded)) {
        return envelope(404, `Image ${m[2]}:${m[3]} (${arch}) not found`);
      }
      if (m[1] === "imagefile") {
        if (req.method !== "GET") return envelope(405, "Method not allowed");
        if (!s3) return envelope(503, "No object store configured");
        return new Response(null, {
          status: 302,
          headers: { location: presignS3(s3, "GET", `/${bucket}/${img.key}`) },
        });
      }
      if (req.method === "DELETE") {
        if (!url.searchParams.get("arch")) return envelope(400, "arch is required");
        images.delete(img.id);
        const n = [...containers.values()].find((c) => c.id === img.container)!;
        for (const map of [n.imageTags, ...Object.values(n.archTags)]) {
          for (const [t, id] of Object.entries(map)) if (id === img.id) delete map[t];
        }
        if (s3) await (await store("DELETE", img.key)).body?.cancel();
        return ok(null);
      }
      return ok(record(img));
    }
    if (p === "/v1/images" && req.method === "POST") {
      const body = await readJson(req);
      if (body instanceof Response) return body;
      if (typeof body.hash !== "string" || !/^sha256\.[0-9a-f]{64}$/.test(body.hash)) {
        return envelope(400, `Invalid image hash ${JSON.stringify(body.hash)}: use sha256.<hex>`);
      }
      const n = [...containers.values()].find((c) => c.id === body.container);
      if (!n) return envelope(400, `Unknown container ${JSON.stringify(body.container)}`);
      if ([...images.values()].some((i) => i.container === n.id && i.hash === body.hash)) {
        return envelope(409, "Image exists");
      }
      const id = newId("i");
      const img: Image = {
        id,
        hash: body.hash,
        container: n.id,
        description: typeof body.description === "string" ? body.description : "",
        size: 0,
        uploaded: false,
        key: `images/${id}.sif`,
      };
      images.set(id, img);
      return ok(record(img));
    }

    // v2 uploads.
    m =
      /^\/v2\/imagefile\/([^/]+)(\/_complete|\/_multipart|\/_multipart_complete|\/_multipart_abort)?$/
        .exec(p);
    if (m) {
      const img = images.get(m[1]);
      if (!img) return envelope(404, `Image ${m[1]} not found`);
      if (!s3) return envelope(503, "No object store configured");
      const body = await readJson(req);
      if (body instanceof Response) return body;
      const step = m[2] ?? "";
      const expect = (method: string) =>
        req.method === method ? undefined : envelope(405, "Method not allowed");
      if (step === "") {
        const bad = expect("POST");
        if (bad) return bad;
        if (typeof body.filesize !== "number" || body.filesize <= 0) {
          return envelope(400, "filesize must be a positive number");
        }
        if (body.sha256sum !== img.hash.slice(7)) {
          return envelope(
            400,
            `sha256sum ${JSON.stringify(body.sha256sum)} is not the image's hash`,
          );
        }
        if (body.md5sum !== undefined && !/^[0-9a-f]{32}$/.test(String(body.md5sum))) {
          return envelope(400, "md5sum is not an MD5 checksum");
        }
        img.pending = { size: body.filesize, sha256: body.sha256sum };
        return ok({ uploadURL: presignS3(s3, "PUT", `/${bucket}/${img.key}`) });
      }
      if (step === "/_complete") {
        const bad = expect("PUT");
        if (bad) return bad;
        if (!img.pending) return envelope(400, "No upload was started for this image");
        const failed = await finish(img, img.pending.size);
        if (failed) return failed;
        return ok({ quota: { quotaTotal: 0, quotaUsage: img.size }, containerUrl: "" });
      }
      if (step.startsWith("/_multipart") && o.multipart === false) {
        return envelope(404, "Not found");
      }
      if (step === "/_multipart" && req.method === "POST") {
        if (typeof body.filesize !== "number" || body.filesize <= 0) {
          return envelope(400, "filesize must be a positive number");
        }
        const r = await store("POST", img.key, { uploads: "" });
        const xml = await r.text();
        const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(xml)?.[1];
        if (!uploadId) return envelope(500, `Object store refused the upload (${r.status})`);
        img.upload = {
          uploadId,
          size: body.filesize,
          totalParts: Math.ceil(body.filesize / partSize),
          partSize,
        };
        return ok({
          uploadID: uploadId,
          totalParts: img.upload.totalParts,
          partSize,
          options: { s3compliant: "true" },
        });
      }
      const u = img.upload;
      if (!u || body.uploadID !== u.uploadId) {
        return envelope(
          404,
          `Upload ${JSON.stringify(body.uploadID)} not found for image ${img.id}`,
        );
      }
      if (step === "/_multipart") {
        const bad = expect("PUT");
        if (bad) return bad;
        const n = body.partNumber;
        if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > u.totalParts) {
          return envelope(400, `partNumber ${JSON.stringify(n)} is not in 1..${u.totalParts}`);
        }
        const want = Math.min(u.partSize, u.size - (n - 1) * u.partSize);
        if (body.partSize !== want) {
          return envelope(
            400,
            `partSize ${JSON.stringify(body.partSize)} of part ${n} is not ${want}`,
          );
        }
        if (typeof body.sha256sum !== "string" || !/^[0-9a-f]{64}$/.test(body.sha256sum)) {
          return envelope(400, "sha256sum of the part is required (s3compliant)");
        }
        if (holdBudget !== undefined) {
          if (holdBudget > 0) holdBudget--;
          else {
            // Held until release(); by then its client has gone (interrupted), so it is never
            // answered with a URL and never counted in partsPresigned.
            heldCount++;
            await released;
            heldCount--;
            return envelope(503, "The part request was held until its client went away");
          }
        }
        partsPresigned.push(n);
        return ok({
          presignedURL: presignS3(s3, "PUT", `/${bucket}/${img.key}`, {
            partNumber: String(n),
            uploadId: u.uploadId,
          }, { "x-amz-content-sha256": body.sha256sum }),
        });
      }
      if (step === "/_multipart_abort") {
        const bad = expect("PUT");
        if (bad) return bad;
        await (await store("DELETE", img.key, { uploadId: u.uploadId })).body?.cancel();
        img.upload = undefined;
        return ok(null);
      }
      const bad = expect("PUT");
      if (bad) return bad;
      const parts = body.completedParts;
      if (
        !Array.isArray(parts) || parts.length !== u.totalParts ||
        parts.some((x, i) => x?.partNumber !== i + 1 || typeof x?.token !== "string" || !x.token)
      ) {
        return envelope(400, `completedParts must list parts 1..${u.totalParts} with their tokens`);
      }
      const xml = `<CompleteMultipartUpload>${
        parts.map((x) =>
          `<Part><PartNumber>${x.partNumber}</PartNumber><ETag>${x.token}</ETag></Part>`
        )
          .join("")
      }</CompleteMultipartUpload>`;
      const r = await store("POST", img.key, { uploadId: u.uploadId }, xml);
      const answer = await r.text();
      if (r.status !== 200 || !answer.includes("<ETag>")) {
        const code = /<Code>([^<]+)<\/Code>/.exec(answer)?.[1] ?? r.status;
        return envelope(400, `Completing the upload failed: ${code}`);
      }
      const failed = await finish(img, u.size);
      if (failed) return failed;
      return ok({ quota: { quotaTotal: 0, quotaUsage: img.size }, containerUrl: "" });
    }

    // Tags.
    m = /^\/(v1|v2)\/tags\/([^/]+)$/.exec(p);
    if (m) {
      if (m[1] === "v2" && !atLeast(apiVersion, "2.0.0-alpha.2")) return envelope(404, "Not found");
      const n = [...containers.values()].find((c) => c.id === m![2]);
      if (!n) return envelope(404, `Container ${m[2]} not found`);
      if (req.method === "GET") return ok(m[1] === "v1" ? n.imageTags : n.archTags);
      if (req.method !== "POST") return envelope(405, "Method not allowed");
      // Observed on Singularity Registry Server: 200 only without a Content-Type header.
      if (m[1] === "v1" && req.headers.has("content-type")) {
        return envelope(
          415,
          `Unsupported media type "${req.headers.get("content-type")}" in request`,
        );
      }
      const body = await readJson(req);
      if (body instanceof Response) return body;
      const img = typeof body.ImageID === "string" ? images.get(body.ImageID) : undefined;
      if (!img || img.container !== n.id) {
        return envelope(400, `Unknown image ${JSON.stringify(body.ImageID)} for this container`);
      }
      if (!img.uploaded) return envelope(400, "The image has not been uploaded");
      if (typeof body.Tag !== "string" || !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(body.Tag)) {
        return envelope(400, `Invalid tag ${JSON.stringify(body.Tag)}`);
      }
      if (m[1] === "v1") {
        n.imageTags[body.Tag] = img.id;
        return ok(null);
      }
      if (body.Arch !== img.arch) {
        return envelope(400, `Arch ${JSON.stringify(body.Arch)} is not the image's (${img.arch})`);
      }
      (n.archTags[img.arch!] ??= {})[body.Tag] = img.id;
      return ok(null);
    }

    if (p === "/v1/search") {
      const value = url.searchParams.get("value") ?? "";
      if (value.length < 3) return envelope(400, "Search value must be at least 3 characters");
      const hit = (n: string) => n.includes(value) || value.includes(n);
      const container = [...containers.values()].filter((c) => hit(c.name))
        .map((c) => ({ name: c.name, entityName: c.entityName, collectionName: c.collectionName }));
      // Pushed through the OCI redirect: only the registry has them.
      for (const name of known) {
        if (hit(name) && !container.some((c) => c.name === name)) {
          container.push({ name, entityName: "lib", collectionName: o.namespace });
        }
      }
      const entity = [...entities.values()].filter((e) => hit(e.name)).map((e) => ({
        name: e.name,
      }));
      const collection = [...collections.values()].filter((c) => hit(c.name))
        .map((c) => ({ name: c.name, entityName: c.entityName }));
      // Images are found by their hash (`sha256.<hex>` or a prefix of it).
      const image = [...images.values()].filter((i) => i.uploaded && i.hash.includes(value))
        .flatMap((i) => {
          const n = [...containers.values()].find((c) => c.id === i.container);
          return n
            ? [{
              hash: i.hash,
              arch: i.arch,
              containerName: n.name,
              collectionName: n.collectionName,
              entityName: n.entityName,
            }]
            : [];
        });
      return ok({ entity, collection, container, image });
    }
    return envelope(404, "Not found");
  });
  const host = `127.0.0.1:${server.addr.port}`;
  return {
    url: `http://${host}`,
    host,
    leakedAuth,
    calls,
    partsPresigned,
    storeLog,
    get slowSent() {
      return faults[1]?.sent ?? 0;
    },
    get maxPartsInFlight() {
      return inFlight.max;
    },
    get held() {
      return heldCount;
    },
    failPart(n: number, times: number) {
      inFlight.fail.set(n, times);
    },
    holdPartsAfter(n: number) {
      holdBudget = n;
      released = new Promise<void>((r) => releaseAll = r);
    },
    release() {
      holdBudget = undefined;
      releaseAll();
    },
    async stop() {
      releaseAll();
      await server.shutdown();
      await gateway?.stop();
    },
  };
}
