/**
 * A real single-node OpenStack Swift (Debian's packages) for tests: account, container and object
 * servers plus a proxy with tempauth and the s3api middleware, a private memcached, all on
 * 127.0.0.1 free ports with rings, configs and data in a temp dir. Start it once per test file.
 *
 * Interface (stable; other test files depend on it):
 *
 * - `swiftAvailable(): boolean` — the binaries exist (compute `ignore` from it with
 *   tests/_cli.ts `requirement`, so CI fails when they are missing).
 * - `startSwift(opts?: { region?: string; memory?: boolean }): Promise<Swift>` — start and wait
 *   until tempauth, an account HEAD and a probe container/object write answer 2xx. `region` is s3api's `location` (default `us-east-1`): S3 requests must
 *   sign with it, and CreateBucket's LocationConstraint must equal it.
 * - `Swift`:
 *   - `url` — the proxy, `http://127.0.0.1:<port>` (Swift and S3 share it: `/auth/v1.0`, `/v1/…`,
 *     and path-style S3 `/<bucket>/<key>`).
 *   - `host` — `127.0.0.1:<port>`.
 *   - `authUrl` — `<url>/auth/v1.0` (tempauth v1: `X-Auth-User`/`X-Auth-Key` or `X-Storage-*`).
 *   - `storageUrl` — `<url>/v1/AUTH_test`, the account of the main user.
 *   - `user` — `{ name: "test:tester", key: "testing" }` (tempauth, account admin).
 *   - `users` — every tempauth user: `tester` (above), `tester2` (`test2:tester2` / `testing2`,
 *     admin of account test2), `tester3` (`test:tester3` / `testing3`, no rights on AUTH_test).
 *   - `s3` — `{ endpoint, accessKeyId: "test:tester", secretAccessKey: "testing", region }`
 *     (path style only; SigV4 needs `x-amz-content-sha256`).
 *   - `token(user?)` — a tempauth token (cached per user), for Swift API calls.
 *   - `createContainer(name, headers?)` / `createBucket(name)` — the same thing: an S3 bucket is a
 *     container of AUTH_test. Idempotent (201 or 202).
 *   - `putObject(container, name, body, headers?)` — Swift API PUT (`X-Object-Meta-Foo` shows up
 *     in S3 as `x-amz-meta-foo`).
 *   - `putObjects(container, [{ name, body, headers? }], concurrency = 16)` — many objects, in
 *     parallel (2,500 take about 6-15 s depending on load).
 *   - `listObjects(container, prefix?)` — names, through the Swift API (all pages).
 *   - `deleteContainer(name)` — removes its objects first.
 *   - `dir` — the temp dir (on /dev/shm unless `memory: false`); `logs` — `<dir>/log` (one `<server>.log` each).
 *   - `stop()` — SIGTERM every process, wait for each pid, remove the dir.
 *
 * The helpers use plain `fetch` and the Swift API, never the code under test.
 *
 * Swift reads `/etc/swift/swift.conf` (hash prefix/suffix, storage policies) from a hard-coded
 * path; Debian's package ships one. It is never written here; if it is missing, startSwift fails
 * with a message saying to install the package.
 * @module
 */

import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** Options of {@link startSwift}. */
export interface SwiftOptions {
  /** s3api's `location` (the only region it accepts); default `us-east-1`. */
  region?: string;
  /**
   * Keep the data on tmpfs (`/dev/shm`) when it exists: Swift fsyncs every object, which makes
   * disk-backed PUTs slow on a loaded machine. Default true; the bench passes false for big files.
   */
  memory?: boolean;
}

/** A tempauth user. */
export interface SwiftUser {
  /** `<account>:<user>`; also the S3 access key id. */
  name: string;
  /** The tempauth key; also the S3 secret. */
  key: string;
}

/** The S3 side of the proxy. */
export interface SwiftS3 {
  /** Same as {@link Swift.url}; path style. */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** A running Swift. */
export interface Swift {
  url: string;
  host: string;
  authUrl: string;
  storageUrl: string;
  user: SwiftUser;
  users: { tester: SwiftUser; tester2: SwiftUser; tester3: SwiftUser };
  s3: SwiftS3;
  dir: string;
  logs: string;
  /** A tempauth token for `user` (default the main user), cached. */
  token(user?: SwiftUser): Promise<string>;
  createContainer(name: string, headers?: Record<string, string>): Promise<void>;
  createBucket(name: string): Promise<void>;
  putObject(
    container: string,
    name: string,
    body: Uint8Array | string,
    headers?: Record<string, string>,
  ): Promise<void>;
  putObjects(
    container: string,
    objects: { name: string; body: Uint8Array | string; headers?: Record<string, string> }[],
    concurrency?: number,
  ): Promise<void>;
  listObjects(container: string, prefix?: string): Promise<string[]>;
  deleteContainer(name: string): Promise<void>;
  stop(): Promise<void>;
}

const BINS = [
  "swift-proxy-server",
  "swift-account-server",
  "swift-container-server",
  "swift-object-server",
  "memcached",
];
const SWIFT_CONF = "/etc/swift/swift.conf";

function onPath(program: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/bin", "/usr/sbin"])) {
    try {
      if (Deno.statSync(join(dir, program)).isFile) return true;
    } catch { /* next */ }
  }
  return false;
}

/** Whether Swift (proxy, account, container, object, ring builder), memcached and swift.conf exist. */
export function swiftAvailable(): boolean {
  if (!BINS.every(onPath)) return false;
  try {
    return Deno.statSync(SWIFT_CONF).isFile;
  } catch {
    return false;
  }
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Write a one-device, one-replica ring (part power 8) in Swift's v1 format directly, as
 * `swift-ring-builder create 8 1 1; add; rebalance` would: magic, JSON header, then the
 * replica-to-partition-to-device table (all device 0). This saves nine Python start-ups.
 */
async function writeRing(path: string, port: number): Promise<void> {
  const header = new TextEncoder().encode(JSON.stringify({
    byteorder: "little",
    devs: [{
      device: "d1",
      id: 0,
      ip: "127.0.0.1",
      meta: "",
      port,
      region: 1,
      replication_ip: "127.0.0.1",
      replication_port: port,
      weight: 100.0,
      zone: 1,
    }],
    part_shift: 24,
    replica_count: 1,
    version: 2,
  }));
  const raw = new Uint8Array(6 + 4 + header.length + 512);
  raw.set([0x52, 0x31, 0x4e, 0x47, 0, 1]); // "R1NG", format 1
  new DataView(raw.buffer).setUint32(6, header.length);
  raw.set(header, 10);
  await Deno.writeFile(path, gzipSync(raw));
}

function common(dir: string, port: number, name: string): string {
  return `[DEFAULT]
devices = ${dir}/srv/node
mount_check = false
disable_fallocate = true
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = root
swift_dir = ${dir}/etc
recon_cache_path = ${dir}/run
log_name = ${name}
`;
}

function proxyConf(dir: string, port: number, memcachePort: number, region: string): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = root
swift_dir = ${dir}/etc
log_name = proxy

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true
# One node: never error-limit it (by default one 507 makes it unusable for 60 s).
error_suppression_interval = 0

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
user_test_tester3 = testing3
storage_url_scheme = default

[filter:s3api]
use = egg:swift#s3api
location = ${region}

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${memcachePort}

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true
[filter:symlink]
use = egg:swift#symlink
`;
}

const bytes = (b: Uint8Array | string): Uint8Array<ArrayBuffer> =>
  typeof b === "string" ? new TextEncoder().encode(b) : new Uint8Array(b);
const pathOf = (...parts: string[]) => parts.map(encodeURIComponent).join("/");

/** Start Swift with s3api; see the module doc for the interface. */
export async function startSwift(opts: SwiftOptions = {}): Promise<Swift> {
  const missing = BINS.filter((b) => !onPath(b));
  if (missing.length) {
    throw new Error(
      `Swift is not installed (missing ${
        missing.join(", ")
      }): apt-get install -y swift swift-proxy ` +
        "swift-object swift-container swift-account memcached",
    );
  }
  try {
    Deno.statSync(SWIFT_CONF);
  } catch {
    throw new Error(
      `Swift needs "${SWIFT_CONF}" (read from a fixed path); reinstall Debian's swift package to restore it`,
    );
  }
  const region = opts.region ?? "us-east-1";
  const shm = (opts.memory ?? true) && isDir("/dev/shm");
  const dir = await Deno.makeTempDir({ prefix: "sreg-swift-", dir: shm ? "/dev/shm" : undefined });
  const etc = join(dir, "etc");
  const logs = join(dir, "log");
  for (const d of [etc, join(dir, "srv/node/d1"), join(dir, "run"), logs]) {
    await Deno.mkdir(d, { recursive: true });
  }
  const ports = {
    proxy: freePort(),
    account: freePort(),
    container: freePort(),
    object: freePort(),
  };
  const memcachePort = freePort();
  const kinds = ["account", "container", "object"] as const;
  for (const k of kinds) {
    await Deno.writeTextFile(
      join(etc, `${k}-server.conf`),
      common(dir, ports[k], k) +
        `[pipeline:main]\npipeline = ${k}-server\n[app:${k}-server]\nuse = egg:swift#${k}\n`,
    );
  }
  await Deno.writeTextFile(
    join(etc, "proxy-server.conf"),
    proxyConf(dir, ports.proxy, memcachePort, region),
  );
  for (const k of kinds) await writeRing(join(etc, `${k}.ring.gz`), ports[k]);

  const children: Deno.ChildProcess[] = [];
  // `exec` keeps the pid the server's own while its output goes to a log file.
  const spawn = (name: string, cmd: string) =>
    children.push(
      new Deno.Command("/bin/sh", {
        args: ["-c", `exec ${cmd} >${join(logs, name)}.log 2>&1`],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn(),
    );
  spawn("memcached", `memcached -u root -l 127.0.0.1 -p ${memcachePort} -U 0 -m 64`);
  for (const k of [...kinds, "proxy" as const]) {
    spawn(k, `swift-${k}-server ${join(etc, `${k}-server.conf`)} -v`);
  }

  async function stop() {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    // The proxy takes over a second to exit; wait for every pid so the ports are free afterwards.
    await Promise.all(children.map((c) => c.status));
    // The object server's async writers can still be renaming files for a moment: try again.
    for (let i = 0; i < 5; i++) {
      try {
        await Deno.remove(dir, { recursive: true });
        return;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  const url = `http://127.0.0.1:${ports.proxy}`;
  const users = {
    tester: { name: "test:tester", key: "testing" },
    tester2: { name: "test2:tester2", key: "testing2" },
    tester3: { name: "test:tester3", key: "testing3" },
  };
  const tokens = new Map<string, string>();
  async function token(user: SwiftUser = users.tester): Promise<string> {
    const cached = tokens.get(user.name);
    if (cached) return cached;
    const r = await fetch(`${url}/auth/v1.0`, {
      headers: { "X-Auth-User": user.name, "X-Auth-Key": user.key },
    });
    await r.body?.cancel();
    const t = r.headers.get("x-auth-token");
    if (!r.ok || !t) throw new Error(`tempauth for "${user.name}" answered ${r.status}`);
    tokens.set(user.name, t);
    return t;
  }
  const storageUrl = `${url}/v1/AUTH_test`;
  async function swiftCall(
    method: string,
    path: string,
    init: RequestInit = {},
  ): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("X-Auth-Token", await token());
    return await fetch(`${storageUrl}/${path}`, { ...init, method, headers });
  }
  async function expectOk(
    r: Response,
    what: string,
    okStatus = (s: number) => s >= 200 && s < 300,
  ) {
    const text = await r.text();
    if (!okStatus(r.status)) throw new Error(`${what} answered ${r.status}: ${text.slice(0, 300)}`);
    return text;
  }

  // Ready when tempauth issues a token, the account answers a HEAD and a probe container and
  // object can be written (every backend is up).
  const deadline = Date.now() + 60_000;
  let lastError = "";
  for (;;) {
    try {
      tokens.clear();
      const r = await swiftCall("HEAD", "");
      await r.body?.cancel();
      lastError = `account HEAD answered ${r.status}`;
      if (r.ok) {
        // An autocreated account answers HEAD from the proxy alone: also write through the
        // container and object servers, which may still be starting.
        const c = await swiftCall("PUT", "ready-probe");
        await c.body?.cancel();
        const o = c.ok ? await swiftCall("PUT", "ready-probe/o", { body: "x" }) : c;
        await o.body?.cancel();
        lastError = `probe PUT answered ${o.status}`;
        if (o.ok) {
          for (const path of ["ready-probe/o", "ready-probe"]) {
            (await swiftCall("DELETE", path)).body?.cancel();
          }
          break;
        }
      }
    } catch (e) {
      lastError = (e as Error).message;
    }
    const exited = await Promise.race([
      Promise.any(children.map((c) => c.status)).then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 200)),
    ]);
    if (exited || Date.now() > deadline) {
      const tail = await Deno.readTextFile(join(logs, "proxy.log")).catch(() => "");
      await stop();
      throw new Error(
        `Swift did not start (${exited ? "a server exited" : "timeout"}; ${lastError}): ${
          tail.slice(-800)
        }`,
      );
    }
  }

  const createContainer = async (name: string, headers: Record<string, string> = {}) => {
    await expectOk(await swiftCall("PUT", pathOf(name), { headers }), `PUT container "${name}"`);
  };
  const putObject: Swift["putObject"] = async (container, name, body, headers = {}) => {
    await expectOk(
      await swiftCall("PUT", pathOf(container, ...name.split("/")), { headers, body: bytes(body) }),
      `PUT object "${container}/${name}"`,
    );
  };
  const putObjects: Swift["putObjects"] = async (container, objects, concurrency = 16) => {
    // Parallel single PUTs: about twice as fast as one bulk extract-archive, which Swift runs serially.
    let next = 0;
    const worker = async () => {
      while (next < objects.length) {
        const o = objects[next++];
        await putObject(container, o.name, o.body, o.headers);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, objects.length) }, worker));
  };
  const listObjects: Swift["listObjects"] = async (container, prefix = "") => {
    const names: string[] = [];
    let marker = "";
    for (;;) {
      const q = new URLSearchParams({ format: "json", prefix, marker });
      const r = await swiftCall("GET", `${pathOf(container)}?${q}`);
      const page = JSON.parse(await expectOk(r, `GET container "${container}"`) || "[]") as {
        name: string;
      }[];
      if (!page.length) return names;
      names.push(...page.map((o) => o.name));
      marker = page[page.length - 1].name;
    }
  };
  const deleteContainer: Swift["deleteContainer"] = async (name) => {
    const gone = (s: number) => s < 300 || s === 404;
    for (const o of await listObjects(name)) {
      await expectOk(
        await swiftCall("DELETE", pathOf(name, ...o.split("/"))),
        `DELETE "${o}"`,
        gone,
      );
    }
    await expectOk(await swiftCall("DELETE", pathOf(name)), `DELETE container "${name}"`, gone);
  };
  return {
    url,
    host: `127.0.0.1:${ports.proxy}`,
    authUrl: `${url}/auth/v1.0`,
    storageUrl,
    user: users.tester,
    users,
    s3: {
      endpoint: url,
      accessKeyId: users.tester.name,
      secretAccessKey: users.tester.key,
      region,
    },
    dir,
    logs,
    token,
    createContainer,
    createBucket: (name) => createContainer(name),
    putObject,
    putObjects,
    listObjects,
    deleteContainer,
    stop,
  };
}
