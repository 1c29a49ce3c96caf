import assert, { equal as assertEquals, match as assertMatch } from "./_assert.ts";
import { requirement, runCli, tempHome } from "./_cli.ts";
import { startEcrFake } from "./servers/ecr_fake.ts";
import { startNgcFake } from "./servers/ngc_fake.ts";
import {
  makeLayer,
  onPath,
  pushImage,
  REGISTRY_BIN,
  startRegistry,
  tokenFor,
} from "./servers/registry.ts";

const { ignore } = requirement(
  `${REGISTRY_BIN}, htpasswd and openssl`,
  onPath(REGISTRY_BIN) && onPath("htpasswd") && onPath("openssl"),
);

Deno.test({
  name: "aws: SigV4-signed ECR token, then Basic AWS:<token> to the real registry",
  ignore,
}, async () => {
  const password = "ecr-password-" + crypto.randomUUID();
  const reg = await startRegistry({ mode: "htpasswd", users: { AWS: password } });
  const ecr = startEcrFake({
    keys: { AKIDTEST: "secret-key-test" },
    region: "eu-west-3",
    password,
    registryHost: reg.host,
  });
  const home = await tempHome();
  try {
    await pushImage(
      { url: reg.url, authorization: `Basic ${btoa(`AWS:${password}`)}` },
      "aws/busybox",
      "1.0",
      [
        await makeLayer({ a: "1" }),
      ],
    );
    const env = {
      ...home.env,
      SREGISTRY_AWS_BASE: reg.host,
      SREGISTRY_AWS_ZONE: "eu-west-3",
      SREGISTRY_AWS_ENDPOINT: ecr.endpoint,
      AWS_ACCESS_KEY_ID: "AKIDTEST",
      AWS_SECRET_ACCESS_KEY: "secret-key-test",
    };
    const ok = await runCli(["--debug", "pull", "aws://busybox:1.0"], { env });
    assertEquals(ok.code, 0, ok.stderr);
    assert(!ok.stderr.includes(password), "registry password printed");
    assert(!ok.stderr.includes("secret-key-test"), "AWS secret printed");
    assertEquals(ecr.stats.ok, 1);
    const bad = await runCli(["pull", "--force", "aws://busybox:1.0"], {
      env: { ...env, AWS_SECRET_ACCESS_KEY: "wrong-secret" },
    });
    assertEquals(bad.code, 4, bad.stderr);
    assertMatch(bad.stderr, /InvalidSignatureException/);
    const noRegion = await runCli(["pull", "aws://busybox:1.0"], {
      env: { ...env, SREGISTRY_AWS_ZONE: "" },
    });
    assertEquals(noRegion.code, 2, noRegion.stderr);
  } finally {
    await ecr.stop();
    await reg.stop();
    await home.cleanup();
  }
});

Deno.test({ name: "nvidia: NGC challenge without service, $oauthtoken user", ignore }, async () => {
  const reg = await startRegistry();
  const ngc = startNgcFake(reg.url, "ngc-api-key-123");
  const home = await tempHome();
  try {
    await pushImage({ url: reg.url }, "nvidia/tensorflow", "17.11", [await makeLayer({ t: "f" })]);
    const env = { ...home.env, SREGISTRY_NVIDIA_BASE: ngc.host };
    const missing = await runCli(["pull", "nvidia://tensorflow:17.11"], { env });
    assertEquals(missing.code, 2, missing.stderr);
    assertMatch(missing.stderr, /SREGISTRY_NVIDIA_TOKEN/);
    const wrong = await runCli(["pull", "nvidia://tensorflow:17.11"], {
      env: { ...env, SREGISTRY_NVIDIA_TOKEN: "wrong-key" },
    });
    assertEquals(wrong.code, 4, wrong.stderr);
    const ok = await runCli(["pull", "nvidia://tensorflow:17.11"], {
      env: { ...env, SREGISTRY_NVIDIA_TOKEN: "ngc-api-key-123" },
    });
    assertEquals(ok.code, 0, ok.stderr);
    assert(ngc.issued >= 1);
  } finally {
    await ngc.stop();
    await reg.stop();
    await home.cleanup();
  }
});

Deno.test(
  { name: "docker pull: a token that expires during a slow pull is refreshed", ignore },
  async () => {
    const reg = await startRegistry({ mode: "token" });
    const home = await tempHome();
    // a slow proxy: every blob answer is held 700 ms, so a 1 s token dies during the pull
    const slow = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const u = new URL(req.url);
      if (u.pathname.includes("/blobs/")) await new Promise((r) => setTimeout(r, 700));
      const res = await fetch(`${reg.url}${u.pathname}${u.search}`, {
        method: req.method,
        headers: req.headers,
      });
      const headers = new Headers(res.headers);
      const wa = headers.get("www-authenticate");
      if (wa) headers.set("www-authenticate", wa);
      return new Response(res.body, { status: res.status, headers });
    });
    try {
      const tok = await tokenFor(
        reg.tokens!.realm,
        "testuser",
        "testpass",
        "repository:test/slow:pull,push",
      );
      const l = [];
      for (let i = 0; i < 4; i++) l.push(await makeLayer({ [`f${i}`]: `${i}` }));
      await pushImage({ url: reg.url, authorization: `Bearer ${tok}` }, "test/slow", "v1", l);
      reg.tokens!.setExpiresIn(1);
      const before = reg.tokens!.issued;
      const r = await runCli(["pull", `docker://127.0.0.1:${slow.addr.port}/test/slow:v1`], {
        env: {
          ...home.env,
          SREGISTRY_WORKERS: "1",
          SREGISTRY_DOCKER_USERNAME: "testuser",
          SREGISTRY_DOCKER_PASSWORD: "testpass",
        },
      });
      assertEquals(r.code, 0, r.stderr);
      assert(reg.tokens!.issued - before >= 3, `only ${reg.tokens!.issued - before} tokens issued`);
    } finally {
      await slow.shutdown();
      await reg.stop();
      await home.cleanup();
    }
  },
);
