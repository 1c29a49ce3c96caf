/**
 * A fault-injecting reverse proxy for signed S3 requests. tests/servers/fault_proxy.ts forwards
 * with `fetch`, which rewrites the Host header and so breaks every SigV4 signature; this one uses
 * node:http, which forwards the request exactly (Host included), so s3api verifies what the client
 * signed. Faults: a status answered by the proxy, a response body cut after N bytes (validators
 * and Accept-Ranges removed), a slow body, and a connection dropped in the middle of a request
 * body (a multipart part upload). Each rule may apply a limited number of times.
 * @module
 */

import { Buffer } from "node:buffer";
import http from "node:http";
import { forward } from "./_forward.ts";

/** What happens to a matching request. */
export interface S3Fault {
  /** Answer this status (with an S3 error document) instead of forwarding. */
  status?: number;
  /** Forward, then cut the response body after this many bytes (no validators, no ranges). */
  dropAfter?: number;
  /** Forward the response body at this many bytes per second. */
  rate?: number;
  /** Close the connection after receiving this many bytes of the request body. */
  dropRequestAfter?: number;
}

/** A rule: the first that matches a request applies. */
export interface S3Rule {
  method?: string;
  /** Matched against the pathname (percent-encoded as sent). */
  path?: RegExp;
  /** Matched against the query string (without `?`). */
  query?: RegExp;
  fault: S3Fault;
  /** Apply at most this many times (default: always). */
  times?: number;
}

/** A running proxy. */
export interface S3FaultProxy {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Requests each rule faulted. */
  hits: number[];
  /** Every request seen: `METHOD path?query`. */
  log: string[];
  /** Request bodies of at most 4 KiB (`METHOD path?query` and the text), e.g. CreateBucket XML. */
  bodies: { request: string; body: string }[];
  /** Response body bytes sent by faulted responses. */
  readonly faultedBytes: number;
  stop(): Promise<void>;
}

/** Start a proxy in front of `upstream` (`http://127.0.0.1:<port>`). */
export async function startS3FaultProxy(upstream: string, rules: S3Rule[]): Promise<S3FaultProxy> {
  const up = new URL(upstream);
  const hits = rules.map(() => 0);
  const log: string[] = [];
  const bodies: { request: string; body: string }[] = [];
  let faultedBytes = 0;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const line = `${req.method} ${u.pathname}${u.search}`;
    log.push(line);
    const i = rules.findIndex((r, k) =>
      (!r.method || r.method === req.method) && (!r.path || r.path.test(u.pathname)) &&
      (!r.query || r.query.test(u.search.slice(1))) && (r.times === undefined || hits[k] < r.times)
    );
    const fault = i >= 0 ? rules[i].fault : undefined;
    if (i >= 0) hits[i]++;
    if (fault?.status) {
      req.resume();
      res.writeHead(fault.status, { "content-type": "application/xml" });
      res.end(
        `<?xml version="1.0"?><Error><Code>InternalError</Code><Message>fault ${fault.status}</Message></Error>`,
      );
      return;
    }
    const out = forward(req, res, up, fault, (n) => faultedBytes += n);
    if (fault?.dropRequestAfter !== undefined) {
      let got = 0;
      req.on("data", (chunk: Uint8Array) => {
        got += chunk.length;
        if (got >= fault.dropRequestAfter!) {
          out.destroy();
          req.socket.destroy();
        } else out.write(chunk);
      });
      req.on("end", () => out.end());
    } else {
      const small = Number(req.headers["content-length"] ?? 0) <= 4096;
      const chunks: Uint8Array[] = [];
      req.on("data", (c: Uint8Array) => {
        if (small) chunks.push(c);
        out.write(c);
      });
      req.on("end", () => {
        out.end();
        if (small && chunks.length) {
          bodies.push({
            request: log.at(-1)!,
            body: new TextDecoder().decode(Buffer.concat(chunks)),
          });
        }
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    hits,
    log,
    bodies,
    get faultedBytes() {
      return faultedBytes;
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
