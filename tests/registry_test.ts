/**
 * registry:// beyond the conformance suite: the signed header as the server validates it, the
 * strict fake's refusals, and each bug of sregistry-cli's registry client, fixed (the hour boundary,
 * endless pagination, name-only searches, `/api` string surgery, the 200-with-`429` body), plus
 * private pulls, the 413 and 504 upload paths, delete, labels, build and legacy credentials.
 * @module
 */

import { createHmac } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { runCli, tempHome } from "./_cli.ts";
import { FAST_ENV } from "./conformance.ts";
import { startSregistryServerFake } from "./servers/sregistry_server_fake.ts";
import { createApp } from "../mod.ts";
import { FACTORIES } from "../clients/mod.ts";
import { createRegistryFactory, endpointsOf, resolveEndpoints } from "../clients/registry/mod.ts";
import { hmacTimestamp, registryAuthHeader, registryHmacAuth } from "../core/auth/hmac.ts";
import { AuthError, ConfigError, NetworkError } from "../core/errors.ts";
import { memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";

const USER = "vanessa";
const TOKEN = "tok-0123456789abcdef";
const HOUR = 3_600_000;
const opts = { sanitizeOps: false, sanitizeResources: false };

async function setup(fakeOptions: { maxBodyBytes?: number } = {}) {
  const fake = startSregistryServerFake({
    users: [{ username: USER, token: TOKEN }, { username: "other", token: "other-token-xyz" }],
    ...fakeOptions,
  });
  const h = await tempHome();
  const env = {
    ...h.env,
    ...FAST_ENV,
    SREGISTRY_REGISTRY_BASE: fake.api,
    SREGISTRY_REGISTRY_USERNAME: USER,
    SREGISTRY_REGISTRY_TOKEN: TOKEN,
  };
  const file = join(h.dir, "image.sif");
  const bytes = new Uint8Array(200_000);
  for (let i = 0; i < bytes.length; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, i + 65536));
  }
  await Deno.writeFile(file, bytes);
  return {
    fake,
    h,
    env,
    file,
    bytes,
    async stop() {
      await fake.stop();
      await h.cleanup();
    },
  };
}

/** A client built in-process with an injected clock. */
function client(env: Record<string, string>, now: () => number) {
  const factory = createRegistryFactory({ now, buildInterval: 10 });
  const app = createApp({
    env: envFrom(env),
    factories: [...FACTORIES.filter((f) => f.scheme !== "registry"), factory],
    stdout: memorySink(),
    stderr: memorySink(),
  });
  return { app, client: app.getClient("registry://x/y").client };
}

Deno.test("hmac: the header, byte for byte as the server computes it", () => {
  const at = Date.UTC(2024, 0, 15, 13, 59, 59, 999);
  assertEquals(hmacTimestamp(at), "20240115T13Z");
  assertEquals(hmacTimestamp(at + 1), "20240115T14Z");
  const image = { collection: "c", name: "i", tag: "t" };
  const sig = createHmac("sha256", "k").update("push|c|20240115T13Z|i|t|").digest("hex");
  assertEquals(
    registryAuthHeader("push", image, { username: "vanessa", token: "k" }, at),
    `SREGISTRY-HMAC-SHA256 Credential=push/dmFuZXNzYQ==/20240115T13Z,Signature=${sig}`,
  );
  // Signed per attempt: the authorizer follows the clock.
  let t = at;
  const auth = registryHmacAuth({
    kind: "pull",
    image,
    credentials: { username: "u", token: "k" },
    now: () => t,
  });
  const headers = new Headers();
  auth.authorize({ url: new URL("http://h/"), method: "GET", headers });
  assertEquals(auth.signedHour, "20240115T13Z");
  t += 1;
  auth.authorize({ url: new URL("http://h/"), method: "GET", headers });
  assert(headers.get("authorization")!.includes("/20240115T14Z,"));
});

Deno.test("registry: endpoints from the parsed URL, no /api string surgery", () => {
  const cases: [string, string, string][] = [
    ["https://r.example.org", "https://r.example.org/api/", "https://r.example.org/"],
    ["https://r.example.org/api/", "https://r.example.org/api/", "https://r.example.org/"],
    ["https://api.example.org/api", "https://api.example.org/api/", "https://api.example.org/"],
    ["https://h/apis/api", "https://h/apis/api/", "https://h/apis/"],
    ["https://h/sub", "https://h/sub/api/", "https://h/sub/"],
    ["127.0.0.1:8000", "http://127.0.0.1:8000/api/", "http://127.0.0.1:8000/"],
  ];
  for (const [base, api, root] of cases) {
    const ep = endpointsOf(base);
    assertEquals([ep.api.href, ep.root.href], [api, root], base);
  }
  assertEquals(endpointsOf("r.example.org", "true").api.protocol, "http:");
  // A host in the URI: the base's path when it is the base's host, else the host's root; NOHTTPS
  // picks the scheme of a host named without one.
  assertEquals(
    resolveEndpoints("r.example.org", "https://r.example.org/sub/api", undefined).api.href,
    "https://r.example.org/sub/api/",
  );
  assertEquals(
    resolveEndpoints("other.example.org", "https://r.example.org/sub", undefined).api.href,
    "https://other.example.org/api/",
  );
  assertEquals(
    resolveEndpoints("other.example.org:8000", undefined, "true").root.href,
    "http://other.example.org:8000/",
  );
  assertEquals(resolveEndpoints(undefined, "r.example.org", "false").api.protocol, "https:");
  assertThrows(() => resolveEndpoints(undefined, undefined, undefined), ConfigError);
});

Deno.test({
  name: "fake: a wrong token, a wrong kind and a stale hour are refused (500 HTML), as the server",
  ...opts,
  async fn() {
    const s = await setup();
    try {
      const image = { collection: "c", name: "i", tag: "t" };
      const post = (authorization: string) =>
        fetch(`${s.fake.api}/upload/chunked_upload`, {
          method: "POST",
          headers: { authorization, "content-type": "application/json" },
          body: JSON.stringify(image),
        });
      const me = { username: USER, token: TOKEN };
      const cases = [
        registryAuthHeader("push", image, { username: USER, token: "wrong" }, Date.now()),
        registryAuthHeader("pull", image, me, Date.now()),
        registryAuthHeader("push", image, me, Date.now() - HOUR),
        registryAuthHeader("push", image, me, Date.now()).replace(",", ", "),
      ];
      for (const c of cases) {
        const r = await post(c);
        assertEquals(r.status, 500, c);
        assert((r.headers.get("content-type") ?? "").startsWith("text/html"));
        await r.body?.cancel();
      }
      assertEquals(s.fake.refusals.length, 4, s.fake.refusals.join("; "));
      const ok = await post(registryAuthHeader("push", image, me, Date.now()));
      assertEquals(ok.status, 200);
      assertEquals(typeof (await ok.json()).cid, "number");
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "registry: a push signed just before the hour and refused after it is signed again, once",
  ...opts,
  async fn() {
    const s = await setup();
    try {
      // The first signature carries the previous hour (13:59:59 on the client, 14:00 at the
      // server); from then on the client's clock agrees with the server's.
      let calls = 0;
      const { app, client: c } = client(s.env, () => Date.now() - (calls++ === 0 ? HOUR : 0));
      await c.push!(s.file, { name: "demo/hello:v1" });
      assertEquals(s.fake.refusals.length, 1, s.fake.refusals.join("; "));
      assert(/stale timestamp/.test(s.fake.refusals[0]));
      assertEquals(s.fake.get("demo/hello:v1")?.data?.length, s.bytes.length);
      app.close();

      // A clock an hour off for good: refused, exit 4, and the message names the clock.
      const late = client(s.env, () => Date.now() - HOUR);
      const e = await assertRejects(
        () => late.client.push!(s.file, { name: "demo/hello:v2" }),
        AuthError,
      );
      assert(/clock/.test((e as Error).message), (e as Error).message);
      late.app.close();
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "registry: search of every collection follows pages and ends (the original looped)",
  ...opts,
  async fn() {
    const s = await setup();
    try {
      for (let i = 0; i < 25; i++) s.fake.put(`col${i}/img:v1`, new Uint8Array([i]));
      s.fake.put("secret/img:v1", new Uint8Array([1]), { private: true });
      const r = await runCli(["--json", "search", "registry://"], { env: s.env });
      assertEquals(r.code, 0, r.stderr);
      const hits = JSON.parse(r.stdout) as { uri: string }[];
      assertEquals(hits.length, 25);
      assert(!hits.some((x) => x.uri.includes("secret/")), "a private collection was listed");
      assertEquals(s.fake.requests.filter((x) => x.startsWith("GET /api/collections/")).length, 3);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "registry: name-only, collection/name and collection searches work; --endpoint",
  ...opts,
  async fn() {
    const s = await setup();
    try {
      s.fake.put("vsoch/dinosaur:v1", new Uint8Array([1]));
      s.fake.put("vsoch/dinosaur:v2", new Uint8Array([2]));
      s.fake.put("other/dinosaur:v1", new Uint8Array([3]));
      const search = async (q: string, extra: string[] = [], env = s.env) => {
        const r = await runCli(["--json", "search", ...extra, q], { env });
        assertEquals(r.code, 0, `${q}: ${r.stderr}`);
        return (JSON.parse(r.stdout) as { uri: string }[]).map((x) => x.uri).sort();
      };
      assertEquals((await search("registry:///dinosaur")).length, 3);
      assertEquals(await search("registry:///dinosaur:v2"), ["registry://vsoch/dinosaur:v2"]);
      assertEquals((await search("registry://vsoch/dinosaur")).length, 2);
      assertEquals(await search("registry://vsoch/dinosaur:v1"), ["registry://vsoch/dinosaur:v1"]);
      assertEquals((await search("registry://vsoch")).length, 2);
      assertEquals(await search("registry://nosuch/"), []);
      // --endpoint: another server than the base (here the same fake under its root URL).
      const env = { ...s.env, SREGISTRY_REGISTRY_BASE: "http://127.0.0.1:9/api" };
      const hits = await search("registry://other", ["--endpoint", s.fake.url], env);
      assertEquals(hits, [`registry://${new URL(s.fake.url).host}/other/dinosaur:v1`]);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "registry: private pulls, the weekly limit's 200 `429` body, a host in the URI",
  ...opts,
  async fn() {
    const s = await setup();
    try {
      s.fake.put("lab/private:v1", s.bytes, { private: true });
      s.fake.put("lab/limited:v1", s.bytes, { weeklyLimit: 0 });
      s.fake.put("lab/public:v1", s.bytes);
      const anon = { ...s.env, SREGISTRY_REGISTRY_USERNAME: "", SREGISTRY_REGISTRY_TOKEN: "" };
      const denied = await runCli(["pull", "registry://lab/private:v1"], { env: anon });
      assertEquals(denied.code, 4, denied.stderr);
      assert(/private/.test(denied.stderr), denied.stderr);
      const other = {
        ...s.env,
        SREGISTRY_REGISTRY_USERNAME: "other",
        SREGISTRY_REGISTRY_TOKEN: "other-token-xyz",
      };
      const notOwner = await runCli(["pull", "registry://lab/private:v1"], { env: other });
      assertEquals(notOwner.code, 4, notOwner.stderr);
      const ok = await runCli(["--json", "pull", "registry://lab/private:v1"], { env: s.env });
      assertEquals(ok.code, 0, ok.stderr);
      assertEquals(await Deno.readFile(JSON.parse(ok.stdout).path), s.bytes);
      assert(s.fake.refusals.length === 0, s.fake.refusals.join("; "));

      const limited = await runCli(["pull", "registry://lab/limited:v1"], { env: s.env });
      assertEquals(limited.code, 5, limited.stderr);
      assert(/download limit/.test(limited.stderr), limited.stderr);
      // One read left: the lookup passes and the download itself hits the limit (403 HTML).
      s.fake.put("lab/last:v1", s.bytes, { weeklyLimit: 1 });
      const last = await runCli(["pull", "registry://lab/last:v1"], { env: s.env });
      assertEquals(last.code, 5, last.stderr);
      assert(/refused the download .*weekly download limit/.test(last.stderr), last.stderr);

      // No base at all: the host in the URI is the server (loopback: http).
      const host = new URL(s.fake.url).host;
      const noBase = { ...s.env, SREGISTRY_REGISTRY_BASE: "" };
      const r = await runCli(["--json", "pull", `registry://${host}/lab/public:v1`], {
        env: noBase,
      });
      assertEquals(r.code, 0, r.stderr);
      assert(JSON.parse(r.stdout).uri.startsWith(`${host}/lab/public:v1`), r.stdout);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "registry: a 413 from the proxy names the limit; a 504 after the last byte is not re-sent",
  ...opts,
  async fn() {
    const s = await setup({ maxBodyBytes: 100_000 });
    try {
      const big = await runCli(["push", s.file, "--name", "registry://demo/big:v1"], {
        env: s.env,
      });
      assertEquals(big.code, 5, big.stderr);
      assert(/413/.test(big.stderr) && /client_max_body_size/.test(big.stderr), big.stderr);
      assertEquals(s.fake.get("demo/big:v1"), undefined);
    } finally {
      await s.stop();
    }
    const t = await setup();
    try {
      t.fake.gatewayTimeouts = 1;
      const r = await runCli(["--json", "push", t.file, "--name", "registry://demo/slow:v1"], {
        env: t.env,
      });
      assertEquals(r.code, 0, r.stderr);
      assertEquals(t.fake.requests.filter((x) => x === "POST /upload").length, 1);
      assertEquals(t.fake.get("demo/slow:v1")?.data, t.bytes);
      assert(/has the image/.test(r.stderr), r.stderr);
    } finally {
      await t.stop();
    }
  },
});

Deno.test({
  name:
    "registry: a 504 that lost the upload is checked, then re-sent signed for the hour it is sent in",
  ...opts,
  async fn() {
    const s = await setup();
    try {
      s.fake.lostUploads = 1;
      // Once the client has looked for the image after the 504, both clocks are an hour on: the
      // retry must carry the new hour (a signature made for the first attempt would be stale).
      const checked = () =>
        s.fake.requests.some((r) => r.startsWith("GET /api/container/demo/lost:v1"));
      Object.defineProperty(s.fake, "clockOffsetMs", { get: () => checked() ? HOUR : 0 });
      const stderr = memorySink(true);
      const factory = createRegistryFactory({ now: () => Date.now() + (checked() ? HOUR : 0) });
      const app = createApp({
        env: envFrom(s.env),
        factories: [...FACTORIES.filter((f) => f.scheme !== "registry"), factory],
        stdout: memorySink(),
        stderr,
      });
      const c = app.getClient("registry://x/y").client;
      const r = await c.push!(s.file, { name: "demo/lost:v1" });
      app.close();
      assertEquals(r.size, s.bytes.length);
      const order = s.fake.requests.filter((x) => /^(POST \/upload|GET \/api\/container)/.test(x));
      assertEquals(order, ["POST /upload", "GET /api/container/demo/lost:v1", "POST /upload"]);
      assertEquals(s.fake.refusals, [], "a retry was signed for the hour of the first attempt");
      assertEquals(s.fake.get("demo/lost:v1")?.data, s.bytes);
      // The upload drew progress on the terminal, restarted for the retry.
      assert(/demo\/lost:v1 .*195\.3 KiB\/195\.3 KiB/.test(stderr.text()), stderr.text());
      assert(/retrying/.test(stderr.text()), stderr.text());
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "registry: push and delete with the host in the URI and no base (no /api lost)",
  ...opts,
  async fn() {
    const s = await setup();
    try {
      const host = new URL(s.fake.url).host;
      const env = { ...s.env, SREGISTRY_REGISTRY_BASE: "" };
      const uri = `registry://${host}/lab/hosted:v1`;
      const push = await runCli(["--json", "push", s.file, "--name", uri], { env });
      assertEquals(push.code, 0, push.stderr);
      assertEquals(JSON.parse(push.stdout).url, `${s.fake.api}/container/lab/hosted:v1`);
      assert(s.fake.requests.includes("POST /api/upload/chunked_upload"), `${s.fake.requests}`);
      const del = await runCli(["--json", "delete", "--force", uri], { env });
      assertEquals(del.code, 0, del.stderr);
      assertEquals(JSON.parse(del.stdout).deleted, [uri]);
      assert(s.fake.requests.includes("DELETE /api/container/lab/hosted:v1"));
      assertEquals(s.fake.get("lab/hosted:v1"), undefined);
      const again = await runCli(["--json", "delete", "--force", uri], { env });
      assertEquals(again.code, 3, again.stderr);
      // The collection check comes first: a user without push rights sends no upload at all.
      const other = {
        ...env,
        SREGISTRY_REGISTRY_USERNAME: "other",
        SREGISTRY_REGISTRY_TOKEN: "other-token-xyz",
      };
      const uploads = s.fake.requests.filter((x) => x === "POST /upload").length;
      const refused = await runCli(["push", s.file, "--name", uri], { env: other });
      assertEquals(refused.code, 4, refused.stderr);
      assert(/push rights/.test(refused.stderr), refused.stderr);
      assertEquals(s.fake.requests.filter((x) => x === "POST /upload").length, uploads);
      assertEquals(JSON.parse(again.stderr.trim().split("\n").at(-1)!).error.kind, "not_found");
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "registry: delete asks unless --force; frozen is refused; labels and legacy credentials",
  ...opts,
  async fn() {
    const s = await setup();
    try {
      s.fake.put("lab/gone:v1", s.bytes, { labels: { maintainer: "vsoch", version: "1" } });
      s.fake.put("lab/ice:v1", s.bytes, { frozen: true, labels: { maintainer: "vsoch" } });
      const no = await runCli(["delete", "registry://lab/gone:v1"], { env: s.env, stdin: "n\n" });
      assertEquals(no.code, 0, no.stderr);
      assert(/Nothing deleted/.test(no.stderr), no.stderr);
      assert(s.fake.get("lab/gone:v1"));

      const labels = await runCli(["--json", "labels", "-k", "maintainer"], {
        env: { ...s.env, SREGISTRY_CLIENT: "registry" },
      });
      assertEquals(labels.code, 0, labels.stderr);
      assertEquals(
        (JSON.parse(labels.stdout) as { uri: string }[]).map((x) => x.uri).sort(),
        ["lab/gone:v1", "lab/ice:v1"],
      );
      const byValue = await runCli(["--json", "labels", "-k", "version", "-v", "1"], {
        env: { ...s.env, SREGISTRY_CLIENT: "registry" },
      });
      assertEquals(byValue.code, 0, byValue.stderr);
      assertEquals((JSON.parse(byValue.stdout) as { uri: string }[]).map((x) => x.uri), [
        "lab/gone:v1",
      ]);
      assert(s.fake.requests.includes("GET /api/labels/search/version/key/1/value"));
      const local = await runCli(["--json", "labels", "-k", "maintainer"], { env: s.env });
      assertEquals(JSON.parse(local.stdout), [], "without the registry active: the catalog");
      // Activated in the secrets file, as with SREGISTRY_CLIENT.
      assertEquals((await runCli(["backend", "activate", "registry"], { env: s.env })).code, 0);
      const active = await runCli(["--json", "labels", "-v", "vsoch"], { env: s.env });
      assertEquals(active.code, 0, active.stderr);
      assertEquals((JSON.parse(active.stdout) as unknown[]).length, 2, active.stdout);
      assertEquals((await runCli(["backend", "deactivate"], { env: s.env })).code, 0);

      const yes = await runCli(["delete", "--force", "registry://lab/gone:v1"], { env: s.env });
      assertEquals(yes.code, 0, yes.stderr);
      assertEquals(s.fake.get("lab/gone:v1"), undefined);
      const ice = await runCli(["delete", "--force", "registry://lab/ice:v1"], { env: s.env });
      assertEquals(ice.code, 4, ice.stderr);
      assert(/frozen/.test(ice.stderr), ice.stderr);

      // The server's downloadable credentials file, used as the secrets file as it is.
      await Deno.writeTextFile(
        s.h.env.SREGISTRY_CLIENT_SECRETS,
        JSON.stringify({ registry: { base: s.fake.url, username: USER, token: TOKEN } }),
      );
      const bare = { ...s.h.env, ...FAST_ENV };
      const push = await runCli(["push", s.file, "--name", "registry://lab/legacy:v1"], {
        env: bare,
      });
      assertEquals(push.code, 0, push.stderr);
      assert(!push.stderr.includes(TOKEN));
      assertEquals(s.fake.get("lab/legacy:v1")?.data, s.bytes);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "registry: build sends the recipe and polls until the server's build ends",
  ...opts,
  async fn() {
    const s = await setup();
    try {
      s.fake.put("lab/base:v1", new Uint8Array([1]));
      const { app, client: c } = client(s.env, Date.now);
      const recipe = join(s.h.dir, "Singularity");
      await Deno.writeTextFile(recipe, "Bootstrap: docker\nFrom: alpine\n");
      const out = await c.build!(recipe, { name: "lab/built:v1", extra: ["google_build"] });
      assertEquals(out.status, "SUCCESS");
      assert(typeof out.image === "string", JSON.stringify(out));
      const polls = s.fake.requests.filter((x) => x === "GET /api/container/lab/built:v1");
      assertEquals(polls.length, 3, s.fake.requests.join("\n"));
      await Deno.writeTextFile(recipe, "Bootstrap: docker\nFrom: alpine\n%post\n FAIL\n");
      await assertRejects(
        () => c.build!(recipe, { name: "lab/broken:v1", extra: [] }),
        NetworkError,
      );
      app.close();
      const cli = await runCli(["--json", "build", "--name", "registry://lab/cli:v1", recipe], {
        env: s.env,
      });
      assertEquals(cli.code, 5, cli.stderr);
      const err = JSON.parse(cli.stderr.trim().split("\n").at(-1)!).error;
      assert(/FAILURE/.test(err.message), cli.stderr);
      assertEquals(err.exitCode, 5);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "registry: a listing whose `next` repeats itself, or leaves the server, still ends",
  ...opts,
  async fn() {
    let n = 0;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      n++;
      const url = new URL(req.url);
      const second = url.searchParams.has("offset");
      // /a/: page 2 names itself as next; /b/: page 2 sends the listing to another host.
      const next = !second
        ? `${url.origin}${url.pathname}?limit=10&offset=10`
        : url.pathname.startsWith("/a/")
        ? url.href
        : "http://elsewhere.invalid/api/collections/";
      return Response.json({
        count: 99,
        next,
        previous: null,
        results: [{ name: "c", containers: [{ uri: `c/i:${second ? 2 : 1}`, tag: "t" }] }],
      });
    });
    const h = await tempHome();
    try {
      for (const prefix of ["a", "b"]) {
        n = 0;
        const env = {
          ...h.env,
          ...FAST_ENV,
          SREGISTRY_REGISTRY_BASE: `http://127.0.0.1:${server.addr.port}/${prefix}/api`,
        };
        const { app, client: c } = client(env, Date.now);
        const hits = await c.search!(undefined);
        assertEquals(hits.map((x) => x.uri), ["registry://c/i:1", "registry://c/i:2"], prefix);
        assertEquals(n, 2, prefix);
        app.close();
      }
    } finally {
      await server.shutdown();
      await h.cleanup();
    }
  },
});
