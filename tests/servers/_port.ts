/**
 * A free loopback TCP port for a test server. The port is free when this returns, not later: start
 * the server right away, and check that what answers is that server (a parallel test run can take
 * the port in between).
 * @module
 */

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
