/**
 * Issue 10 against a hostile server: the CLI (as users run it, -P=cli) and in-process code. Each
 * test names the item it proves.
 */
import assert from "./_assert.ts";
import { join } from "node:path";
import { basicAuth } from "../core/auth/basic.ts";
import { bearerChallenge } from "../core/auth/bearer_challenge.ts";
import type { AuthRequest } from "../core/auth/types.ts";
import { NetworkError } from "../core/errors.ts";
import { createHttp, type HttpOptions } from "../core/http.ts";
import { createLogger, createOutput, Level, memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";
import { createRegistry, sha256Digest } from "../clients/oci/registry.ts";
import { runCli, tempHome } from "./_cli.ts";
import { ESCAPES, startHostileServer } from "./servers/hostile_server.ts";
import { formatTable } from "../cli/render/table.ts";

/** Fast failures: no retries, a 1 s stall timeout. */
const FAST = { SREGISTRY_HTTP_RETRIES: "0", SREGISTRY_STALL_TIMEOUT: "1" };

function setup(extra: Partial<HttpOptions> = {}) {
  const sink = memorySink();
  const log = createLogger({ level: Level.DEBUG, sink });
  const http = createHttp({ log, env: envFrom({}), retries: 0, stallTimeoutMs: 1000, ...extra });
  return { http, log, sink };
}

async function cli(args: string[], env: Record<string, string> = {}) {
  const home = await tempHome();
  try {
    return await runCli(args, { env: { ...home.env, ...FAST, ...env }, cwd: home.dir });
  } finally {
    await home.cleanup();
  }
}

/** One line, exit 5, names the scheme, never the file's content. */
function assertRefusedFile(r: { code: number; stderr: string }) {
  assert.equal(r.code, 5, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /"file:"/);
  assert.doesNotMatch(r.stderr, /root:/);
}

Deno.test("item 1: a redirect to file:// is refused (CLI, exit 5, no content)", async () => {
  const s = startHostileServer();
  try {
    const r = await cli(["pull", `${s.url}/file-redirect/x.sif`]);
    assertRefusedFile(r);
    const imgs = await cli(["images"]);
    assert.doesNotMatch(imgs.stdout, /x\.sif|passwd/);
  } finally {
    await s.close();
  }
});

Deno.test("item 1: a file:// Bearer realm is refused (http and docker CLI, exit 5)", async () => {
  const s = startHostileServer();
  try {
    assertRefusedFile(await cli(["pull", `${s.url}/realm-file/x.sif`]));
    const host = s.url.slice("http://".length);
    assertRefusedFile(await cli(["pull", `docker://${host}/realm-file:latest`]));
  } finally {
    await s.close();
  }
});

Deno.test("item 1: core/http refuses non-http(s) URLs given directly", async () => {
  const { http } = setup();
  for (const u of ["file:///etc/passwd", "data:text/plain,hi", "ftp://127.0.0.1/x"]) {
    const e = await http.request(u).catch((e) => e);
    assert.ok(e instanceof NetworkError, String(e));
    assert.match(e.message, /Refusing to fetch a "(file|data|ftp):" URL/);
  }
  // The bearer authorizer refuses a file:// realm itself, whatever transport it is given.
  const s = startHostileServer();
  try {
    const { http, log } = setup();
    const auth = bearerChallenge({ http, log, origin: s.url });
    const e = await http.request(`${s.url}/realm-file/x`, { auth }).catch((e) => e);
    assert.ok(e instanceof NetworkError, String(e));
    assert.match(e.message, /"file:" URL named by the token realm/);
  } finally {
    await s.close();
  }
});

Deno.test("item 2: push credentials never go to an upload Location on another origin", async () => {
  const a = startHostileServer({ basic: "pusher:push-pass-1234" });
  const b = startHostileServer();
  a.peer = b.url;
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "blob");
    await Deno.writeFile(file, new Uint8Array(100).fill(7));
    const { http, log } = setup();
    const host = a.url.slice("http://".length);
    const auth = bearerChallenge({
      http,
      log,
      host,
      origin: a.url,
      credentials: { username: "pusher", password: "push-pass-1234" },
    });
    const reg = createRegistry({ http, log, host, scheme: "http", auth });
    const blob = { digest: sha256Digest(new Uint8Array(100).fill(7)), size: 100 };
    await reg.uploadBlob("repo", file, blob);
    await reg.uploadBlob("repo", file, blob, { chunkSize: 40 });
    // The registry got the credentials (after its challenge) ...
    assert.ok(a.requests.some((r) => r.authorization?.startsWith("Basic ")));
    // ... and the other origin got PATCHes and PUTs, without any.
    assert.ok(b.requests.some((r) => r.method === "PATCH"));
    assert.ok(b.requests.filter((r) => r.method === "PUT").length >= 2);
    assert.deepEqual(b.requests.filter((r) => r.authorization), []);
    // core/http's own rule: an authorizer bound to A never runs for a call that starts at B (as a
    // Location call does), even one that does not check the URL itself.
    let ran = 0;
    const bound = basicAuth({ username: "pusher", password: "push-pass-1234" }, { origin: a.url });
    const spy = { origin: a.url, authorize: (r: AuthRequest) => (ran++, bound.authorize(r)) };
    await http.request(`${b.url}/upload/session-1`, { method: "PUT", auth: spy, body: "x" });
    assert.equal(ran, 0);
    assert.equal(b.requests.at(-1)!.authorization, undefined);
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("item 3: Basic credentials never go to another host's token realm after a redirect", async () => {
  const a = startHostileServer(), b = startHostileServer();
  a.peer = b.url;
  try {
    const r = await cli(["pull", `${a.url}/to-peer/x.sif`], {
      SREGISTRY_HTTP_USERNAME: "alice",
      SREGISTRY_HTTP_PASSWORD: "alice-pass-1234",
    });
    assert.notEqual(r.code, 0);
    assert.ok(a.requests[0].authorization?.startsWith("Basic "));
    assert.deepEqual(b.requests.filter((q) => q.authorization), []);
    assert.ok(!b.requests.some((q) => q.path.startsWith("/token")), JSON.stringify(b.requests));
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("item 4: a password in the URL is used for its origin only and never printed", async () => {
  const a = startHostileServer(), b = startHostileServer();
  a.peer = b.url;
  try {
    const host = a.url.slice("http://".length);
    const r = await cli(["--debug", "pull", `http://bob:url-pass-1234@${host}/escapes/x.sif`]);
    assert.equal(r.code, 3, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /url-pass-1234/);
    assert.doesNotMatch(r.stderr, /bob:/);
    assert.equal(a.requests[0].authorization, `Basic ${btoa("bob:url-pass-1234")}`);
    // Through a redirect: the peer gets nothing.
    await cli(["pull", `http://bob:url-pass-1234@${host}/to-peer/x.sif`]);
    assert.ok(b.requests.length > 0);
    assert.deepEqual(b.requests.filter((q) => q.authorization), []);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("item 5 and 20: escapes and NUL in error bodies are made visible; JSON stays exact", async () => {
  const s = startHostileServer();
  try {
    const r = await cli(["pull", `${s.url}/escapes/x.sif`]);
    assert.equal(r.code, 3);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(r.stderr, /[\x00-\x08\x0b-\x1f\x7f]/);
    assert.match(r.stderr, /\\x1b\]0;pwned\\x07\\x1b\[2J/);
    const j = await cli(["--json", "pull", `${s.url}/escapes/x.sif`]);
    assert.ok(JSON.parse(j.stderr).error.message.includes(ESCAPES), j.stderr);
    const n = await cli(["pull", `${s.url}/nul/x.sif`]);
    assert.equal(n.code, 3);
    assert.ok(!n.stderr.includes("\0"));
    assert.match(n.stderr, /bad\\x00byte/);
  } finally {
    await s.close();
  }
});

Deno.test("item 5: the logger and tables make control characters visible", () => {
  const sink = memorySink();
  const log = createLogger({ sink, color: false });
  log.warning(`label ${ESCAPES}\0 end`);
  assert.equal(sink.text(), "WARNING label \\x1b]0;pwned\\x07\\x1b[2J\\x00 end\n");
  const out = memorySink();
  createOutput(out).line(formatTable([[`repo${ESCAPES}`, "tag"]]));
  assert.ok(!out.text().includes("\x1b"));
  const js = memorySink();
  createOutput(js).json({ name: ESCAPES });
  assert.equal(JSON.parse(js.text()).name, ESCAPES);
});

Deno.test("item 15: JSON, token and manifest answers are capped", async () => {
  const s = startHostileServer();
  try {
    const { http, log } = setup({ stallTimeoutMs: 10_000 });
    const t0 = Date.now();
    const e1 = await http.json(`${s.url}/big-json`).catch((e) => e);
    assert.ok(e1 instanceof NetworkError, String(e1));
    assert.match(e1.message, /larger than 1 MiB/);
    const host = s.url.slice("http://".length);
    const auth = bearerChallenge({ http, log, host, origin: s.url });
    const e2 = await http.request(`${s.url}/big-token/x`, { auth }).catch((e) => e);
    assert.ok(e2 instanceof NetworkError, String(e2));
    assert.match(e2.message, /token .*larger than 1 MiB/);
    const reg = createRegistry({
      http,
      log,
      host,
      scheme: "http",
      auth: bearerChallenge({ http, log, host, origin: s.url }),
    });
    const e3 = await reg.getManifest("big", "latest").catch((e) => e);
    assert.ok(e3 instanceof NetworkError, String(e3));
    assert.match(e3.message, /larger than 4 MiB/);
    assert.ok(Date.now() - t0 < 8000);
  } finally {
    await s.close();
  }
});

Deno.test("item 15: stalled headers, stalled bodies and drips end within the deadline", async () => {
  const s = startHostileServer();
  try {
    const { http, log } = setup({ stallTimeoutMs: 1000 });
    for (const path of ["/stall-headers", "/stall-body", "/drip-json"]) {
      const t0 = Date.now();
      const e = await http.json(`${s.url}${path}`).catch((e) => e);
      assert.ok(e instanceof NetworkError, `${path}: ${e}`);
      assert.ok(Date.now() - t0 < 4000, `${path} took ${Date.now() - t0} ms`);
    }
    const host = s.url.slice("http://".length);
    const reg = createRegistry({
      http,
      log,
      host,
      scheme: "http",
      auth: bearerChallenge({ http, log, host, origin: s.url }),
    });
    const t0 = Date.now();
    const e = await reg.getManifest("drip", "latest").catch((e) => e);
    assert.ok(e instanceof NetworkError, String(e));
    assert.ok(Date.now() - t0 < 4000);
    // Through the CLI, the stall timeout comes from SREGISTRY_STALL_TIMEOUT.
    const t1 = Date.now();
    const r = await cli(["pull", `docker://${host}/drip:latest`]);
    assert.equal(r.code, 5, r.stderr);
    assert.ok(Date.now() - t1 < 10_000);
  } finally {
    await s.close();
  }
});

Deno.test("item 15: Retry-After 3600 fails at once saying when to retry; short ones are honoured", async () => {
  const s = startHostileServer();
  try {
    const sleeps: number[] = [];
    const { http } = setup({
      retries: 5,
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    });
    const e = await http.request(`${s.url}/retry-after`).catch((e) => e);
    assert.ok(e instanceof NetworkError, String(e));
    assert.match(e.message, /retry after 3600 s \(at \d{4}-\d\d-\d\dT\d\d:\d\d/);
    assert.deepEqual(sleeps, []);
    await http.request(`${s.url}/retry-after-short`).catch((e) => e);
    assert.deepEqual(sleeps, [1000, 1000, 1000, 1000, 1000]);
    // The CLI, with its default retry budget: one request, exit 5, at once.
    const before = s.requests.length;
    const t0 = Date.now();
    const r = await cli(["pull", `${s.url}/retry-after`], { SREGISTRY_HTTP_RETRIES: "5" });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /asks to retry after 3600 s/);
    assert.equal(s.requests.length - before, 1);
    assert.ok(Date.now() - t0 < 10_000);
  } finally {
    await s.close();
  }
});

Deno.test("item 19: --debug hides the token but not the user's paths and names", async () => {
  const s = startHostileServer();
  try {
    const r = await cli([
      "--debug",
      "pull",
      "--name",
      "coll/secret:latest",
      `${s.url}/escapes/x.sif`,
    ], {
      SREGISTRY_HTTP_TOKEN: "tok-secret-98765",
    });
    assert.equal(r.code, 3, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /tok-secret-98765/);
    assert.equal(s.requests[0].authorization, "Bearer tok-secret-98765");
    // A token from a token service stays hidden too.
    const t = await cli(["--debug", "pull", `${s.url}/challenge/x.sif`]);
    assert.equal(t.code, 4, t.stderr);
    assert.ok(s.requests.some((q) => q.authorization === "Bearer peer-token-123456"));
    assert.doesNotMatch(t.stderr, /peer-token-123456/);
    assert.match(t.stderr, /DEBUG/);
    const add = await cli(["add", "/etc/passwd-missing", "--name", "coll/secret:latest"]);
    assert.match(add.stderr, /\/etc\/passwd-missing/);
    assert.doesNotMatch(add.stderr, /\*\*\*/);
  } finally {
    await s.close();
  }
});

Deno.test("item 20: a refused proxy is named as the proxy, with its variable", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const r = await cli(["pull", "http://sregistry.invalid/x.sif"], {
    HTTP_PROXY: `http://127.0.0.1:${port}`,
  });
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stderr, /proxy/i);
  assert.match(r.stderr, /HTTP_PROXY/);
  assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
});
