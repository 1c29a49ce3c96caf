/**
 * A strict fake of the Sylabs library API (as Singularity Registry Server serves it): config
 * discovery, `version`, bearer-token checks on every library call (401 with the JSON envelope), the
 * OCI redirect to a real distribution registry, image records, search, and the legacy imagefile
 * download answered by a 302 to a presigned-style URL on a second server that refuses any
 * Authorization header.
 * @module
 */

import { createHash } from "node:crypto";

/** Options of {@link startLibraryFake}. */
export interface LibraryFakeOptions {
  /** The token a client must send. */
  token: string;
  /** The registry URL the OCI redirect names. */
  registry: string;
  /** Registry URL for containers named broken/dropped/slow (a fault proxy). */
  faultRegistry?: string;
  /** The registry namespace a library `entity/collection` maps to. */
  namespace: string;
  /** Bytes of every seeded container (for records and the legacy download). */
  images: Record<string, Uint8Array>;
  /** false: no OCI redirect (404), so clients use the legacy flow. */
  ociRedirect?: boolean;
  /** Image hashes to report instead of the true ones (`sha256.<hex>`), to test verification. */
  hashes?: Record<string, string>;
}

/** A running fake. */
export interface LibraryFake {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Authorization headers the presigned host received (must stay empty). */
  leakedAuth: string[];
  /** Stop both servers. */
  stop(): Promise<void>;
}

const envelope = (status: number, message: string) =>
  Response.json({ data: null, error: { code: status, message } }, { status });

/** Start the fake on a free port. */
export function startLibraryFake(o: LibraryFakeOptions): LibraryFake {
  const leakedAuth: string[] = [];
  const presign = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const a = req.headers.get("authorization");
    if (a) {
      leakedAuth.push(a);
      return new Response("<Error><Code>InvalidArgument</Code></Error>", { status: 400 });
    }
    const name = new URL(req.url).pathname.slice(1);
    const bytes = o.images[name];
    if (!bytes) return new Response("<Error><Code>NoSuchKey</Code></Error>", { status: 404 });
    return new Response(bytes.slice(), { headers: { "content-length": String(bytes.length) } });
  });
  const presignUrl = `http://127.0.0.1:${presign.addr.port}`;
  const known = new Set(Object.keys(o.images));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    const p = url.pathname;
    if (p === "/assets/config/config.prod.json") {
      return Response.json({ libraryAPI: { uri: url.origin }, tokenAPI: { uri: url.origin } });
    }
    if (p === "/version") {
      return Response.json({ data: { version: "v1.0.0", apiVersion: "2.0.0-alpha.1" } });
    }
    if (req.headers.get("authorization") !== `Bearer ${o.token}`) {
      return envelope(401, "Invalid token");
    }
    if (p === "/v1/token-status") return Response.json({ data: { status: "valid" } });
    if (p === "/v1/oci-redirect") {
      if (o.ociRedirect === false) return envelope(404, "Not found");
      const ns = url.searchParams.get("namespace") ?? "";
      const parts = ns.split("/");
      if (parts.length !== 3) return envelope(400, "Bad namespace");
      const container = parts[2];
      if ((url.searchParams.get("accessTypes") ?? "").includes("push")) known.add(container);
      const faulty = ["broken", "dropped", "slow"].includes(container) && o.faultRegistry;
      return Response.json({
        data: {
          url: faulty ? o.faultRegistry : o.registry,
          token: "registry-token-from-library",
          name: `${o.namespace}/${container}`,
        },
      });
    }
    const m = /^\/v1\/(images|imagefile)\/([^/]+)\/([^/]+)\/([^/:]+):(.+)$/.exec(p);
    if (m && req.method === "GET") {
      const bytes = o.images[m[4]];
      if (!bytes) return envelope(404, "Image not found");
      if (m[1] === "imagefile") {
        return new Response(null, { status: 302, headers: { location: `${presignUrl}/${m[4]}` } });
      }
      const hex = createHash("sha256").update(bytes).digest("hex");
      return Response.json({
        data: {
          id: `img-${m[4]}`,
          hash: o.hashes?.[m[4]] ?? `sha256.${hex}`,
          size: bytes.length,
          arch: url.searchParams.get("arch") ?? "amd64",
          uploaded: true,
          signed: false,
        },
      });
    }
    if (p === "/v1/search") {
      const value = url.searchParams.get("value") ?? "";
      if (value.length < 3) return envelope(400, "Search value must be at least 3 characters");
      const [entity, collection] = ["lib", o.namespace];
      const container = [...known].filter((n) => n.includes(value) || value.includes(n))
        .map((name) => ({ name, entityName: entity, collectionName: collection }));
      return Response.json({ data: { entity: [], collection: [], container, image: [] } });
    }
    return envelope(404, "Not found");
  });
  const host = `127.0.0.1:${server.addr.port}`;
  return {
    url: `http://${host}`,
    host,
    leakedAuth,
    async stop() {
      await server.shutdown();
      await presign.shutdown();
    },
  };
}
