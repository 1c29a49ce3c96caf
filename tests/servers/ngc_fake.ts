/**
 * A strict fake of NGC's auth in front of a real (anonymous) registry: every /v2/ request needs a
 * Bearer token; the challenge is NGC's shape (realm and scope, no service); the realm wants Basic
 * `$oauthtoken:<api key>` and nothing else.
 * @module
 */

/** A running fake. */
export interface NgcFake {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Tokens issued. */
  readonly issued: number;
  /** Stop it. */
  stop(): Promise<void>;
}

/** Start the fake proxying to `backend` (`http://127.0.0.1:<port>`). */
export function startNgcFake(backend: string, apiKey: string): NgcFake {
  const tokens = new Set<string>();
  let issued = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const self = `http://${url.host}`;
    if (url.pathname === "/proxy_auth") {
      const auth = req.headers.get("authorization") ?? "";
      if (auth !== `Basic ${btoa(`$oauthtoken:${apiKey}`)}`) {
        return Response.json({ errors: [{ code: "UNAUTHORIZED" }] }, { status: 401 });
      }
      if (url.searchParams.has("service")) {
        return new Response("unexpected service parameter", { status: 400 });
      }
      const token = crypto.randomUUID();
      tokens.add(token);
      issued++;
      return Response.json({ token, expires_in: 300 });
    }
    if (!url.pathname.startsWith("/v2/")) return new Response("not found", { status: 404 });
    const bearer = (req.headers.get("authorization") ?? "").replace(/^Bearer /, "");
    if (!tokens.has(bearer)) {
      const repo = url.pathname.match(/^\/v2\/(.+?)\/(manifests|blobs|tags)\//)?.[1];
      return new Response(JSON.stringify({ errors: [{ code: "UNAUTHORIZED" }] }), {
        status: 401,
        headers: {
          "www-authenticate": `Bearer realm="${self}/proxy_auth",scope="${
            repo ? `repository:${repo}:pull` : ""
          }"`,
        },
      });
    }
    const headers = new Headers(req.headers);
    headers.delete("authorization");
    const res = await fetch(`${backend}${url.pathname}${url.search}`, {
      method: req.method,
      headers,
    });
    return new Response(res.body, { status: res.status, headers: res.headers });
  });
  return {
    host: `127.0.0.1:${server.addr.port}`,
    get issued() {
      return issued;
    },
    stop: () => server.shutdown(),
  };
}
