/**
 * swift:// without a server: the layout (containers, object names, URLs), the auth URL rules, the
 * Keystone catalog choice, size settings, and the session logic driven through the real client
 * with an injected fetch (the cached token, one re-authentication on 401, preauth without one).
 * The real Swift runs in tests/clients/swift_test.ts.
 * @module
 */

import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { tempHome } from "./_cli.ts";
import { createApp } from "../mod.ts";
import {
  AuthError,
  ConfigError,
  NotFoundError,
  UnsupportedError,
  UsageError,
} from "../core/errors.ts";
import { memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";
import { keystoneTokensUrl, objectStoreEndpoint, v1AuthUrl } from "../clients/swift/_auth.ts";
import { locate, objectUrl, segmentContainer, uriOf } from "../clients/swift/_layout.ts";
import { parseBytes } from "../clients/swift/mod.ts";
import type { Client } from "../clients/types.ts";

Deno.test("swift layout: one container per collection, the object image:tag[@version].sif", () => {
  assertEquals(locate("swift://library/busybox"), {
    names: locate("library/busybox").names,
    container: "library",
    object: "busybox:latest.sif",
  });
  assertEquals(locate("swift://c/i:v1@abc").object, "i:v1@abc.sif");
  assertEquals(locate("c/i:v1", { tag: "v2" }).object, "i:v2.sif");
  assertEquals(locate("busybox").container, "library");
  assertThrows(() => locate("swift://a/b/c:v1"), UsageError);
  assertEquals(segmentContainer("c"), "c_segments");
  assertEquals(uriOf("c", "i:v1.sif"), "swift://c/i:v1");
  assertEquals(uriOf("c", "i:v1@abc.sif"), "swift://c/i:v1@abc");
  assertEquals(uriOf("c", "notes.txt"), undefined);
  assertEquals(uriOf("c", "i:v1.sif/slo/1/2/3/00000000"), undefined);
  assertEquals(
    objectUrl("http://h:8080/v1/AUTH_t", "c", "i:v1.sif").href,
    "http://h:8080/v1/AUTH_t/c/i%3Av1.sif",
  );
  assertEquals(objectUrl("http://h/v1/AUTH_t", "c").href, "http://h/v1/AUTH_t/c");
});

Deno.test("swift auth URLs: the original's rules", () => {
  assertEquals(v1AuthUrl("http://rgw:7480").href, "http://rgw:7480/auth/");
  assertEquals(v1AuthUrl("http://rgw:7480/").href, "http://rgw:7480/auth/");
  // tempauth answers /auth/v1.0/<anything>: the setting for it ends in /auth/v1.0.
  assertEquals(v1AuthUrl("http://h:8080/auth/v1.0").href, "http://h:8080/auth/v1.0/auth/");
  assertEquals(keystoneTokensUrl("https://ks:5000").href, "https://ks:5000/v3/auth/tokens");
  assertEquals(keystoneTokensUrl("https://ks:5000/v3/").href, "https://ks:5000/v3/auth/tokens");
  assertThrows(() => v1AuthUrl("ftp://x"), ConfigError);
  assertThrows(() => keystoneTokensUrl("not a url"), ConfigError);
});

Deno.test("swift keystone catalog: the public object-store endpoint, by region", () => {
  const catalog = [
    { type: "identity", endpoints: [{ interface: "public", url: "http://id" }] },
    {
      type: "object-store",
      endpoints: [
        { interface: "internal", region_id: "R1", url: "http://internal" },
        { interface: "public", region_id: "R1", url: "http://r1" },
        { interface: "public", region: "R2", url: "http://r2" },
      ],
    },
  ];
  assertEquals(objectStoreEndpoint(catalog, undefined), "http://r1");
  assertEquals(objectStoreEndpoint(catalog, "R2"), "http://r2");
  assertEquals(objectStoreEndpoint(catalog, "R3"), undefined);
  assertEquals(objectStoreEndpoint({}, undefined), undefined);
  assertEquals(objectStoreEndpoint([{ type: "compute", endpoints: [] }], undefined), undefined);
});

Deno.test("swift sizes: bytes or K/M/G suffixes", () => {
  assertEquals(parseBytes("X", undefined, 7), 7);
  assertEquals(parseBytes("X", "100", 7), 100);
  assertEquals(parseBytes("X", "64M", 7), 64 * 1024 * 1024);
  assertEquals(parseBytes("X", "5GiB", 7), 5 * 1024 ** 3);
  assertThrows(() => parseBytes("X", "-1", 7), UsageError);
  assertThrows(() => parseBytes("X", "lots", 7), UsageError);
});

/** A tiny Swift v1 on a fetch: tokens it issued, which it still accepts, and every call seen. */
function fakeSwift(options: { key?: string } = {}) {
  const calls: string[] = [];
  const valid = new Set<string>();
  let n = 0;
  const storage = "http://swift.test/v1/AUTH_t";
  const objects = new Map<string, Uint8Array<ArrayBuffer>>([[
    "c/i:v1.sif",
    new TextEncoder().encode("x"),
  ]]);
  const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    calls.push(`${req.method} ${url.pathname}`);
    if (url.pathname === "/auth/v1.0/auth/") {
      if (
        req.headers.get("x-auth-user") !== "t:u" ||
        req.headers.get("x-auth-key") !== (options.key ?? "k")
      ) return Promise.resolve(new Response("", { status: 401 }));
      const token = `AUTH_tk${++n}`;
      valid.add(token);
      return Promise.resolve(
        new Response(null, {
          status: 200,
          headers: {
            "x-auth-token": token,
            "x-storage-url": storage,
            "x-auth-token-expires": "3600",
          },
        }),
      );
    }
    if (!valid.has(req.headers.get("x-auth-token") ?? "")) {
      return Promise.resolve(new Response("<html>401 Unauthorized</html>", { status: 401 }));
    }
    const key = decodeURIComponent(url.pathname.replace("/v1/AUTH_t/", ""));
    const data = objects.get(key);
    if (key === "c") return Promise.resolve(new Response(null, { status: 204 }));
    if (!data) return Promise.resolve(new Response("", { status: 404 }));
    return Promise.resolve(
      new Response(req.method === "HEAD" ? null : data, {
        headers: { "content-length": String(data.length), etag: '"e"' },
      }),
    );
  }) as typeof fetch;
  return { calls, valid, fetch: fetchFn };
}

async function clientWith(
  env: Record<string, string>,
  fetchFn: typeof fetch,
  home: string,
): Promise<{ client: Client; close(): void; stderr: () => string }> {
  const stderr = memorySink();
  const app = createApp({
    env: envFrom({
      HOME: home,
      SREGISTRY_CLIENT_SECRETS: `${home}/secrets.json`,
      SREGISTRY_DATABASE: `${home}/db`,
      SREGISTRY_STORAGE: `${home}/storage`,
      SREGISTRY_BACKOFF_MS: "1",
      ...env,
    }),
    fetch: fetchFn,
    stdout: memorySink(),
    stderr,
  });
  const { client } = await app.getClient("swift://c/i:v1");
  return { client, close: () => app.close(), stderr: () => stderr.text() };
}

const V1 = {
  SREGISTRY_SWIFT_URL: "http://swift.test/auth/v1.0",
  SREGISTRY_SWIFT_USER: "t:u",
  SREGISTRY_SWIFT_TOKEN: "k",
};

Deno.test("swift session: cached in the credential store, renewed once on 401", async () => {
  const h = await tempHome();
  try {
    const swift = fakeSwift();
    const a = await clientWith(V1, swift.fetch, h.dir);
    const r1 = await a.client.record!("swift://c/i:v1");
    assertEquals(r1.size, 1);
    a.close();
    assertEquals(swift.calls.filter((c) => c.startsWith("GET /auth")).length, 1);

    // A second run uses the cached token: no auth call.
    const b = await clientWith(V1, swift.fetch, h.dir);
    await b.client.record!("swift://c/i:v1");
    b.close();
    assertEquals(swift.calls.filter((c) => c.startsWith("GET /auth")).length, 1, "cached");

    // The token is revoked (expired on the Swift side): one 401, one new auth, the call succeeds.
    swift.valid.clear();
    swift.calls.length = 0;
    const c = await clientWith(V1, swift.fetch, h.dir);
    const r3 = await c.client.record!("swift://c/i:v1");
    c.close();
    assertEquals(r3.size, 1);
    assertEquals(swift.calls, [
      "HEAD /v1/AUTH_t/c/i%3Av1.sif",
      "GET /auth/v1.0/auth/",
      "HEAD /v1/AUTH_t/c/i%3Av1.sif",
    ]);

    // A changed key is not served from the cache of the old one.
    swift.calls.length = 0;
    const d = await clientWith({ ...V1, SREGISTRY_SWIFT_TOKEN: "wrong" }, swift.fetch, h.dir);
    const e = await assertRejects(() => d.client.record!("swift://c/i:v1"), AuthError);
    d.close();
    assert(/SREGISTRY_SWIFT_USER and SREGISTRY_SWIFT_TOKEN/.test(e.message), e.message);
    assertEquals(swift.calls, ["GET /auth/v1.0/auth/"]);
  } finally {
    await h.cleanup();
  }
});

Deno.test("swift preauth: no auth call; a refused token is exit 4 naming the variables", async () => {
  const h = await tempHome();
  try {
    const swift = fakeSwift();
    swift.valid.add("AUTH_tkgiven");
    const env = {
      SREGISTRY_SWIFT_AUTHTYPE: "preauth",
      SREGISTRY_SWIFT_OS_AUTH_TOKEN: "AUTH_tkgiven",
      SREGISTRY_SWIFT_OS_STORAGE_URL: "http://swift.test/v1/AUTH_t/",
    };
    const a = await clientWith(env, swift.fetch, h.dir);
    assertEquals((await a.client.record!("swift://c/i:v1")).size, 1);
    a.close();
    swift.valid.clear();
    const b = await clientWith(env, swift.fetch, h.dir);
    const e = await assertRejects(() => b.client.record!("swift://c/i:v1"), AuthError);
    b.close();
    assert(/SREGISTRY_SWIFT_OS_AUTH_TOKEN/.test(e.message), e.message);
    assert(!swift.calls.some((c) => c.includes("/auth")), "preauth authenticated");
  } finally {
    await h.cleanup();
  }
});

Deno.test("swift: keystonev2 is exit 7, a missing setting names it, missing object is exit 3", async () => {
  const h = await tempHome();
  try {
    const swift = fakeSwift();
    const a = await clientWith({ SREGISTRY_SWIFT_AUTHTYPE: "keystonev2" }, swift.fetch, h.dir);
    await assertRejects(() => a.client.record!("swift://c/i:v1"), UnsupportedError);
    a.close();
    // (The auth type is saved in the secrets file, as the original did: another home.)
    await Deno.mkdir(`${h.dir}/2`);
    const b = await clientWith({ SREGISTRY_SWIFT_USER: "t:u" }, swift.fetch, `${h.dir}/2`);
    const e = await assertRejects(() => b.client.record!("swift://c/i:v1"), ConfigError);
    assert(/SREGISTRY_SWIFT_TOKEN and SREGISTRY_SWIFT_URL/.test(e.message), e.message);
    b.close();
    const c = await clientWith(V1, swift.fetch, `${h.dir}/2`);
    const nf = await assertRejects(() => c.client.record!("swift://c/other:v1"), NotFoundError);
    assert(/"other:v1.sif" in Swift container "c"/.test(nf.message), nf.message);
    c.close();
    assertEquals(swift.calls.filter((x) => x.includes("/auth")).length, 1);
  } finally {
    await h.cleanup();
  }
});
