/**
 * hub:// (shub://), the default client, against the strict Singularity Hub fake
 * (tests/servers/shub_fake.ts): the conformance suite, the default-client pull, hash and size
 * verification, and the listing that ends.
 * @module
 */

import { assert, assertEquals } from "../_assert.ts";
import { runCli, tempHome } from "../_cli.ts";
import { FAST_ENV, runClientConformance } from "../conformance.ts";
import { startFaultProxy } from "../servers/fault_proxy.ts";
import { startShubFake } from "../servers/shub_fake.ts";
import { expectedHash, manifestUrl } from "../../clients/hub/mod.ts";

runClientConformance({
  scheme: "hub",
  capabilities: ["pull", "search", "record"],
  start(fixture) {
    const fake = startShubFake();
    const proxy = startFaultProxy(fake.url, [
      { path: /\/broken:latest$/, fault: { status: 503 } },
      { path: /\/shub\/conformance\/dropped\//, fault: { dropAfter: 100_000 } },
      { path: /\/shub\/conformance\/slow\//, fault: { rate: 48 * 1024 } },
    ]);
    fake.put("conformance/hello:latest", fixture.bytes);
    fake.put("conformance/broken:latest", fixture.bytes);
    fake.put("conformance/expired:latest", fixture.bytes, { expired: true });
    fake.put("conformance/dropped:latest", fixture.bytes, { downloadBase: proxy.url });
    fake.put("conformance/slow:latest", fixture.bytes, { downloadBase: proxy.url });
    return Promise.resolve({
      env: { SREGISTRY_HUB_BASE: fake.api },
      uri: "shub://conformance/hello:latest",
      search: { query: "conformance", expect: "conformance/hello" },
      unauthorized: { uri: "shub://conformance/expired:latest" },
      notFound: { uri: "shub://conformance/missing:latest" },
      serverError: {
        uri: "shub://conformance/broken:latest",
        env: { SREGISTRY_HUB_BASE: `${proxy.url}/api` },
      },
      dropped: { uri: "shub://conformance/dropped:latest" },
      slow: { uri: "shub://conformance/slow:latest", sent: () => proxy.faultedBytes },
      async stop() {
        await proxy.stop();
        await fake.stop();
      },
    });
  },
});

Deno.test("hub: manifest URL keeps the case; version forms", () => {
  assertEquals(
    manifestUrl("https://h/api/", "shub://Vsoch/Hello-World:V1@abc").href,
    "https://h/api/container/Vsoch/Hello-World:V1@abc",
  );
  assertEquals(
    manifestUrl("https://h/api", "vsoch/hello").pathname,
    "/api/container/vsoch/hello:latest",
  );
  assertEquals(expectedHash("0123456789abcdef0123456789abcdef"), {
    md5: "0123456789abcdef0123456789abcdef",
  });
  assertEquals(expectedHash(`sha256.${"a".repeat(64)}`), { sha256: "a".repeat(64) });
  assertEquals(expectedHash("v1.0"), {});
});

Deno.test({
  name: "hub: `pull vsoch/hello-world` (no scheme) uses the default client; hash and size checked",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const fake = startShubFake();
    const h = await tempHome();
    try {
      const bytes = crypto.getRandomValues(new Uint8Array(40_000));
      fake.put("vsoch/hello-world:latest", bytes);
      fake.put("vsoch/badhash:latest", bytes, { version: "0".repeat(32) });
      fake.put("vsoch/badsize:latest", bytes, { size: 12 });
      fake.put("vsoch/noversion:latest", bytes, { version: null, size: null });
      fake.put("vsoch/badsha:latest", bytes, { version: `sha256.${"0".repeat(64)}` });
      const env = { ...h.env, ...FAST_ENV, SREGISTRY_HUB_BASE: fake.api };
      const r = await runCli(["--json", "pull", "vsoch/hello-world"], { env });
      assertEquals(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { path: string; uri: string; client?: string };
      assertEquals(await Deno.readFile(out.path), bytes);
      assert(out.uri.startsWith("vsoch/hello-world:latest@"), out.uri);
      assert(fake.requests.includes("GET /api/container/vsoch/hello-world:latest"));

      // The manifest's fields are the row's metadata.
      const ins = await runCli(["--json", "inspect", out.uri], { env });
      assertEquals(ins.code, 0, ins.stderr);
      const metrics = JSON.parse(ins.stdout).metrics as Record<string, unknown>;
      assertEquals(typeof metrics.commit, "string");
      assertEquals(metrics.name, "vsoch/hello-world");
      assertEquals(metrics.selfLink, `${fake.api}/container/vsoch/hello-world:latest`);
      // @version asks the hub for that version.
      const version = out.uri.split("@")[1];
      const pinned = await runCli(["--json", "pull", "--force", `vsoch/hello-world@${version}`], {
        env,
      });
      assertEquals(pinned.code, 0, pinned.stderr);
      assert(fake.requests.includes(`GET /api/container/vsoch/hello-world:latest@${version}`));
      const stale = await runCli(["pull", `vsoch/hello-world@${"f".repeat(32)}`], { env });
      assertEquals(stale.code, 3, stale.stderr);

      const bad = await runCli(["pull", "shub://vsoch/badhash"], { env });
      assertEquals(bad.code, 6, bad.stderr);
      assert(/md5/.test(bad.stderr), bad.stderr);
      const sha = await runCli(["pull", "shub://vsoch/badsha"], { env });
      assertEquals(sha.code, 6, sha.stderr);
      const size = await runCli(["pull", "hub://vsoch/badsize"], { env });
      assertEquals(size.code, 6, size.stderr);
      const nov = await runCli(["--json", "pull", "shub://vsoch/noversion"], { env });
      assertEquals(nov.code, 0, nov.stderr);
      const images = await runCli(["--json", "images"], { env: h.env });
      assertEquals((JSON.parse(images.stdout) as unknown[]).length, 2, images.stdout);
    } finally {
      await fake.stop();
      await h.cleanup();
    }
  },
});

Deno.test({
  name: "hub: search follows every page of collections and ends (the original looped on page 1)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const fake = startShubFake();
    const h = await tempHome();
    try {
      for (let i = 0; i < 23; i++) {
        fake.put(`col${String(i).padStart(2, "0")}/img:v${i}`, new Uint8Array([i]));
      }
      const env = { ...h.env, ...FAST_ENV, SREGISTRY_HUB_BASE: fake.api };
      const r = await runCli(["--json", "search"], { env });
      assertEquals(r.code, 0, r.stderr);
      const hits = JSON.parse(r.stdout) as { uri: string }[];
      assertEquals(hits.length, 23);
      assertEquals(fake.requests.filter((x) => x.includes("/api/collections/")).length, 3);
      const one = await runCli(["--json", "search", "col07"], { env });
      assertEquals((JSON.parse(one.stdout) as { uri: string }[]).map((x) => x.uri), [
        "shub://col07/img:v7",
      ]);
    } finally {
      await fake.stop();
      await h.cleanup();
    }
  },
});
