/**
 * A strict Singularity Hub fake serving archived-style manifests: `GET /api/container/<collection>/
 * <name>:<tag>[@<version>]` answers `{id, name, tag, version, commit, image, size}` with `version`
 * the file's md5 (what the hub used) and `image` a DataLad-style download URL
 * (`/shub/<collection>/<name>/<tag>/<md5>.sif` on the same host, or another base), which answers
 * HEAD and GET (no Range, as a plain static archive behind a CDN may not). `GET /api/collections/`
 * is DRF-paginated (`{count, next, previous, results}`, 10 per page). An unknown container is 404
 * `{"detail": "Not found."}`, any other method 405, and a download whose signature has expired
 * (an image `put` with `expired: true`) answers 403, like the 2019 signed storage URLs.
 * @module
 */

import { createHash } from "node:crypto";

/** How {@link ShubFake.put} stores an image. */
export interface ShubPutOptions {
  /** The download URL's origin (default the fake's; a fault proxy's for fault tests). */
  downloadBase?: string;
  /** The manifest's version is this instead of the md5 (a wrong hash, a sha256 form). */
  version?: string | null;
  /** The manifest's size is this instead of the real one (null: no size). */
  size?: number | null;
  /** The download is refused with 403, as an expired signed URL. */
  expired?: boolean;
}

/** A running fake. */
export interface ShubFake {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `<url>/api`: what SREGISTRY_HUB_BASE is set to. */
  readonly api: string;
  /** Store `data` as `<collection>/<name>:<tag>`. */
  put(name: string, data: Uint8Array, options?: ShubPutOptions): void;
  /** Requests by path (`GET /api/collections/?offset=10`). */
  readonly requests: string[];
  /** Stop it. */
  stop(): Promise<void>;
}

interface Entry {
  id: number;
  collection: string;
  name: string;
  tag: string;
  data: Uint8Array;
  md5: string;
  options: ShubPutOptions;
}

const PAGE = 10;

/** Start the fake on a free loopback port. */
export function startShubFake(): ShubFake {
  const entries = new Map<string, Entry>();
  const requests: string[] = [];
  let ids = 0;
  const ac = new AbortController();
  let origin = "";
  const manifest = (e: Entry) => ({
    id: e.id,
    name: `${e.collection}/${e.name}`,
    tag: e.tag,
    version: e.options.version === undefined ? e.md5 : e.options.version,
    commit: createHash("sha1").update(e.data).digest("hex"),
    image: `${
      e.options.downloadBase ?? origin
    }/shub/${e.collection}/${e.name}/${e.tag}/${e.md5}.sif${
      e.options.expired ? "?Expires=1&Signature=stale" : ""
    }`,
    ...(e.options.size === null ? {} : { size: e.options.size ?? e.data.length }),
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const url = new URL(req.url);
      requests.push(`${req.method} ${url.pathname}${url.search}`);
      const path = decodeURIComponent(url.pathname);
      if (req.method !== "GET" && req.method !== "HEAD") {
        return Response.json({ detail: `Method "${req.method}" not allowed.` }, { status: 405 });
      }
      const c = /^\/api\/container\/([^/]+)\/([^/:@]+)(?::([^/@]+))?(?:@(.+))?$/.exec(path);
      if (c) {
        const e = entries.get(`${c[1]}/${c[2]}:${c[3] ?? "latest"}`);
        if (!e || (c[4] && c[4] !== e.md5)) {
          return Response.json({ detail: "Not found." }, { status: 404 });
        }
        return Response.json(manifest(e));
      }
      if (path === "/api/collections/") {
        const byCollection = new Map<string, Entry[]>();
        for (const e of entries.values()) {
          byCollection.set(e.collection, [...(byCollection.get(e.collection) ?? []), e]);
        }
        const all = [...byCollection.entries()].sort(([a], [b]) => a.localeCompare(b));
        const offset = Number(url.searchParams.get("offset") ?? 0);
        const page = all.slice(offset, offset + PAGE).map(([name, es], i) => ({
          id: offset + i + 1,
          name,
          containers: es.map((e) => ({
            name: `${e.collection}/${e.name}`,
            tag: e.tag,
            detail: `${origin}/api/container/${e.collection}/${e.name}:${e.tag}`,
          })),
        }));
        const link = (o: number) => `${origin}/api/collections/?limit=${PAGE}&offset=${o}`;
        return Response.json({
          count: all.length,
          next: offset + PAGE < all.length ? link(offset + PAGE) : null,
          previous: offset > 0 ? link(Math.max(0, offset - PAGE)) : null,
          results: page,
        });
      }
      const d = /^\/shub\/([^/]+)\/([^/]+)\/([^/]+)\/([0-9a-f]{32})\.sif$/.exec(path);
      if (d) {
        const e = entries.get(`${d[1]}/${d[2]}:${d[3]}`);
        if (!e || e.md5 !== d[4]) return new Response("Not Found", { status: 404 });
        if (e.options.expired) {
          return new Response("<Error><Code>AccessDenied</Code>Request has expired</Error>", {
            status: 403,
            headers: { "content-type": "application/xml" },
          });
        }
        const headers = {
          "content-type": "application/octet-stream",
          "content-length": String(e.data.length),
        };
        return new Response(req.method === "HEAD" ? null : e.data as Uint8Array<ArrayBuffer>, {
          headers,
        });
      }
      return Response.json({ detail: "Not found." }, { status: 404 });
    },
  );
  origin = `http://127.0.0.1:${server.addr.port}`;
  return {
    url: origin,
    api: `${origin}/api`,
    requests,
    put(name, data, options = {}) {
      const m = /^([^/]+)\/([^/:]+):([^/:]+)$/.exec(name);
      if (!m) throw new Error(`put wants collection/name:tag, not ${name}`);
      entries.set(name, {
        id: ++ids,
        collection: m[1],
        name: m[2],
        tag: m[3],
        data,
        md5: createHash("md5").update(data).digest("hex"),
        options,
      });
    },
    async stop() {
      ac.abort();
      await server.finished;
    },
  };
}
