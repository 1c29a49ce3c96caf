import assert from "./_assert.ts";
import { createHash, createHmac } from "node:crypto";
import { basicAuth, basicHeader, bearerToken } from "../core/auth/basic.ts";
import { bearerChallenge } from "../core/auth/bearer_challenge.ts";
import { findChallenge, parseChallenges } from "../core/auth/challenge.ts";
import { oauth2RefreshAuth, type OAuth2Tokens } from "../core/auth/oauth2.ts";
import { signatureParts, sigV4Auth } from "../core/auth/sigv4.ts";
import type { Authorizer } from "../core/auth/types.ts";
import { AuthError } from "../core/errors.ts";
import { createHttp } from "../core/http.ts";
import { createLogger, Level, memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";

function setup() {
  const sink = memorySink();
  const log = createLogger({ level: Level.DEBUG, sink });
  const http = createHttp({
    log,
    env: envFrom({}),
    sleep: () => Promise.resolve(),
    random: () => 0.5,
  });
  return { http, log, sink };
}

interface Seen {
  method: string;
  path: string;
  authorization?: string;
  headers: Headers;
  body: string;
}

/** A tiny server on a free loopback port that records requests and answers with `handler`. */
function serve(handler: (req: Request, seen: Seen, url: URL) => Response | Promise<Response>) {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const s: Seen = {
      method: req.method,
      path: url.pathname + url.search,
      authorization: req.headers.get("authorization") ?? undefined,
      headers: req.headers,
      body: await req.text(),
    };
    seen.push(s);
    return await handler(req, s, url);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    stop: () => server.shutdown(),
  };
}

Deno.test("challenge parser: several challenges, quoted escapes, findChallenge", () => {
  const cs = parseChallenges(
    'Basic realm="x", Bearer realm="https://a/t\\"", scope="s", service=svc',
  );
  assert.deepEqual(cs.map((c) => c.scheme), ["basic", "bearer"]);
  assert.deepEqual(cs[1].params, { realm: 'https://a/t"', scope: "s", service: "svc" });
  const res = new Response(null, { status: 401, headers: { "www-authenticate": "Basic realm=r" } });
  assert.equal(findChallenge(res, "basic")?.params.realm, "r");
  assert.equal(findChallenge(res, "bearer"), undefined);
});

Deno.test("basic: preemptive on every attempt; on-challenge once, a second refusal is final", async () => {
  const good = basicHeader({ username: "u", password: "p\u00e9" });
  const srv = serve((_req, s) =>
    s.authorization === good ? new Response("ok") : new Response("no", {
      status: 401,
      headers: { "www-authenticate": 'Basic realm="files"' },
    })
  );
  try {
    const { http } = setup();
    const pre = basicAuth({ username: "u", password: "p\u00e9" });
    assert.equal(await (await http.request(`${srv.url}/a`, { auth: pre })).text(), "ok");
    assert.equal(srv.seen.length, 1);
    const lazy = basicAuth(() => ({ username: "u", password: "p\u00e9" }), { preemptive: false });
    assert.equal(await (await http.request(`${srv.url}/b`, { auth: lazy })).text(), "ok");
    assert.deepEqual(srv.seen.slice(1).map((s) => s.authorization), [undefined, good]);
    const wrong = basicAuth({ username: "u", password: "bad" }, { preemptive: false });
    const err = await http.request(`${srv.url}/c`, { auth: wrong }).catch((e) => e);
    assert.ok(err instanceof AuthError, String(err));
    assert.equal(srv.seen.length, 5); // none, then the wrong Basic once, then stop
    assert.match(err.message, /Authentication failed \(401.*check the credentials/);
  } finally {
    await srv.stop();
  }
});

/** A registry fake: /v2/* needs `Bearer <token from /token>`; the realm checks Basic u:p. */
function registryFake(opts: { sameToken?: boolean; realm?: (base: string) => string } = {}) {
  let n = 0;
  const valid = new Set<string>();
  const srv = serve((_req, s, url) => {
    if (url.pathname === "/token") {
      if (s.authorization !== basicHeader({ username: "u", password: "p" })) {
        return new Response("bad", { status: 401 });
      }
      const token = opts.sameToken ? "tok-same" : `tok-${++n}`;
      if (!opts.sameToken) valid.add(token);
      return Response.json({ token, expires_in: 60 });
    }
    if (url.pathname.startsWith("/v2/")) {
      const t = s.authorization?.replace(/^Bearer /, "");
      if (t && valid.has(t)) return new Response(`hello ${url.pathname}`);
      const repo = url.pathname.split("/")[2];
      return new Response("unauthorized", {
        status: 401,
        headers: {
          "www-authenticate": `Bearer realm="${
            opts.realm ? opts.realm(srv.url) : `${srv.url}/token`
          }",service="fake",scope="repository:${repo}:pull"`,
        },
      });
    }
    return new Response("nothing", { status: 404 });
  });
  return { ...srv, valid, issued: () => n };
}

Deno.test("bearer challenge: token per scope with Basic at the realm, cached, renewed on expiry", async () => {
  const reg = registryFake();
  try {
    const { http, sink } = setup();
    let clock = 1_000_000;
    const auth = bearerChallenge({
      http,
      log: http.log,
      credentials: () => Promise.resolve({ username: "u", password: "p" }),
      origin: reg.url,
      now: () => clock,
    });
    const get = async (repo: string) =>
      await (await http.request(`${reg.url}/v2/${repo}/x`, {
        auth: auth.scoped(`repository:${repo}:pull`),
      })).text();
    assert.equal(await get("a"), "hello /v2/a/x");
    assert.equal(await get("a"), "hello /v2/a/x");
    assert.equal(reg.issued(), 1, "the token for a was cached");
    const tokenCall = reg.seen.find((s) => s.path.startsWith("/token"))!;
    assert.equal(tokenCall.path, "/token?service=fake&scope=repository%3Aa%3Apull");
    assert.equal(await get("b"), "hello /v2/b/x");
    assert.equal(reg.issued(), 2, "another scope, another token");
    // The clock passes the token's lifetime: the next attempt renews it before sending.
    clock += 61_000;
    const before = reg.seen.length;
    assert.equal(await get("a"), "hello /v2/a/x");
    assert.deepEqual(reg.seen.slice(before).map((s) => s.path.split("?")[0]), [
      "/token",
      "/v2/a/x",
    ]);
    assert.ok(auth.authenticated);
    assert.doesNotMatch(sink.text(), /tok-\d/);
  } finally {
    await reg.stop();
  }
});

Deno.test("bearer challenge: the same rejected token again stops after one retry", async () => {
  const reg = registryFake({ sameToken: true });
  try {
    const { http } = setup();
    const auth = bearerChallenge({
      http,
      log: http.log,
      credentials: { username: "u", password: "p" },
    });
    const err = await http.request(`${reg.url}/v2/r/x`, { auth }).catch((e) => e);
    assert.ok(err instanceof AuthError, String(err));
    assert.deepEqual(reg.seen.map((s) => s.path.split("?")[0]), [
      "/v2/r/x",
      "/token",
      "/v2/r/x",
      "/token",
    ]);
  } finally {
    await reg.stop();
  }
});

Deno.test("bearer challenge: credentials never reach another host after a redirect", async () => {
  const other = serve(() => new Response("moved here"));
  // The token realm redirects to another origin, and a blob redirects to storage elsewhere.
  const reg = registryFake();
  const realm = serve((_req, s) =>
    s.path.startsWith("/token")
      ? Response.redirect(`${other.url}/token-elsewhere`, 307)
      : new Response("?", { status: 404 })
  );
  const reg2 = registryFake({ realm: () => `${realm.url}/token` });
  try {
    const { http } = setup();
    const auth = bearerChallenge({
      http,
      log: http.log,
      credentials: { username: "u", password: "p" },
    });
    // The realm the registry named got the Basic credentials; its redirect target got nothing.
    const err = await http.request(`${reg2.url}/v2/r/x`, { auth }).catch((e) => e);
    assert.ok(err, "the other host's answer is no token");
    assert.equal(realm.seen[0].authorization, basicHeader({ username: "u", password: "p" }));
    assert.equal(other.seen[0].path, "/token-elsewhere");
    assert.equal(other.seen[0].authorization, undefined);
    // A registry answer that redirects a blob: the storage host sees no token.
    const blobs = serve((_req, s, url) =>
      url.pathname === "/v2/r/blob" && s.authorization?.startsWith("Bearer ")
        ? Response.redirect(`${other.url}/storage/blob`, 302)
        : new Response("no", {
          status: 401,
          headers: { "www-authenticate": `Bearer realm="${reg.url}/token",service="fake"` },
        })
    );
    const auth2 = bearerChallenge({
      http,
      log: http.log,
      credentials: { username: "u", password: "p" },
      origin: blobs.url,
    });
    assert.equal(
      await (await http.request(`${blobs.url}/v2/r/blob`, { auth: auth2 })).text(),
      "moved here",
    );
    assert.equal(other.seen.at(-1)!.path, "/storage/blob");
    assert.equal(other.seen.at(-1)!.authorization, undefined);
    // Bound to its origin: the same authorizer adds nothing for another host.
    await (await http.request(`${other.url}/plain`, { auth: auth2 })).text();
    assert.equal(other.seen.at(-1)!.authorization, undefined);
    await blobs.stop();
  } finally {
    await other.stop();
    await realm.stop();
    await reg.stop();
    await reg2.stop();
  }
});

Deno.test("authorize runs before every attempt: SigV4 dates are fresh on retries", async () => {
  const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  let calls = 0;
  const srv = serve((req, s) => {
    if (++calls === 1) return new Response("busy", { status: 503 });
    const m = s.authorization!.match(
      /Credential=AKID\/\d{8}\/eu-west-3\/s3\/aws4_request, SignedHeaders=([^,]+), Signature=(\w+)/,
    )!;
    const headers: Record<string, string> = {};
    for (const h of m[1].split(";")) headers[h] = req.headers.get(h) ?? "";
    const stamp = s.headers.get("x-amz-date")!;
    const date = new Date(
      stamp.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z"),
    );
    const want = signatureParts(
      { method: req.method, url: req.url, headers, body: s.body },
      { accessKeyId: "AKID", secretAccessKey: secret },
      "eu-west-3",
      "s3",
      date,
    ).signature;
    return new Response(want === m[2] ? "signed" : "bad signature", {
      status: want === m[2] ? 200 : 403,
    });
  });
  try {
    const { http, sink } = setup();
    let t = Date.UTC(2026, 0, 2, 3, 4, 5);
    const auth = sigV4Auth({
      credentials: () => ({
        accessKeyId: "AKID",
        secretAccessKey: secret,
        sessionToken: "sess-tok",
      }),
      region: "eu-west-3",
      service: "s3",
      now: () => new Date(t += 7_000),
      log: http.log,
    });
    const body = "<xml>part</xml>";
    const res = await http.request(`${srv.url}/bucket/key%20a?partNumber=1&uploadId=x`, {
      method: "PUT",
      body,
      headers: { "content-type": "application/xml" },
      auth,
    });
    assert.equal(await res.text(), "signed");
    const dates = srv.seen.map((s) => s.headers.get("x-amz-date"));
    assert.equal(dates.length, 2);
    assert.notEqual(dates[0], dates[1], "the retry was signed again with a new date");
    assert.equal(
      srv.seen[1].headers.get("x-amz-content-sha256"),
      createHash("sha256").update(body).digest("hex"),
    );
    assert.equal(srv.seen[1].headers.get("x-amz-security-token"), "sess-tok");
    assert.doesNotMatch(sink.text(), /sess-tok/);
  } finally {
    await srv.stop();
  }
});

Deno.test("an HMAC signed-header authorizer fits the interface: method, url, date, body digest", async () => {
  // The shape of Singularity Registry Server's push signature, written as a plain authorizer.
  const key = "hmac-secret";
  const sign = (method: string, path: string, date: string, digest: string) =>
    createHmac("sha256", key).update(`${method}|${path}|${date}|${digest}`).digest("hex");
  let calls = 0;
  const srv = serve((_req, s, url) => {
    if (++calls === 1) return new Response("busy", { status: 502 });
    const digest = createHash("sha256").update(s.body).digest("hex");
    const date = s.headers.get("x-date")!;
    const ok = s.authorization === `SREGISTRY ${sign(s.method, url.pathname, date, digest)}`;
    return new Response(ok ? "ok" : "bad", { status: ok ? 200 : 403 });
  });
  try {
    const { http } = setup();
    let n = 0;
    const hmac: Authorizer = {
      authorize(r) {
        const date = `2026-01-01T00:00:0${n++}Z`;
        const digest = createHash("sha256").update(r.body ?? new Uint8Array()).digest("hex");
        r.headers.set("x-date", date);
        r.headers.set("authorization", `SREGISTRY ${sign(r.method, r.url.pathname, date, digest)}`);
      },
    };
    const res = await http.request(`${srv.url}/api/push`, {
      method: "POST",
      body: new TextEncoder().encode('{"name":"c/i"}'),
      auth: hmac,
    });
    assert.equal(await res.text(), "ok");
    assert.deepEqual(srv.seen.map((s) => s.headers.get("x-date")), [
      "2026-01-01T00:00:00Z",
      "2026-01-01T00:00:01Z",
    ]);
  } finally {
    await srv.stop();
  }
});

/** An OAuth2 provider fake: /token refreshes (rotating the refresh token), /api wants the latest. */
function oauthFake(opts: { rejectAll?: boolean } = {}) {
  let n = 0;
  let current = "";
  let refresh = "rt-0";
  const srv = serve((_req, s, url) => {
    if (url.pathname === "/token") {
      const form = new URLSearchParams(s.body);
      if (form.get("grant_type") !== "refresh_token" || form.get("refresh_token") !== refresh) {
        return Response.json({ error: "invalid_grant" }, { status: 400 });
      }
      if (form.get("client_id") !== "cid" || form.get("client_secret") !== "csecret") {
        return Response.json({ error: "invalid_client" }, { status: 401 });
      }
      current = `at-${++n}`;
      refresh = `rt-${n}`;
      return Response.json({ access_token: current, expires_in: 3600, refresh_token: refresh });
    }
    if (!opts.rejectAll && s.authorization === `Bearer ${current}`) return new Response("data");
    return new Response("", {
      status: 401,
      headers: { "www-authenticate": 'Bearer error="invalid_token"' },
    });
  });
  return { ...srv, revoke: () => current = "revoked", refreshes: () => n };
}

Deno.test("oauth2: refreshes an expired token first, once on a 401, and persists rotated tokens", async () => {
  const fake = oauthFake();
  try {
    const { http, sink } = setup();
    const saved: OAuth2Tokens[] = [];
    let clock = 5_000_000;
    const auth = oauth2RefreshAuth({
      http,
      tokenUrl: `${fake.url}/token`,
      clientId: "cid",
      clientSecret: "csecret",
      accessToken: "at-old",
      expiresAt: clock - 1,
      refreshToken: "rt-0",
      onTokens: (t) => {
        saved.push(t);
      },
      log: http.log,
      now: () => clock,
    });
    assert.equal(await (await http.request(`${fake.url}/api`, { auth })).text(), "data");
    assert.deepEqual(fake.seen.map((s) => s.path), ["/token", "/api"]);
    assert.equal(saved.at(-1)!.refreshToken, "rt-1");
    // Still valid: no refresh.
    await (await http.request(`${fake.url}/api`, { auth })).text();
    assert.equal(fake.refreshes(), 1);
    // The server revokes the token: one 401, one refresh (with the rotated refresh token), done.
    fake.revoke();
    assert.equal(await (await http.request(`${fake.url}/api`, { auth })).text(), "data");
    assert.equal(fake.refreshes(), 2);
    assert.deepEqual(saved.map((t) => t.accessToken), ["at-1", "at-2"]);
    clock += 3_600_000;
    await (await http.request(`${fake.url}/api`, { auth })).text();
    assert.equal(fake.refreshes(), 3, "renewed before expiry");
    assert.doesNotMatch(sink.text(), /at-\d|rt-\d|csecret/);
  } finally {
    await fake.stop();
  }
});

Deno.test("oauth2: a fresh token refused too is final; a dead refresh token says sign in again", async () => {
  const fake = oauthFake({ rejectAll: true });
  try {
    const { http } = setup();
    const auth = oauth2RefreshAuth({
      http,
      tokenUrl: `${fake.url}/token`,
      clientId: "cid",
      clientSecret: "csecret",
      accessToken: "at-old",
      refreshToken: "rt-0",
    });
    const err = await http.request(`${fake.url}/api`, { auth }).catch((e) => e);
    assert.ok(err instanceof AuthError, String(err));
    assert.deepEqual(fake.seen.map((s) => s.path), ["/api", "/token", "/api"]);
    const dead = oauth2RefreshAuth({
      http,
      tokenUrl: `${fake.url}/token`,
      clientId: "cid",
      clientSecret: "csecret",
      refreshToken: "rt-stolen",
    });
    const e2 = await http.request(`${fake.url}/api`, { auth: dead }).catch((e) => e);
    assert.ok(e2 instanceof AuthError);
    assert.match(e2.message, /refused the refresh token \(invalid_grant\); sign in again/);
  } finally {
    await fake.stop();
  }
});

Deno.test("static bearer token goes on every attempt and is never refreshed", async () => {
  const srv = serve(() => new Response("", { status: 401 }));
  try {
    const { http } = setup();
    const err = await http.request(`${srv.url}/x`, { auth: bearerToken("k-123") }).catch((e) => e);
    assert.ok(err instanceof AuthError);
    assert.deepEqual(srv.seen.map((s) => s.authorization), ["Bearer k-123"]);
  } finally {
    await srv.stop();
  }
});
