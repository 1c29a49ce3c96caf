/** core/auth/jwt_bearer.ts against the strict token endpoint of tests/servers/gcs_fake.ts. */

import { assert, assertEquals } from "./_assert.ts";
import {
  importRs256Key,
  jwtBearerAuth,
  parseServiceAccount,
  signJwt,
} from "../core/auth/jwt_bearer.ts";
import { KEPT_TOKEN_KEY, serviceAccountAuth } from "../core/auth/service_account.ts";
import type { CredentialStore } from "../core/credentials.ts";
import { AuthError, ConfigError } from "../core/errors.ts";
import { createHttp } from "../core/http.ts";
import { createLogger, Level, memorySink } from "../core/log.ts";
import { makeTestAccount, startGcsFake } from "./servers/gcs_fake.ts";

function setup() {
  const sink = memorySink();
  const log = createLogger({ level: Level.DEBUG, sink });
  const http = createHttp({ log, retries: 1, backoffBaseMs: 1 });
  return { http, log, sink };
}

const SCOPE = "https://www.googleapis.com/auth/devstorage.read_write";

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

Deno.test("jwt bearer: the signed assertion passes the fake's checks and the token is kept", async () => {
  const fake = startGcsFake();
  try {
    const acct = await makeTestAccount(fake.tokenUri);
    fake.addAccount(acct.email, acct.publicKey);
    fake.addBucket("b1");
    const { http, log, sink } = setup();
    const saved: string[] = [];
    const auth = jwtBearerAuth({
      http,
      account: parseServiceAccount(acct.json, "test"),
      scopes: [SCOPE],
      log,
      onToken: (t) => void saved.push(t.accessToken),
    });
    for (let i = 0; i < 3; i++) {
      const res = await http.request(`${fake.url}/storage/v1/b/b1`, { auth });
      await res.body?.cancel();
    }
    assertEquals(fake.stats.tokenErrors, []);
    assertEquals(fake.stats.tokens, 1, "one token for three calls");
    assertEquals(saved.length, 1);
    assert(saved[0].startsWith("ya29.fake-"));
    assert(!sink.text().includes(saved[0]), "the token reached the log");
  } finally {
    await fake.stop();
  }
});

Deno.test("jwt bearer: a token near its expiry is fetched again; parallel calls share one", async () => {
  const fake = startGcsFake({ tokenLifetime: 120 });
  try {
    const acct = await makeTestAccount(fake.tokenUri);
    fake.addAccount(acct.email, acct.publicKey);
    const { http } = setup();
    let clock = Date.now();
    const auth = jwtBearerAuth({
      http,
      account: () => parseServiceAccount(acct.json, "test"),
      scopes: SCOPE,
      now: () => clock,
    });
    const [a, b] = await Promise.all([auth.token(), auth.token()]);
    assertEquals(a, b);
    assertEquals(fake.stats.tokens, 1);
    clock += 30_000;
    assertEquals(await auth.token(), a, "still fresh");
    clock += 40_000; // 70 s of 120: inside the last minute
    const c = await auth.token();
    assert(c !== a, "not refreshed before expiry");
    assertEquals(fake.stats.tokens, 2);
  } finally {
    await fake.stop();
  }
});

Deno.test("jwt bearer: a 401 refreshes once; a refused fresh token is final", async () => {
  const fake = startGcsFake();
  try {
    const acct = await makeTestAccount(fake.tokenUri);
    fake.addAccount(acct.email, acct.publicKey);
    fake.addBucket("b1");
    const { http } = setup();
    const auth = jwtBearerAuth({
      http,
      account: parseServiceAccount(acct.json, "test"),
      scopes: SCOPE,
    });
    await (await http.request(`${fake.url}/storage/v1/b/b1`, { auth })).body?.cancel();
    fake.expireTokens();
    const res = await http.request(`${fake.url}/storage/v1/b/b1`, { auth });
    await res.body?.cancel();
    assertEquals(res.status, 200);
    assertEquals(fake.stats.tokens, 2, "one refresh");
    assertEquals(fake.stats.unauthorized, 1);
    // A server refusing every token: one refresh, then the 401 stands (no loop).
    const refuse = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("no", { status: 401 }),
    );
    try {
      const url = `http://127.0.0.1:${(refuse.addr as Deno.NetAddr).port}/x`;
      const fresh = jwtBearerAuth({
        http,
        account: parseServiceAccount(acct.json, "test"),
        scopes: SCOPE,
      });
      const before = fake.stats.tokens;
      const e = await rejects(http.request(url, { auth: fresh }));
      assert(e instanceof AuthError, String(e));
      assertEquals(fake.stats.tokens - before, 2, "the first token and exactly one refresh");
    } finally {
      await refuse.shutdown();
    }
  } finally {
    await fake.stop();
  }
});

Deno.test("jwt bearer: a bad signature is an AuthError with Google's reason", async () => {
  const fake = startGcsFake();
  try {
    const good = await makeTestAccount(fake.tokenUri);
    fake.addAccount(good.email, good.publicKey);
    const other = await makeTestAccount(fake.tokenUri, good.email);
    const { http } = setup();
    const auth = jwtBearerAuth({
      http,
      account: parseServiceAccount(other.json, "key.json"),
      scopes: SCOPE,
      source: "key.json",
    });
    const e = await rejects(auth.token());
    assert(e instanceof AuthError, String(e));
    assertEquals(e.exitCode, 4);
    assert(/Invalid JWT Signature/.test(e.message), e.message);
    assert(/key\.json/.test(e.message), e.message);
    assertEquals(fake.stats.tokenErrors, ["invalid_grant: Invalid JWT Signature."]);
  } finally {
    await fake.stop();
  }
});

Deno.test("jwt bearer: claims the fake checks (audience, lifetime, scope) are what Google wants", async () => {
  const fake = startGcsFake();
  try {
    const acct = await makeTestAccount(fake.tokenUri);
    fake.addAccount(acct.email, acct.publicKey);
    const key = await importRs256Key(parseServiceAccount(acct.json, "t").private_key);
    const now = Math.floor(Date.now() / 1000);
    const post = async (claims: Record<string, unknown>) => {
      const assertion = await signJwt(claims, key);
      const res = await fetch(fake.tokenUri, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
          assertion,
        }),
      });
      return [res.status, (await res.json()).error ?? "ok"];
    };
    const ok = { iss: acct.email, scope: SCOPE, aud: fake.tokenUri, iat: now, exp: now + 3600 };
    assertEquals(await post(ok), [200, "ok"]);
    assertEquals(await post({ ...ok, aud: "https://example.com/token" }), [400, "invalid_grant"]);
    assertEquals(await post({ ...ok, exp: now + 7200 }), [400, "invalid_grant"]);
    assertEquals(await post({ ...ok, scope: undefined }), [400, "invalid_scope"]);
  } finally {
    await fake.stop();
  }
});

Deno.test("jwt bearer: bad key files and a plain-http token_uri are ConfigErrors", async () => {
  const bad = (text: string) => {
    try {
      parseServiceAccount(text, "k.json");
    } catch (e) {
      assert(e instanceof ConfigError, String(e));
      return e.message;
    }
    throw new Error("accepted");
  };
  assert(/not JSON/.test(bad("nope")));
  assert(/client_email/.test(bad(JSON.stringify({ private_key: "x" }))));
  assert(/authorized_user/.test(bad(JSON.stringify({ type: "authorized_user" }))));
  assert(
    /PKCS#8/.test(
      bad(JSON.stringify({
        client_email: "a@b",
        private_key: "-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----",
      })),
    ),
  );
  const acct = await makeTestAccount("http://oauth.example.com/token");
  const { http } = setup();
  const auth = jwtBearerAuth({ http, account: parseServiceAccount(acct.json, "k"), scopes: SCOPE });
  const e = await rejects(auth.token());
  assert(e instanceof ConfigError && /not https/.test(e.message), String(e));
});

Deno.test("service account: the token is kept per key file and scopes, across authorizers", async () => {
  const fake = startGcsFake();
  const dir = await Deno.makeTempDir();
  try {
    const acct = await makeTestAccount(fake.tokenUri);
    fake.addAccount(acct.email, acct.publicKey);
    const path = `${dir}/key.json`;
    await Deno.writeTextFile(path, acct.json);
    const { http, log } = setup();
    const kept = new Map<string, unknown>();
    const credentials: CredentialStore = {
      path: undefined,
      get: <T>(k: string) => kept.get(k) as T | undefined,
      set: (k, v) => void kept.set(k, structuredClone(v)),
      delete: (k) => void kept.delete(k),
    };
    const ctx = { http, credentials, log };
    const options = { setting: "GOOGLE_APPLICATION_CREDENTIALS", path, scopes: [SCOPE] };
    const first = await serviceAccountAuth(ctx, options).token();
    assertEquals(fake.stats.tokens, 1);
    const stored = kept.get(KEPT_TOKEN_KEY) as { accessToken: string; for: string };
    assertEquals(KEPT_TOKEN_KEY, "access_token", "saved tokens of earlier versions stay valid");
    assertEquals(stored.accessToken, first);
    assert(/^[0-9a-f]{64}$/.test(stored.for), "the kept token names the key it is for");
    assertEquals(await serviceAccountAuth(ctx, options).token(), first, "a new run reuses it");
    assertEquals(fake.stats.tokens, 1);
    // Other scopes, or a key file that changed, get a token of their own.
    await serviceAccountAuth(ctx, { ...options, scopes: `${SCOPE} ${SCOPE}.x` }).token();
    assertEquals(fake.stats.tokens, 2);
    await Deno.utime(path, new Date(), new Date(Date.now() + 5_000));
    await serviceAccountAuth(ctx, options).token();
    assertEquals(fake.stats.tokens, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await fake.stop();
  }
});
