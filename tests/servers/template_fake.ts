/**
 * The strict fake behind the client template's test: a file store answering
 * `GET <base>/<collection>/<image>:<tag>.sif` to `Authorization: Bearer <token>` only. A missing or
 * wrong token is 401, any other path is 404, any other method is 405, and a Range header it cannot
 * serve is 400 — so a client that gets the protocol wrong fails here, not in production. Copy it as
 * the starting point of a new backend's fake (docs/contributing-a-client.md).
 * @module
 */

/** A running fake. */
export interface TemplateFake {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  /** Store `data` as `<collection>/<image>:<tag>.sif`. */
  put(name: string, data: Uint8Array): void;
  /** Requests answered 200/206, 401 and 404. */
  readonly stats: { ok: number; unauthorized: number; notFound: number };
  /** Stop it. */
  stop(): Promise<void>;
}

/** Start the fake; only `token` is accepted. */
export function startTemplateFake(token: string): TemplateFake {
  const files = new Map<string, Uint8Array>();
  const stats = { ok: 0, unauthorized: 0, notFound: 0 };
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      if (req.method !== "GET" && req.method !== "HEAD") {
        return new Response("method not allowed", { status: 405, headers: { allow: "GET, HEAD" } });
      }
      if (req.headers.get("authorization") !== `Bearer ${token}`) {
        stats.unauthorized++;
        return new Response("unauthorized", {
          status: 401,
          headers: { "www-authenticate": 'Bearer realm="template-fake"' },
        });
      }
      const path = decodeURIComponent(new URL(req.url).pathname).replace(/^\//, "");
      const data = /^[a-z0-9._-]+\/[a-z0-9._-]+:[a-z0-9._-]+\.sif$/.test(path)
        ? files.get(path)
        : undefined;
      if (!data) {
        stats.notFound++;
        return new Response("not found", { status: 404 });
      }
      let start = 0;
      let status = 200;
      const headers = new Headers({
        "content-type": "application/octet-stream",
        "accept-ranges": "bytes",
        etag: `"${data.length}-${data[data.length - 1] ?? 0}"`,
      });
      const range = req.headers.get("range");
      if (range) {
        const m = /^bytes=(\d+)-$/.exec(range);
        if (!m || Number(m[1]) >= data.length) {
          return new Response("unsupported range", { status: 400 });
        }
        start = Number(m[1]);
        status = 206;
        headers.set("content-range", `bytes ${start}-${data.length - 1}/${data.length}`);
      }
      headers.set("content-length", String(data.length - start));
      stats.ok++;
      return new Response(req.method === "HEAD" ? null : data.slice(start), { status, headers });
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    put: (name, data) => void files.set(name, data),
    stats,
    async stop() {
      ac.abort();
      await server.finished.catch(() => {});
    },
  };
}
