/**
 * A CONNECT tunnel through an HTTP(S) proxy, for the `node:https` transport of
 * SREGISTRY_HTTPS_NOVERIFY (Deno's `fetch` tunnels by itself; `node:https` does not read the proxy
 * variables), so that skipping verification does not also skip the proxy.
 * @module
 */

import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { isIP } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";

/**
 * Open a tunnel to `host:port` through `proxy` (an `http://` or `https://` URL, with optional
 * `user:password@`). Rejects with the proxy's status when it refuses the CONNECT.
 */
export function connectTunnel(
  proxy: string,
  host: string,
  port: number,
  signal?: AbortSignal,
): Promise<Socket> {
  const p = new URL(proxy);
  const target = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const headers: Record<string, string> = { host: target };
  if (p.username) {
    const user = `${decodeURIComponent(p.username)}:${decodeURIComponent(p.password)}`;
    headers["proxy-authorization"] = `Basic ${btoa(user)}`;
  }
  const options = {
    hostname: p.hostname.replace(/^\[|\]$/g, ""),
    port: Number(p.port || (p.protocol === "https:" ? 443 : 80)),
    method: "CONNECT",
    path: target,
    headers,
    // The proxy's own certificate goes unchecked too: this is the no-verify transport.
    ...(p.protocol === "https:" ? { rejectUnauthorized: false, ca: [] } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (p.protocol === "https:" ? httpsRequest : httpRequest)(options);
    req.on("connect", (res, socket: Socket) => {
      if (res.statusCode === 200) return resolve(socket);
      socket.destroy();
      reject(
        new TypeError(`fetch failed: the proxy answered ${res.statusCode} to CONNECT ${target}`),
      );
    });
    req.on(
      "error",
      (e: Error) => reject(new TypeError(`fetch failed: ${e.message}`, { cause: e })),
    );
    signal?.addEventListener("abort", () => req.destroy(signal.reason), { once: true });
    req.end();
  });
}

/** TLS over a tunnel, certificates unchecked (SNI only for a host name, as TLS allows). */
export function insecureTls(socket: Socket, host: string): TLSSocket {
  return tlsConnect({
    socket,
    rejectUnauthorized: false,
    ca: [],
    ...(isIP(host) ? {} : { servername: host }),
  });
}
