import assert from "./_assert.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { requirement, runCli, tempHome } from "./_cli.ts";
import { makeLargeFile, nginxAvailable, startNginx } from "./servers/nginx.ts";
import { startTinyproxy, tinyproxyAvailable } from "./servers/tinyproxy.ts";

const needs = requirement("nginx and tinyproxy", nginxAvailable() && tinyproxyAvailable());

async function sha(path: string): Promise<string> {
  return `sha256:${createHash("sha256").update(await Deno.readFile(path)).digest("hex")}`;
}

Deno.test({
  name: "pulls go through HTTP_PROXY / HTTPS_PROXY (CONNECT, custom CA) and skip it for NO_PROXY",
  ...needs,
  async fn() {
    const ng = await startNginx();
    const proxy = await startTinyproxy();
    const home = await tempHome();
    try {
      await makeLargeFile(join(ng.root, "p.sif"), 3 * 1024 * 1024);
      const want = await sha(join(ng.root, "p.sif"));
      const pull = (url: string, dest: string, env: Record<string, string>) =>
        runCli(["--json", "pull", "--no-cache", "--file", join(home.dir, dest), url], {
          env: { ...home.env, ...env },
        });
      const httpPort = new URL(ng.http).port, httpsPort = new URL(ng.https).port;

      const viaHttp = await pull(`${ng.http}/p.sif`, "a.sif", { HTTP_PROXY: proxy.url });
      assert.equal(viaHttp.code, 0, viaHttp.stderr);
      assert.equal(JSON.parse(viaHttp.stdout).digest, want);
      assert.deepEqual(await proxy.requests(), [`GET http://127.0.0.1:${httpPort}/p.sif`]);

      // https through a CONNECT tunnel, the certificate still checked against the test CA.
      const viaTunnel = await pull(`${ng.https}/p.sif`, "b.sif", {
        HTTPS_PROXY: proxy.url,
        SREGISTRY_CA_FILE: ng.caFile,
      });
      assert.equal(viaTunnel.code, 0, viaTunnel.stderr);
      assert.equal(JSON.parse(viaTunnel.stdout).digest, want);
      assert.equal((await proxy.requests()).at(-1), `CONNECT 127.0.0.1:${httpsPort}`);

      const before = (await proxy.requests()).length;
      const bypass: [string, Record<string, string>][] = [
        [`${ng.http}/p.sif`, { HTTP_PROXY: proxy.url, NO_PROXY: "127.0.0.1" }],
        [`${ng.https}/p.sif`, {
          HTTPS_PROXY: proxy.url,
          NO_PROXY: "localhost,127.0.0.1",
          SREGISTRY_CA_FILE: ng.caFile,
        }],
      ];
      for (const [i, [url, env]] of bypass.entries()) {
        const direct = await pull(url, `c${i}.sif`, env);
        assert.equal(direct.code, 0, direct.stderr);
      }
      assert.equal(
        (await proxy.requests()).length,
        before,
        "NO_PROXY hosts went through the proxy",
      );
    } finally {
      await proxy.stop();
      await ng.stop();
      await home.cleanup();
    }
  },
});

Deno.test({
  name: "an authenticating proxy: credentials from the proxy URL work and are never printed",
  ...needs,
  async fn() {
    const ng = await startNginx();
    const proxy = await startTinyproxy({ user: "proxyuser", password: "pr0xy-s3cret" });
    const home = await tempHome();
    try {
      await Deno.writeTextFile(join(ng.root, "a.sif"), "proxied\n");
      const ok = await runCli(
        ["--debug", "pull", "--no-cache", "--file", join(home.dir, "a.sif"), `${ng.http}/a.sif`],
        { env: { ...home.env, HTTP_PROXY: proxy.url } },
      );
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(await Deno.readTextFile(join(home.dir, "a.sif")), "proxied\n");
      assert.doesNotMatch(ok.stderr + ok.stdout, /pr0xy-s3cret/);

      // No credentials: a 407, which says where the credentials go. (tinyproxy answers a wrong
      // password with a plain 401, which reads as the server's refusal.)
      const bare = new URL(proxy.url);
      bare.username = bare.password = "";
      const bad = await runCli(
        ["pull", "--no-cache", "--file", join(home.dir, "b.sif"), `${ng.http}/a.sif`],
        { env: { ...home.env, HTTP_PROXY: bare.href, SREGISTRY_HTTP_RETRIES: "0" } },
      );
      assert.equal(bad.code, 4, bad.stderr);
      assert.match(
        bad.stderr,
        /^ERROR The proxy asks for credentials \(407 .*put "user:password@" before the proxy's host/,
      );
      assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
      assert.deepEqual(
        await Array.fromAsync(Deno.readDir(home.dir)).then((es) =>
          es.map((e) => e.name).filter((n) => n.startsWith("b.sif"))
        ),
        [],
      );
    } finally {
      await proxy.stop();
      await ng.stop();
      await home.cleanup();
    }
  },
});

Deno.test({
  name:
    "--insecure (SREGISTRY_HTTPS_NOVERIFY) still goes through HTTPS_PROXY, with its credentials",
  ...needs,
  async fn() {
    const ng = await startNginx();
    const proxy = await startTinyproxy({ user: "proxyuser", password: "pr0xy-s3cret" });
    const home = await tempHome();
    try {
      await makeLargeFile(join(ng.root, "n.sif"), 1024 * 1024);
      const want = await sha(join(ng.root, "n.sif"));
      const port = new URL(ng.selfSigned).port;
      // A self-signed leaf, so only the no-verify transport (node:https) can fetch it.
      const r = await runCli(
        [
          "--json",
          "--insecure",
          "pull",
          "--no-cache",
          "--file",
          join(home.dir, "n.sif"),
          `${ng.selfSigned}/n.sif`,
        ],
        { env: { ...home.env, HTTPS_PROXY: proxy.url } },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).digest, want);
      assert.match(r.stderr, /Verify of certificates disabled/);
      assert.doesNotMatch(r.stderr + r.stdout, /pr0xy-s3cret/);
      assert.ok(
        (await proxy.requests()).includes(`CONNECT 127.0.0.1:${port}`),
        `the pull did not tunnel: ${await proxy.requests()}`,
      );

      // A proxy that is down is named as such, not skipped.
      const down = await runCli(
        [
          "--insecure",
          "pull",
          "--no-cache",
          "--file",
          join(home.dir, "m.sif"),
          `${ng.selfSigned}/n.sif`,
        ],
        { env: { ...home.env, HTTPS_PROXY: "http://127.0.0.1:9", SREGISTRY_HTTP_RETRIES: "0" } },
      );
      assert.equal(down.code, 5, down.stderr);
      assert.match(down.stderr, /The proxy 127\.0\.0\.1:9 named by HTTPS_PROXY/);
    } finally {
      await proxy.stop();
      await ng.stop();
      await home.cleanup();
    }
  },
});
