import assert from "./_assert.ts";
import { join } from "node:path";
import { basicAuth, bearerToken } from "../core/auth/basic.ts";
import { bearerChallenge } from "../core/auth/bearer_challenge.ts";
import type { Authorizer } from "../core/auth/types.ts";
import { AuthError, ConfigError, NetworkError, NotFoundError } from "../core/errors.ts";
import {
  createHttp,
  describeFetchError,
  type HttpOptions,
  noProxyMatches,
  NOVERIFY_WARNING,
  parseRetryAfter,
  proxyFor,
  proxySetting,
  readBody,
  stripUserinfo,
} from "../core/http.ts";
import { createLogger, Level, memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";
import { download, upload } from "../core/transfer/mod.ts";
import { IN_CI, runCli, tempHome } from "./_cli.ts";
import { makeData, startFaultServer } from "./servers/fault_server.ts";
import { makeLargeFile, nginxAvailable, startNginx } from "./servers/nginx.ts";

function setup(extra: Partial<HttpOptions> = {}) {
  const sink = memorySink();
  const log = createLogger({ level: Level.DEBUG, sink });
  const sleeps: number[] = [];
  const http = createHttp({
    log,
    env: envFrom({}),
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    random: () => 0.5,
    ...extra,
  });
  return { http, sink, sleeps };
}

Deno.test("500 then 429 with Retry-After are retried with backoff, each attempt logged", async () => {
  const srv = startFaultServer();
  try {
    await srv.setFile("/x", new TextEncoder().encode("ok"));
    srv.setFault("/x", { status: { code: 503, times: 2 } });
    const { http, sink, sleeps } = setup();
    assert.equal(await (await http.request(`${srv.url}/x`)).text(), "ok");
    assert.deepEqual(sleeps, [375, 750]); // 500 ms * 2^n with jitter factor 0.75
    srv.setFault("/x", { status: { code: 429, times: 1, retryAfter: "2" } });
    await (await http.request(`${srv.url}/x`)).text();
    assert.equal(sleeps.at(-1), 2000);
    assert.match(sink.text(), /GET http:\/\/127\.0\.0\.1:\d+\/x -> 503 \(attempt 1\)/);
    assert.match(sink.text(), /-> 200 \(attempt 3\)/);
  } finally {
    await srv.close();
  }
});

Deno.test("--debug lines hide the signatures of presigned URLs and keep the rest of the query", async () => {
  const srv = startFaultServer();
  try {
    await srv.setFile("/part", new TextEncoder().encode("ok"));
    const { http, sink } = setup();
    const signed = `${srv.url}/part?partNumber=2&X-Amz-Credential=AKIA%2F20261201&` +
      "X-Amz-Signature=deadbeef1234&X-Goog-Signature=cafe&access_token=tok5&sig=s1&q=alpine";
    await (await http.request(signed)).text();
    const text = sink.text();
    // The logger hides credential-shaped query values; the rest of the query stays readable.
    assert.match(
      text,
      /partNumber=2&X-Amz-Credential=\*{3}&X-Amz-Signature=\*{3}&X-Goog-Signature=\*{3}&/,
    );
    assert.match(text, /access_token=\*{3}&sig=\*{3}&q=alpine -> 200/);
    for (const secret of ["AKIA", "deadbeef1234", "cafe", "tok5", "s1&"]) {
      assert.ok(!text.includes(secret), `${secret} leaked into: ${text}`);
    }
  } finally {
    await srv.close();
  }
});

Deno.test("retries are bounded: a server that keeps failing is a NetworkError (exit 5)", async () => {
  const srv = startFaultServer();
  try {
    await srv.setFile("/x", new TextEncoder().encode("ok"));
    srv.setFault("/x", { status: { code: 500, times: 100 } });
    const { http } = setup({ retries: 3 });
    const err = await http.request(`${srv.url}/x`).catch((e) => e);
    assert.ok(err instanceof NetworkError);
    assert.equal(err.status, 500);
    assert.equal(err.exitCode, 5);
    assert.equal(srv.requests.length, 4);
  } finally {
    await srv.close();
  }
});

Deno.test("connection refused is retried then reported with the host", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const { http, sleeps } = setup({ retries: 2 });
  const err = await http.request(`http://127.0.0.1:${port}/x`).catch((e) => e);
  assert.ok(err instanceof NetworkError, String(err));
  assert.match(err.message, new RegExp(`Cannot reach 127\\.0\\.0\\.1:${port}`));
  assert.equal(sleeps.length, 2);
});

Deno.test("404 is NotFoundError; 401 without a refresh is AuthError", async () => {
  const srv = startFaultServer();
  try {
    const { http } = setup();
    const e1 = await http.request(`${srv.url}/missing`).catch((e) => e);
    assert.ok(e1 instanceof NotFoundError);
    await srv.setFile("/t", new TextEncoder().encode("ok"));
    srv.setFault("/t", { token: { uses: 1 } });
    const e2 = await http.request(`${srv.url}/t`).catch((e) => e);
    assert.ok(e2 instanceof AuthError);
    assert.equal(e2.exitCode, 4);
  } finally {
    await srv.close();
  }
});

Deno.test("a 401 refreshes the token any number of times during a long transfer", async () => {
  const srv = startFaultServer();
  const dir = await Deno.makeTempDir();
  try {
    const data = makeData(3_000_000);
    await srv.setFile("/blob", data);
    // Each token serves one request and the body drops 4 times: 5 requests, 5 refreshes.
    srv.setFault("/blob", { token: { uses: 1 }, drop: { after: 500_000, times: 4 } });
    const { http, sink } = setup();
    const inner = bearerChallenge({ http, log: http.log });
    let refreshes = 0;
    const auth: Authorizer = {
      authorize: (r) => inner.authorize(r),
      onChallenge: (res, r) => {
        refreshes++;
        assert.equal(res.status, 401);
        return inner.onChallenge!(res, r);
      },
    };
    const r = await download({ http, url: `${srv.url}/blob`, dest: join(dir, "b"), auth });
    assert.equal(r.size, data.length);
    assert.equal(refreshes, 5);
    assert.equal(srv.tokensIssued, 5);
    // Tokens are secrets: the debug log never shows one.
    assert.doesNotMatch(sink.text(), /tok-\d+-/);
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("consecutive 401s after refreshes are bounded", async () => {
  const srv = startFaultServer();
  try {
    await srv.setFile("/t", new TextEncoder().encode("ok"));
    srv.setFault("/t", { token: { uses: 0 } });
    let calls = 0;
    const { http } = setup();
    const auth: Authorizer = {
      authorize() {},
      onChallenge: () => {
        calls++;
        return Promise.resolve(true);
      },
    };
    const err = await http.request(`${srv.url}/t`, { auth }).catch((e) => e);
    assert.ok(err instanceof AuthError);
    assert.equal(calls, 3);
  } finally {
    await srv.close();
  }
});

Deno.test("Authorization is not forwarded on a redirect to another origin", async () => {
  const a = startFaultServer(), b = startFaultServer();
  try {
    await b.setFile("/f", new TextEncoder().encode("there"));
    await a.setFile("/same", new TextEncoder().encode("here"));
    a.setFault("/r", { redirectTo: `${b.url}/f` });
    a.setFault("/s", { redirectTo: `/same` });
    const { http } = setup();
    const seen: string[] = [];
    const token = bearerToken("secret-token-1234");
    const auth: Authorizer = {
      authorize(r) {
        seen.push(r.url.origin);
        return token.authorize(r);
      },
    };
    assert.equal(
      await (await http.request(`${a.url}/r`, { headers: { cookie: "c=1" }, auth })).text(),
      "there",
    );
    assert.equal(a.requests[0].authorization, "Bearer secret-token-1234");
    assert.equal(b.requests[0].authorization, undefined);
    // The authorizer never even ran for the other origin.
    assert.deepEqual(seen, [a.url]);
    assert.equal(await (await http.request(`${a.url}/s`, { auth })).text(), "here");
    assert.equal(a.requests.at(-1)!.authorization, "Bearer secret-token-1234");
    a.setFault("/loop", { redirectTo: `/loop` });
    const err = await http.request(`${a.url}/loop`).catch((e) => e);
    assert.ok(err instanceof NetworkError);
    assert.match(err.message, /Too many redirects/);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("helpers: Retry-After, NO_PROXY and proxy selection", () => {
  assert.equal(parseRetryAfter("3"), 3000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(parseRetryAfter("soon"), undefined);
  const u = new URL("https://registry.example.org:5000/v2/");
  assert.ok(noProxyMatches(u, "localhost,.example.org"));
  assert.ok(noProxyMatches(u, "registry.example.org:5000"));
  assert.ok(!noProxyMatches(u, "example.com,registry.example.org:443"));
  assert.ok(noProxyMatches(u, "*"));
  const env = envFrom({
    HTTPS_PROXY: "http://proxy:3128",
    http_proxy: "http://p2:8080",
    NO_PROXY: "local",
  });
  assert.equal(proxyFor(u, env), "http://proxy:3128");
  assert.equal(proxyFor(new URL("http://x.org/"), env), "http://p2:8080");
  assert.equal(proxyFor(new URL("https://a.local/"), env), undefined);
  assert.deepEqual(proxySetting(new URL("http://x.org/"), env), {
    url: "http://p2:8080",
    variable: "http_proxy",
  });
});

Deno.test("stripUserinfo removes user and password, and nothing else", () => {
  assert.equal(
    stripUserinfo("https://u:p%40ss@host:5000/a/b.sif?x=1#f"),
    "https://host:5000/a/b.sif?x=1#f",
  );
  assert.equal(stripUserinfo(new URL("http://only-user@h/x")), "http://h/x");
  assert.equal(stripUserinfo("http://h/x"), "http://h/x");
  assert.equal(stripUserinfo("not a url://u:p@x"), "not a url://u:p@x");
  assert.equal(stripUserinfo("oras://u:p@h/r"), "oras://h/r");
});

Deno.test("a refused proxy names the proxy and its variable, not the target", () => {
  const e = new TypeError("error sending request", {
    cause: new Error("tcp connect error: Connection refused (os error 111)"),
  });
  const target = new URL("https://registry.example.org/v2/");
  const { message } = describeFetchError(e, target, {
    url: "http://user:pw@proxy.local:3128",
    variable: "HTTPS_PROXY",
  });
  assert.match(message, /^The proxy proxy\.local:3128 named by HTTPS_PROXY refused the connection/);
  assert.doesNotMatch(message, /pw/);
  assert.match(describeFetchError(e, target).message, /^Cannot reach registry\.example\.org/);
});

Deno.test("readBody caps by Content-Length before reading, and by bytes read", async () => {
  const http = { stallTimeoutMs: 1000 };
  const declared = new Response("x", { headers: { "content-length": "999999999" } });
  await assert.rejects(
    readBody(http, declared, { limit: 1024, what: "The answer" }),
    (e: Error) => e instanceof NetworkError && /larger than 1 KiB/.test(e.message),
  );
  const ok = await readBody(http, new Response("hello"), { limit: 5, what: "x" });
  assert.equal(new TextDecoder().decode(ok), "hello");
  await assert.rejects(
    readBody(http, new Response("hello!"), { limit: 5, what: "x" }),
    NetworkError,
  );
});

const noNginx = !nginxAvailable();
const ignoreNginx = noNginx && !IN_CI;
if (ignoreNginx) {
  console.warn(
    "SKIP nginx tests: nginx/openssl/htpasswd not installed (apt-get install nginx openssl apache2-utils)",
  );
}

Deno.test({
  name:
    "nginx: TLS with a test CA, failing without it, self-signed with NOVERIFY, basic auth, ranges",
  ignore: ignoreNginx,
  async fn() {
    const ng = await startNginx();
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(join(ng.root, "img.sif"), makeData(2_000_000));
      // Verified by default: a server signed by an unknown CA fails in one line naming host and reason.
      const plain = setup({ retries: 1 });
      const err = await plain.http.request(`${ng.https}/hello.txt`).catch((e) => e);
      assert.ok(err instanceof NetworkError, String(err));
      assert.match(
        err.message,
        /^TLS verification failed for 127\.0\.0\.1:\d+: UnknownIssuer;.*SREGISTRY_CA_FILE/,
      );
      assert.ok(!err.message.includes("\n"));
      // With the CA.
      const withCa = setup({ caFile: ng.caFile });
      assert.equal(
        await (await withCa.http.request(`${ng.https}/hello.txt`)).text(),
        "hello nginx\n",
      );
      const r = await download({
        http: withCa.http,
        url: `${ng.https}/img.sif`,
        dest: join(dir, "a.sif"),
      });
      assert.equal(r.size, 2_000_000);
      // Self-signed: fails by default, passes with insecure and a warning.
      const e2 = await plain.http.request(`${ng.selfSigned}/hello.txt`).catch((e) => e);
      assert.ok(e2 instanceof NetworkError);
      const insecure = setup({ insecure: true });
      assert.equal(
        await (await insecure.http.request(`${ng.selfSigned}/hello.txt`)).text(),
        "hello nginx\n",
      );
      assert.ok(insecure.sink.text().includes(NOVERIFY_WARNING));
      await makeLargeFile(join(ng.root, "big.sif"), 40 * 1024 * 1024);
      const r2 = await download({
        http: insecure.http,
        url: `${ng.selfSigned}/big.sif`,
        dest: join(dir, "b.sif"),
        parallel: 2,
        parallelThreshold: 1,
      });
      const r3 = await download({
        http: withCa.http,
        url: `${ng.https}/big.sif`,
        dest: join(dir, "c.sif"),
        parallel: 1,
      });
      assert.equal(r2.digest, r3.digest);
      assert.equal(r2.streams, 2);
      assert.equal(r3.streams, 1);
      // Basic auth.
      const e3 = await plain.http.request(`${ng.http}/private/hello.txt`).catch((e) => e);
      assert.ok(e3 instanceof AuthError);
      assert.match(e3.message, /Authentication required \(401/);
      const authed = setup();
      const basic = basicAuth({ username: ng.user.name, password: ng.user.password });
      assert.equal(
        await (await authed.http.request(`${ng.http}/private/hello.txt`, { auth: basic })).text(),
        "hello private\n",
      );
      const wrong = basicAuth({ username: ng.user.name, password: "wrong" });
      const e4 = await plain.http.request(`${ng.http}/private/hello.txt`, { auth: wrong }).catch((
        e,
      ) => e);
      assert.ok(e4 instanceof AuthError);
      assert.match(e4.message, /Authentication failed \(401.*check the credentials/);
      // Range.
      const part = await plain.http.request(`${ng.http}/img.sif`, {
        headers: { range: "bytes=10-19" },
      });
      assert.equal(part.status, 206);
      assert.equal((await part.arrayBuffer()).byteLength, 10);
    } finally {
      await ng.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "nginx: uploads stream a file, verified and self-signed (NOVERIFY), with no buffering",
  ignore: ignoreNginx,
  async fn() {
    const ng = await startNginx();
    const dir = await Deno.makeTempDir();
    try {
      const data = makeData(5 * 1024 * 1024 + 17, 11);
      const file = join(dir, "up.sif");
      await Deno.writeFile(file, data);
      const withCa = setup({ caFile: ng.caFile });
      const insecure = setup({ insecure: true });
      const a = await upload({ http: withCa.http, url: `${ng.https}/upload/a.sif`, file });
      const b = await upload({ http: insecure.http, url: `${ng.selfSigned}/upload/b.sif`, file });
      assert.deepEqual([a.status, b.status], [201, 201]);
      assert.deepEqual(await Deno.readFile(join(ng.root, "upload", "a.sif")), data);
      assert.deepEqual(await Deno.readFile(join(ng.root, "upload", "b.sif")), data);
      // A buffer body keeps its length in NOVERIFY mode too (some services refuse chunked PUTs).
      const c = await insecure.http.request(`${ng.selfSigned}/upload/c.txt`, {
        method: "PUT",
        body: new TextEncoder().encode("small"),
      });
      await c.body?.cancel();
      assert.equal(await Deno.readTextFile(join(ng.root, "upload", "c.txt")), "small");
      // nginx writes its access log after the answer: wait for the third line (a loaded machine).
      let log: string[] = [];
      for (let i = 0; i < 100 && log.length < 3; i++) {
        log = (await Deno.readTextFile(ng.uploadLog)).trim().split("\n").filter((l) => l !== "");
        if (log.length < 3) await new Promise((r) => setTimeout(r, 20));
      }
      // The file bodies went as streams (chunked), the buffer with its Content-Length.
      assert.deepEqual(log, [
        'PUT 201 "chunked" "-" /upload/a.sif',
        'PUT 201 "chunked" "-" /upload/b.sif',
        'PUT 201 "-" "5" /upload/c.txt',
      ]);
    } finally {
      await ng.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("a missing, unreadable or non-PEM CA file is a ConfigError naming it and the setting", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = join(dir, "nope.pem");
    const e1 = await setup({ caFile: missing }).http.request("https://127.0.0.1:1/x").catch((e) =>
      e
    );
    assert.ok(e1 instanceof ConfigError, String(e1));
    assert.equal(e1.exitCode, 2);
    assert.equal(
      e1.message,
      `Cannot read the CA file "${missing}" named by SREGISTRY_CA_FILE (it does not exist); fix the path or unset SREGISTRY_CA_FILE`,
    );
    const text = join(dir, "notes.txt");
    await Deno.writeTextFile(text, "not a certificate\n");
    const e2 = await setup({ caFile: text, caFileSetting: "SSL_CERT_FILE" }).http.request(
      "https://127.0.0.1:1/x",
    ).catch((e) => e);
    assert.ok(e2 instanceof ConfigError, String(e2));
    assert.match(e2.message, /^The CA file ".*notes\.txt" named by SSL_CERT_FILE holds no PEM/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("https to a plain-http server says so and names the fix, without retrying", async () => {
  const srv = startFaultServer();
  try {
    await srv.setFile("/x", new TextEncoder().encode("ok"));
    const https = srv.url.replace(/^http:/, "https:");
    for (const insecure of [false, true]) {
      const { http, sleeps } = setup({ insecure });
      const err = await http.request(`${https}/x`).catch((e) => e);
      assert.ok(err instanceof NetworkError, String(err));
      assert.match(
        err.message,
        /^127\.0\.0\.1:\d+ answered plain HTTP to an https request; use http:\/\/127\.0\.0\.1:\d+\/x instead, or the client's NOHTTPS setting/,
      );
      assert.equal(sleeps.length, 0);
    }
  } finally {
    await srv.close();
  }
});

Deno.test("a 403 suggests credentials only when some were sent", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("Forbidden", { status: 403 }),
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/secret/img.sif`;
    const { http } = setup();
    const bare = await http.request(url).catch((e) => e);
    assert.ok(bare instanceof AuthError);
    assert.match(
      bare.message,
      /^Access denied \(403 Forbidden\) for GET .*: the server refuses access to that path$/,
    );
    assert.doesNotMatch(bare.message, /credentials/);
    const withAuth = await http.request(url, { auth: bearerToken("t") }).catch((e) => e);
    assert.match(withAuth.message, /^Permission denied \(403 Forbidden\).*check the credentials/);
  } finally {
    await server.shutdown();
  }
});

Deno.test({
  name: "CLI: NOVERIFY works with NODE_EXTRA_CA_CERTS set; CA file and plain-http errors",
  ignore: ignoreNginx,
  async fn() {
    const ng = await startNginx();
    const home = await tempHome();
    try {
      const pull = (url: string, env: Record<string, string>) =>
        runCli(["pull", "--no-cache", "--force", "--file", join(home.dir, "h.txt"), url], {
          env: { ...home.env, SREGISTRY_HTTP_RETRIES: "0", ...env },
        });
      const nv = await pull(`${ng.selfSigned}/hello.txt`, {
        SREGISTRY_HTTPS_NOVERIFY: "true",
        NODE_EXTRA_CA_CERTS: ng.caFile,
      });
      assert.equal(nv.code, 0, nv.stderr);
      assert.equal(await Deno.readTextFile(join(home.dir, "h.txt")), "hello nginx\n");
      const missing = await pull(`${ng.https}/hello.txt`, {
        SREGISTRY_CA_FILE: join(home.dir, "missing.pem"),
      });
      assert.equal(missing.code, 2, missing.stderr);
      assert.match(
        missing.stderr,
        /^ERROR Cannot read the CA file ".*missing\.pem" named by SREGISTRY_CA_FILE/,
      );
      const plain = await pull(`${ng.http.replace("http:", "https:")}/hello.txt`, {});
      assert.equal(plain.code, 5, plain.stderr);
      assert.match(plain.stderr, /answered plain HTTP to an https request; use http:\/\//);
      assert.equal(plain.stderr.trim().split("\n").length, 1, plain.stderr);
    } finally {
      await ng.stop();
      await home.cleanup();
    }
  },
});
