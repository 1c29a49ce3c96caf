import assert from "./_assert.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { requirement, runCli, spawnCli, tempHome } from "./_cli.ts";
import { makeData, startFaultServer } from "./servers/fault_server.ts";
import { nginxAvailable, startNginx } from "./servers/nginx.ts";

const FAST = { SREGISTRY_BACKOFF_MS: "10", SREGISTRY_STALL_TIMEOUT: "1" };

function sha(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Every file under a folder, relative, sorted. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(join(dir, prefix))) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory) out.push(...await tree(dir, rel));
      else out.push(rel);
    }
  } catch { /* missing folder: empty */ }
  return out.sort();
}

Deno.test("CLI pull over http from the fault server: catalog, --json, --no-cache, --force", async () => {
  const home = await tempHome();
  const srv = startFaultServer();
  try {
    const data = makeData(1_500_000);
    await srv.setFile("/imgs/hello.sif", data);
    const env = { ...home.env, ...FAST };
    const r = await runCli([
      "--json",
      "pull",
      `${srv.url}/imgs/hello.sif`,
      "--name",
      "demo/hello:1.0",
    ], { env });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.digest, sha(data));
    assert.equal(out.size, data.length);
    assert.equal(out.uri.startsWith("demo/hello:1.0"), true, out.uri);
    assert.deepEqual(await Deno.readFile(out.path), data);
    const images = await runCli(["--json", "images"], { env });
    assert.match(images.stdout, /demo\/hello/);

    const cwd = join(home.dir, "work");
    await Deno.mkdir(cwd);
    // --no-cache: the file name comes from the name (<image>_<tag>.<ext>), as for every client.
    const nc = await runCli(["pull", "--no-cache", `${srv.url}/imgs/hello.sif`], { env, cwd });
    assert.equal(nc.code, 0, nc.stderr);
    assert.equal(nc.stdout.trim(), join(cwd, "hello_latest.sif"));
    const again = await runCli(["pull", "--no-cache", `${srv.url}/imgs/hello.sif`], { env, cwd });
    // "Already exists" is exit 2 for every client (it was 1 for http).
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists: use --force/);
    const forced = await runCli(["pull", "--no-cache", "--force", `${srv.url}/imgs/hello.sif`], {
      env,
      cwd,
    });
    assert.equal(forced.code, 0, forced.stderr);
    // Fixed: --name is honoured with --no-cache (http ignored it).
    const named = await runCli(
      ["pull", "--no-cache", "--name", "demo/hi:2", `${srv.url}/imgs/hello.sif`],
      { env, cwd },
    );
    assert.equal(named.code, 0, named.stderr);
    assert.equal(named.stdout.trim(), join(cwd, "hi_2.sif"));
    assert.deepEqual(await tree(cwd), ["hello_latest.sif", "hi_2.sif"]);

    // --file without --no-cache: stored in the catalog AND copied there.
    const copy = join(home.dir, "copy.sif");
    const both = await runCli(
      ["--json", "pull", "--file", copy, "--name", "demo/copy:1", `${srv.url}/imgs/hello.sif`],
      { env, cwd },
    );
    assert.equal(both.code, 0, both.stderr);
    const bj = JSON.parse(both.stdout);
    assert.equal(bj.copied_to, copy);
    assert.deepEqual(await Deno.readFile(copy), data);
    assert.deepEqual(await Deno.readFile(bj.path), data);
    assert.ok(bj.path.startsWith(home.env.SREGISTRY_STORAGE), bj.path);
    const exists = await runCli(["pull", "--file", copy, `${srv.url}/imgs/hello.sif`], { env });
    assert.equal(exists.code, 2, exists.stderr);
  } finally {
    await srv.close();
    await home.cleanup();
  }
});

Deno.test("CLI pull of a large file hashes on a worker under the cli permission set", async () => {
  const home = await tempHome();
  const srv = startFaultServer();
  try {
    const data = makeData(40 * 1024 * 1024 + 11, 7);
    await srv.setFile("/big.sif", data);
    const dest = join(home.dir, "big.sif");
    const r = await runCli(
      ["--debug", "pull", "--no-cache", "--file", dest, `${srv.url}/big.sif`],
      {
        env: { ...home.env, ...FAST },
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Hashing on a worker thread/);
    assert.doesNotMatch(r.stderr, /main thread/);
    const got = await Deno.readFile(dest);
    assert.equal(sha(got), sha(data));
  } finally {
    await srv.close();
    await home.cleanup();
  }
});

Deno.test("CLI failures map to exit codes and leave no final file and no catalog row", async () => {
  const home = await tempHome();
  const srv = startFaultServer();
  try {
    const env = { ...home.env, ...FAST, SREGISTRY_HTTP_RETRIES: "2" };
    const data = makeData(600_000);
    await srv.setFile("/wrong.sif", data);
    srv.setFault("/wrong.sif", { wrong: true });
    const w = await runCli(["pull", `${srv.url}/wrong.sif`], { env });
    assert.equal(w.code, 6, w.stderr);
    assert.match(w.stderr, /Digest mismatch/);

    await srv.setFile("/down.sif", data);
    srv.setFault("/down.sif", { status: { code: 503, times: 100 } });
    const d = await runCli(["pull", `${srv.url}/down.sif`], { env });
    assert.equal(d.code, 5, d.stderr);
    assert.match(d.stderr, /503/);

    const nf = await runCli(["pull", `${srv.url}/nope.sif`], { env });
    assert.equal(nf.code, 3, nf.stderr);

    await srv.setFile("/locked.sif", data);
    srv.setFault("/locked.sif", { token: { uses: 0 } });
    const a = await runCli(["pull", `${srv.url}/locked.sif`], { env });
    assert.equal(a.code, 4, a.stderr);

    // Nothing under a final name, and the catalog is empty.
    const files = await tree(home.env.SREGISTRY_STORAGE);
    assert.ok(files.every((f) => f.startsWith(".staging/")), files.join(","));
    const images = await runCli(["--json", "images"], { env });
    assert.equal(images.code, 0, images.stderr);
    assert.doesNotMatch(images.stdout, /wrong|down|locked/);
  } finally {
    await srv.close();
    await home.cleanup();
  }
});

Deno.test("CLI retries 429/500, resumes after drops and stalls, and refreshes an expiring token", async () => {
  const home = await tempHome();
  const srv = startFaultServer();
  try {
    const env = { ...home.env, ...FAST };
    const data = makeData(2_000_000);
    await srv.setFile("/f.sif", data);
    srv.setFault("/f.sif", {
      status: { code: 429, times: 1, retryAfter: "0" },
      drop: { after: 400_000, times: 2 },
      token: { uses: 1 },
    });
    const r = await runCli(["--json", "pull", `${srv.url}/f.sif`, "--name", "x/f"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).digest, sha(data));
    assert.ok(srv.tokensIssued >= 3, `tokens: ${srv.tokensIssued}`);
    assert.ok(srv.requests.some((q) => q.range?.startsWith("bytes=")));
    // The body crossed the wire about once, not once per attempt.
    assert.ok(srv.bytesSent < data.length * 1.5, `sent ${srv.bytesSent}`);
    // A stall (no bytes for SREGISTRY_STALL_TIMEOUT) is a dropped connection: resumed, not hung.
    await srv.setFile("/s.sif", data);
    srv.setFault("/s.sif", { stall: { after: 900_000, times: 1 } });
    const s = await runCli(["--json", "pull", `${srv.url}/s.sif`, "--name", "x/s"], { env });
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout).digest, sha(data));
    assert.ok(srv.requests.some((q) => q.path === "/s.sif" && q.range === "bytes=900000-"));
  } finally {
    await srv.close();
    await home.cleanup();
  }
});

Deno.test("CLI killed half-way (SIGKILL) fetches only the remainder on the next pull", async () => {
  const home = await tempHome();
  const srv = startFaultServer();
  try {
    const size = 48 * 1024 * 1024;
    const data = makeData(size, 7);
    await srv.setFile("/large.sif", data);
    srv.setFault("/large.sif", { rate: 24 * 1024 * 1024 });
    const env = { ...home.env, ...FAST };
    const child = spawnCli(["pull", `${srv.url}/large.sif`, "--name", "big/large"], { env });
    const staging = join(home.env.SREGISTRY_STORAGE, ".staging");
    let partialSize = 0;
    for (let i = 0; i < 400 && partialSize < size / 2; i++) {
      await new Promise((r) => setTimeout(r, 25));
      for (const f of await tree(staging)) {
        if (f.endsWith(".partial")) partialSize = (await Deno.stat(join(staging, f))).size;
      }
    }
    try {
      child.kill("SIGKILL");
    } catch { /* it ended on its own: the assertions below explain why */ }
    const st = await child.output();
    assert.notEqual(st.code, 0, new TextDecoder().decode(st.stderr));
    assert.ok(partialSize >= size / 2, `partial reached only ${partialSize}`);
    srv.setFault("/large.sif", {});
    const before = srv.bytesSent;
    const r = await runCli(["--json", "pull", `${srv.url}/large.sif`, "--name", "big/large"], {
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.digest, sha(data));
    const refetched = srv.bytesSent - before;
    assert.ok(
      refetched <= size - partialSize + 8 * 1024 * 1024,
      `refetched ${refetched} of ${size}`,
    );
    assert.ok(refetched < size * 0.55, `refetched ${refetched} of ${size}`);
    assert.ok(srv.requests.some((q) => q.range && q.ifRange));
    assert.deepEqual(await tree(staging), []);
  } finally {
    await srv.close();
    await home.cleanup();
  }
});

const ng = requirement(
  "nginx, openssl and htpasswd (apt-get install nginx openssl apache2-utils)",
  nginxAvailable(),
);

Deno.test({
  name:
    "CLI against nginx: http, https with SREGISTRY_CA_FILE, self-signed with NOVERIFY, basic auth",
  ignore: ng.ignore,
  async fn() {
    const home = await tempHome();
    const server = await startNginx();
    try {
      const data = makeData(1_000_000, 3);
      await Deno.writeFile(join(server.root, "img.sif"), data);
      await Deno.writeFile(join(server.root, "private", "img.sif"), data);
      const env = { ...home.env, ...FAST, SREGISTRY_HTTP_RETRIES: "1" };
      const p = await runCli(["--json", "pull", `${server.http}/img.sif`, "--name", "n/plain"], {
        env,
      });
      assert.equal(p.code, 0, p.stderr);
      assert.equal(JSON.parse(p.stdout).digest, sha(data));

      const tls = await runCli(["pull", `${server.https}/img.sif`, "--name", "n/tls"], { env });
      assert.equal(tls.code, 5);
      assert.match(tls.stderr, /TLS verification failed for 127\.0\.0\.1:\d+/);
      assert.equal(tls.stderr.trim().split("\n").length, 1, tls.stderr);
      const ca = await runCli(["pull", `${server.https}/img.sif`, "--name", "n/tls"], {
        env: { ...env, SREGISTRY_CA_FILE: server.caFile },
      });
      assert.equal(ca.code, 0, ca.stderr);

      const self = await runCli(["pull", `${server.selfSigned}/img.sif`, "--name", "n/self"], {
        env,
      });
      assert.equal(self.code, 5);
      const nv = await runCli(["pull", `${server.selfSigned}/img.sif`, "--name", "n/self"], {
        env: { ...env, SREGISTRY_HTTPS_NOVERIFY: "true" },
      });
      assert.equal(nv.code, 0, nv.stderr);
      assert.match(nv.stderr, /Verify of certificates disabled! ::TESTING USE ONLY::/);

      const noAuth = await runCli(["pull", `${server.http}/private/img.sif`, "--name", "n/priv"], {
        env,
      });
      assert.equal(noAuth.code, 4, noAuth.stderr);
      const authed = await runCli([
        "--debug",
        "pull",
        `${server.http}/private/img.sif`,
        "--name",
        "n/priv",
      ], {
        env: {
          ...env,
          SREGISTRY_HTTP_USERNAME: server.user.name,
          SREGISTRY_HTTP_PASSWORD: server.user.password,
        },
      });
      assert.equal(authed.code, 0, authed.stderr);
      assert.ok(!authed.stderr.includes(server.user.password));
    } finally {
      await server.stop();
      await home.cleanup();
    }
  },
});
