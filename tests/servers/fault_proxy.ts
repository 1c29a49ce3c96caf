/**
 * A fault-injecting reverse proxy (Deno.serve on 127.0.0.1, a free port) in front of any real
 * server or fake, so the conformance suite can provoke the same failures from every backend: a
 * 5xx, a connection dropped mid-body with no way to resume (Range ignored, no validators), and a
 * body slow enough to interrupt. Requests that match no rule pass through unchanged.
 * @module
 */

/** What to do to the requests whose path matches. */
export interface ProxyFault {
  /** Answer this status instead of forwarding. */
  status?: number;
  /** Forward, ignore Range, drop validators, and close the connection after this many bytes. */
  dropAfter?: number;
  /** Forward the body at this many bytes per second. */
  rate?: number;
}

/** A running proxy. */
export interface FaultProxy {
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Body bytes sent by faulted (slow or dropped) responses so far. */
  readonly faultedBytes: number;
  /** Requests answered by a rule, by rule index. */
  readonly hits: number[];
  /** Stop the proxy. */
  stop(): Promise<void>;
}

/** A rule: requests whose pathname matches `path` get `fault`. */
export interface ProxyRule {
  /** Matched against the request's pathname. */
  path: RegExp;
  /** The fault. */
  fault: ProxyFault;
}

const HOP = ["connection", "keep-alive", "transfer-encoding", "content-encoding", "host"];

/** Start a proxy to `upstream` (`http://127.0.0.1:<port>`) applying `rules` (first match wins). */
export function startFaultProxy(upstream: string, rules: ProxyRule[]): FaultProxy {
  const hits = rules.map(() => 0);
  let faultedBytes = 0;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      const i = rules.findIndex((r) => r.path.test(url.pathname));
      const fault = i >= 0 ? rules[i].fault : undefined;
      if (i >= 0) hits[i]++;
      if (fault?.status) {
        await req.body?.cancel();
        return new Response(`fault ${fault.status}`, { status: fault.status });
      }
      const headers = new Headers(req.headers);
      for (const h of HOP) headers.delete(h);
      if (fault?.dropAfter !== undefined) {
        headers.delete("range");
        headers.delete("if-range");
      }
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        body: req.body,
        redirect: "manual",
      });
      const out = new Headers(res.headers);
      for (const h of HOP) out.delete(h);
      if (!fault || !res.body) return new Response(res.body, { status: res.status, headers: out });
      if (fault.dropAfter !== undefined) {
        for (const h of ["accept-ranges", "etag", "last-modified"]) out.delete(h);
      }
      const reader = res.body.getReader();
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { done, value } = await reader.read();
          if (done) return controller.close();
          let chunk = value;
          if (fault.dropAfter !== undefined && sent + chunk.length > fault.dropAfter) {
            chunk = chunk.subarray(0, Math.max(0, fault.dropAfter - sent));
          }
          if (fault.rate) {
            await new Promise((r) => setTimeout(r, (chunk.length / fault.rate!) * 1e3));
          }
          if (chunk.length) controller.enqueue(chunk);
          sent += chunk.length;
          faultedBytes += chunk.length;
          if (fault.dropAfter !== undefined && sent >= fault.dropAfter) {
            // Ending short of Content-Length drops the connection without a logged stack trace.
            await reader.cancel().catch(() => {});
            controller.close();
          }
        },
        cancel: () => reader.cancel().catch(() => {}),
      });
      return new Response(body, { status: res.status, headers: out });
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    get faultedBytes() {
      return faultedBytes;
    },
    hits,
    async stop() {
      ac.abort();
      await server.finished.catch(() => {});
    },
  };
}
