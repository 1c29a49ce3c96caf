/**
 * Debian's nginx as a real static file server for transfer tests, started on 127.0.0.1 with free
 * ports and a generated config in a temp dir: plain http, https with a test CA (generated with openssl
 * at start), https with a self-signed leaf, and a basic-auth location (htpasswd file).
 *
 * `nginxAvailable()` says whether the binaries exist; tests compute their ignore flag from it (and fail
 * in CI, where a missing nginx is a setup error).
 * @module
 */

import { join } from "node:path";
import { freePort } from "./_port.ts";

/** A running nginx. */
export interface Nginx {
  /** `http://127.0.0.1:<port>`. */
  readonly http: string;
  /** `https://127.0.0.1:<port>` with a leaf signed by {@link Nginx.caFile}. */
  readonly https: string;
  /** `https://127.0.0.1:<port>` with a self-signed leaf. */
  readonly selfSigned: string;
  /** The test CA (PEM). */
  readonly caFile: string;
  /** The served folder (`/` maps here; `/private/` needs basic auth). */
  readonly root: string;
  /** Basic-auth credentials for `/private/`. */
  readonly user: { name: string; password: string };
  /** The access log path (one line per request: status, bytes sent, range). */
  readonly accessLog: string;
  /** `/upload/` takes PUTs (WebDAV); its log has method, status, Transfer-Encoding, Content-Length. */
  readonly uploadLog: string;
  /** Stop nginx and remove the temp dir. */
  stop(): Promise<void>;
}

const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"];

function which(paths: string[]): string | undefined {
  for (const p of paths) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* try the next */ }
  }
  return undefined;
}

/** Whether nginx, openssl and htpasswd are installed. */
export function nginxAvailable(): boolean {
  return !!which(NGINX) && !!which(["/usr/bin/openssl"]) && !!which(["/usr/bin/htpasswd"]);
}

async function run(cmd: string, args: string[], cwd: string) {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Create a file of `size` bytes quickly: a random head, then sparse zeros extended with truncate. */
export async function makeLargeFile(path: string, size: number): Promise<void> {
  using f = await Deno.open(path, { create: true, write: true, truncate: true });
  const head = new Uint8Array(Math.min(size, 1024 * 1024));
  crypto.getRandomValues(head.subarray(0, Math.min(head.length, 65536)));
  await f.write(head);
  await f.truncate(size);
}

/** Generate the test CA, a CA-signed leaf and a self-signed leaf (CA:FALSE, as rustls requires). */
async function makeCerts(dir: string) {
  const ossl = (...a: string[]) => run("openssl", a, dir);
  await ossl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "30",
    "-subj",
    "/CN=sregistry test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ); // deno-fmt-ignore
  await ossl(
    "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
  ); // deno-fmt-ignore
  await Deno.writeTextFile(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await ossl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.crt",
    "-days",
    "30",
    "-extfile",
    "server.ext",
  ); // deno-fmt-ignore
  await ossl(
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "self.key", "-out", "self.crt", "-days", "30",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth",
  ); // deno-fmt-ignore
}

/** Start nginx; `setup` may put files into the root before it starts. */
export async function startNginx(): Promise<Nginx> {
  const nginx = which(NGINX);
  if (!nginx) throw new Error("nginx is not installed: apt-get install -y nginx");
  const dir = await Deno.makeTempDir({ prefix: "sreg-nginx-" });
  const root = join(dir, "www");
  await Deno.mkdir(join(root, "private"), { recursive: true });
  // Workers run as nobody when started by root: the tree must be world-readable.
  for (const d of [dir, root, join(root, "private")]) await Deno.chmod(d, 0o755);
  await makeCerts(dir);
  const user = { name: "webuser", password: "webpass-s3cret" };
  await run("htpasswd", ["-Bbc", join(dir, "htpasswd"), user.name, user.password], dir);
  const [p1, p2, p3] = [freePort(), freePort(), freePort()];
  const accessLog = join(dir, "access.log");
  const uploadLog = join(dir, "upload.log");
  // PUTs land here; the workers run as nobody.
  await Deno.mkdir(join(root, "upload"));
  await Deno.chmod(join(root, "upload"), 0o777);
  const location = `
    root ${root};
    location /private/ { auth_basic "private"; auth_basic_user_file ${dir}/htpasswd; }
    location = /redirect-private { return 302 /private/hello.txt; }
    location /upload/ {
      dav_methods PUT; create_full_put_path on; client_max_body_size 0; dav_access all:r;
      access_log ${uploadLog} u;
    }`;
  const conf = `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  default_type application/octet-stream;
  sendfile on;
  log_format t '$status $body_bytes_sent "$http_range" $request_uri';
  log_format u '$request_method $status "$http_transfer_encoding" "$http_content_length" $request_uri';
  access_log ${accessLog} t;
  client_body_temp_path ${dir}/tmp_body; proxy_temp_path ${dir}/tmp_proxy;
  fastcgi_temp_path ${dir}/tmp_fcgi; uwsgi_temp_path ${dir}/tmp_uwsgi; scgi_temp_path ${dir}/tmp_scgi;
  server { listen 127.0.0.1:${p1}; ${location} }
  server { listen 127.0.0.1:${p2} ssl; ssl_certificate ${dir}/server.crt; ssl_certificate_key ${dir}/server.key; ${location} }
  server { listen 127.0.0.1:${p3} ssl; ssl_certificate ${dir}/self.crt; ssl_certificate_key ${dir}/self.key; ${location} }
}`;
  await Deno.writeTextFile(join(dir, "nginx.conf"), conf);
  await Deno.writeTextFile(join(root, "hello.txt"), "hello nginx\n");
  await Deno.writeTextFile(join(root, "private", "hello.txt"), "hello private\n");
  const child = new Deno.Command(nginx, {
    args: ["-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const base = `http://127.0.0.1:${p1}`;
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) {
    try {
      const r = await fetch(`${base}/hello.txt`);
      await r.body?.cancel();
      ready = true;
      if (!r.ok) throw new Error(`nginx answered ${r.status} for /hello.txt`);
    } catch (e) {
      if (ready) {
        await stop();
        throw e;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async function stop() {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  if (!ready) {
    const log = await Deno.readTextFile(join(dir, "error.log")).catch(() => "");
    await stop();
    throw new Error(`nginx did not start: ${log.slice(-500)}`);
  }
  return {
    http: base,
    https: `https://127.0.0.1:${p2}`,
    selfSigned: `https://127.0.0.1:${p3}`,
    caFile: join(dir, "ca.crt"),
    uploadLog,
    root,
    user,
    accessLog,
    stop,
  };
}
