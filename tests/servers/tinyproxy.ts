/**
 * Debian's tinyproxy as a real forward proxy for the proxy tests, started on 127.0.0.1 with a free
 * port, an optional Basic-auth user, and a log that records every request (GET of an absolute URL
 * for http, CONNECT host:port for https).
 * @module
 */

import { join } from "node:path";
import { freePort } from "./_port.ts";

/** A running tinyproxy. */
export interface Tinyproxy {
  /** `http://127.0.0.1:<port>`, with `user:password@` when auth is on. */
  readonly url: string;
  /** The requests it has handled so far, one line each (`GET http://…`, `CONNECT host:port`). */
  requests(): Promise<string[]>;
  /** Stop it and remove its folder. */
  stop(): Promise<void>;
}

const BINARY = "/usr/bin/tinyproxy";

/** Whether tinyproxy is installed. */
export function tinyproxyAvailable(): boolean {
  try {
    return Deno.statSync(BINARY).isFile;
  } catch {
    return false;
  }
}

/** Start tinyproxy in the foreground; `auth` turns on Basic auth for that user. */
export async function startTinyproxy(
  auth?: { user: string; password: string },
): Promise<Tinyproxy> {
  const dir = await Deno.makeTempDir({ prefix: "sreg-proxy-" });
  // It drops root for nobody: its log folder must be writable by everyone.
  await Deno.chmod(dir, 0o777);
  const port = freePort();
  const log = join(dir, "proxy.log");
  await Deno.writeTextFile(
    join(dir, "tinyproxy.conf"),
    [
      `Port ${port}`,
      "Listen 127.0.0.1",
      "Timeout 60",
      `LogFile "${log}"`,
      "LogLevel Info",
      "MaxClients 50",
      "Allow 127.0.0.1",
      // No ConnectPort line: CONNECT is allowed to every port (the test servers use random ones).
      ...(auth ? [`BasicAuth ${auth.user} ${auth.password}`] : []),
    ].join("\n") + "\n",
  );
  const child = new Deno.Command(BINARY, {
    args: ["-d", "-c", join(dir, "tinyproxy.conf")],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      ready = true;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  if (!ready) {
    await stop();
    throw new Error("tinyproxy did not start");
  }
  const cred = auth ? `${encodeURIComponent(auth.user)}:${encodeURIComponent(auth.password)}@` : "";
  return {
    url: `http://${cred}127.0.0.1:${port}`,
    async requests() {
      const text = await Deno.readTextFile(log).catch(() => "");
      // e.g. `CONNECT   Nov 21 22:51:02.513 [16868]: Request (file descriptor 5): GET http://…`
      return [...text.matchAll(/Request \(file descriptor \d+\): (\S+ \S+)/g)].map((m) => m[1]);
    },
    stop,
  };
}
