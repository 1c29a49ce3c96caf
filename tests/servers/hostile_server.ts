/**
 * A strict hostile HTTP/OCI server (Deno.serve on 127.0.0.1, a free port): one route per attack of
 * issue 10. It redirects to `file://`, names `file://` token realms, sends upload Locations and
 * redirects to a peer server on another origin, sends terminal escapes and NUL bytes in error bodies,
 * oversized manifests and token answers, stalls, drips one byte at a time and asks to retry in an
 * hour.
 *
 * Bounded on purpose: every streamed answer stops after a fixed size or time, the server answers 503
 * after {@link MAX_REQUESTS} requests, and `close()` ends every pending answer, so a client that
 * fails to defend itself makes a test fail instead of hang.
 * @module
 */

/** Requests served before the server answers 503 to everything (a loop guard). */
export const MAX_REQUESTS = 400;

/** One recorded request. */
export interface HostileRequest {
  /** Method. */
  method: string;
  /** Path with query. */
  path: string;
  /** Authorization header, when sent. */
  authorization?: string;
}

/** A running hostile server. */
export interface HostileServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Every request, in order. */
  readonly requests: HostileRequest[];
  /** Where cross-origin routes point (another hostile server); set before use. */
  peer?: string;
  /** Stop the server and end pending answers. */
  close(): Promise<void>;
}

/** The terminal attack: set the window title and clear the screen. */
export const ESCAPES = "\x1b]0;pwned\x07\x1b[2J";

/** Options of {@link startHostileServer}. */
export interface HostileOptions {
  /** Basic credentials the `/v2/` routes demand (`user:password`); none means open. */
  basic?: string;
  /** Milliseconds between the bytes of the drip routes (default 300). */
  dripMs?: number;
}

const MIB = 1024 * 1024;

/** Start a hostile server. */
export function startHostileServer(options: HostileOptions = {}): HostileServer {
  const requests: HostileRequest[] = [];
  const done = new AbortController();
  const dripMs = options.dripMs ?? 300;
  const wait = (ms: number) =>
    new Promise<void>((ok) => {
      const t = setTimeout(ok, ms);
      done.signal.addEventListener("abort", () => {
        clearTimeout(t);
        ok();
      }, { once: true });
    });

  /** `total` bytes of `fill`, after `head`, in 64 KiB chunks (a bounded huge answer). */
  const big = (head: string, total: number, fill = " ") => {
    let sent = 0;
    const chunk = new TextEncoder().encode(fill.repeat(64 * 1024));
    return new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(head));
      },
      pull(c) {
        if (sent >= total || done.signal.aborted) return c.close();
        sent += chunk.length;
        c.enqueue(chunk);
      },
    });
  };
  /** `text` one byte every `dripMs` (the slow-loris answer). */
  const drip = (text: string) => {
    let i = 0;
    return new ReadableStream<Uint8Array>({
      async pull(c) {
        await wait(dripMs);
        if (i >= text.length || done.signal.aborted) return c.close();
        c.enqueue(new TextEncoder().encode(text[i++]));
      },
    });
  };

  const server: HostileServer = {
    url: "",
    requests,
    close: async () => {
      done.abort();
      await srv.shutdown();
    },
  };

  const srv = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const u = new URL(req.url);
    const path = u.pathname;
    requests.push({
      method: req.method,
      path: path + u.search,
      authorization: req.headers.get("authorization") ?? undefined,
    });
    await req.body?.cancel();
    if (requests.length > MAX_REQUESTS) return new Response("too many requests", { status: 503 });
    const self = server.url;
    const peer = server.peer ?? self;

    // Item 1: only http(s) may be fetched.
    if (path.startsWith("/file-redirect/")) {
      return new Response(null, { status: 302, headers: { location: "file:///etc/passwd" } });
    }
    if (path.startsWith("/realm-file/")) {
      return new Response("", {
        status: 401,
        headers: { "www-authenticate": 'Bearer realm="file:///etc/passwd",service="x"' },
      });
    }
    // Item 3: A redirects to B, B challenges with its own realm.
    if (path.startsWith("/to-peer/")) {
      return new Response(null, {
        status: 302,
        headers: { location: `${peer}/challenge/${path.slice(9)}` },
      });
    }
    if (path.startsWith("/challenge/")) {
      return new Response("", {
        status: 401,
        headers: { "www-authenticate": `Bearer realm="${self}/token",service="peer"` },
      });
    }
    if (path === "/token") return Response.json({ token: "peer-token-123456" });
    // Item 5 and 20: control characters in error bodies.
    if (path.startsWith("/escapes/")) {
      return new Response(`gone ${ESCAPES} away`, { status: 404 });
    }
    if (path.startsWith("/nul/")) return new Response("bad\0byte", { status: 404 });
    // Item 15: sizes, stalls, Retry-After.
    if (path === "/big-json") return new Response(big('{"a":"', 3 * MIB));
    if (path.startsWith("/big-token/")) {
      return new Response("", {
        status: 401,
        headers: { "www-authenticate": `Bearer realm="${self}/big-token-realm",service="x"` },
      });
    }
    if (path === "/big-token-realm") return new Response(big('{"token":"', 3 * MIB, "a"));
    if (path === "/stall-headers") {
      await wait(20_000);
      return new Response("late");
    }
    if (path === "/stall-body") {
      return new Response(
        new ReadableStream({
          async start(c) {
            c.enqueue(new TextEncoder().encode('{"a":'));
            await wait(20_000);
            c.close();
          },
        }),
      );
    }
    if (path === "/drip-json") return new Response(drip(`{"a":"${"x".repeat(200)}"}`));
    if (path === "/retry-after") {
      return new Response("slow down", { status: 429, headers: { "retry-after": "3600" } });
    }
    if (path === "/retry-after-short") {
      return new Response("slow down", { status: 429, headers: { "retry-after": "1" } });
    }

    // OCI routes: /v2/ demands Basic credentials when configured.
    if (path.startsWith("/v2/")) {
      if (options.basic) {
        const want = `Basic ${btoa(options.basic)}`;
        if (req.headers.get("authorization") !== want) {
          return new Response("", {
            status: 401,
            headers: { "www-authenticate": 'Basic realm="hostile"' },
          });
        }
      }
      if (path === "/v2/") return Response.json({});
      const m = path.match(/^\/v2\/(.+)\/(manifests|blobs)\/(.+)$/);
      if (m && m[1] === "big" && m[2] === "manifests") {
        return new Response(big('{"schemaVersion":2,"x":"', 6 * MIB), {
          headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
        });
      }
      if (m && m[1] === "drip" && m[2] === "manifests") {
        return new Response(drip(`{"schemaVersion":2,"x":"${"x".repeat(200)}"}`), {
          headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
        });
      }
      if (m && m[1] === "realm-file") {
        return new Response("", {
          status: 401,
          headers: { "www-authenticate": 'Bearer realm="file:///etc/passwd",service="x"' },
        });
      }
      // Item 2: the upload session lives on the peer.
      if (m && m[2] === "blobs" && m[3] === "uploads/" && req.method === "POST") {
        return new Response(null, {
          status: 202,
          headers: { location: `${peer}/upload/session-1`, "content-length": "0" },
        });
      }
      if (m && m[2] === "blobs" && req.method === "HEAD") {
        return new Response(null, { status: 404 });
      }
      return Response.json({ errors: [{ code: "UNKNOWN", message: `no ${path}` }] }, {
        status: 404,
      });
    }
    if (path.startsWith("/upload/")) {
      if (req.method === "PATCH") {
        return new Response(null, { status: 202, headers: { location: path } });
      }
      if (req.method === "PUT") return new Response(null, { status: 201 });
    }
    return new Response("no such route", { status: 404 });
  });
  (server as { url: string }).url = `http://127.0.0.1:${srv.addr.port}`;
  return server;
}
