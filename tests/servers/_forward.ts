/**
 * Forwarding one request with node:http, for the fakes that stand in front of an S3 API: unlike
 * `fetch`, node:http sends the request exactly (Host included), so SigV4 signatures still verify.
 * The answer is relayed with an optional fault on its body: cut after N bytes (with validators and
 * Accept-Ranges removed, so the client cannot resume) or sent slowly.
 * @module
 */

import http from "node:http";

/** A fault on the relayed response body. */
export interface BodyFault {
  /** Cut the body after this many bytes (no validators, no ranges). */
  dropAfter?: number;
  /** Send the body at this many bytes per second. */
  rate?: number;
}

/**
 * Send `req` to `upstream` unchanged and relay the answer into `res`, with `fault` applied to the
 * body; `onBytes` hears every chunk of a faulted body that was sent. Returns the upstream request:
 * the caller writes the request body into it (and ends it).
 */
export function forward(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  upstream: URL,
  fault?: BodyFault,
  onBytes?: (n: number) => void,
): http.ClientRequest {
  const out = http.request({
    host: upstream.hostname,
    port: Number(upstream.port),
    method: req.method,
    path: req.url,
    headers: req.headers,
  }, (ures) => {
    const headers = { ...ures.headers };
    if (fault?.dropAfter !== undefined) {
      // No validators and no ranges: the client cannot resume what was cut.
      for (const h of ["accept-ranges", "etag", "last-modified"]) delete headers[h];
    }
    res.writeHead(ures.statusCode ?? 502, headers);
    if (!fault || (fault.dropAfter === undefined && !fault.rate)) {
      ures.pipe(res);
      return;
    }
    let sent = 0;
    ures.on("data", (chunk: Uint8Array) => {
      let c = chunk;
      if (fault.dropAfter !== undefined && sent + c.length > fault.dropAfter) {
        c = c.subarray(0, Math.max(0, fault.dropAfter - sent));
      }
      sent += c.length;
      onBytes?.(c.length);
      if (fault.rate) {
        ures.pause();
        setTimeout(() => ures.resume(), (c.length / fault.rate) * 1000);
      }
      if (c.length) res.write(c);
      if (fault.dropAfter !== undefined && sent >= fault.dropAfter) {
        ures.destroy();
        res.destroy();
      }
    });
    ures.on("end", () => res.end());
  });
  out.on("error", () => res.destroy());
  return out;
}
