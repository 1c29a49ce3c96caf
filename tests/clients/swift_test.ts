/**
 * The swift:// client against a real OpenStack Swift (Debian's packages, tempauth) started once for
 * this file: the conformance suite, then interop with the `swift` command (python3-swiftclient),
 * Keystone v3 through a strict fake of its token endpoint, a token refused by Swift, a missing
 * container, a static large object with small segments, and listings over several pages.
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals, assertIncludes } from "../_assert.ts";
import { onPath, requirement, runCli, spawnCli, type TempHome, tempHome } from "../_cli.ts";
import { runClientConformance } from "../conformance.ts";
import { startFaultProxy } from "../servers/fault_proxy.ts";
import { startKeystoneFake } from "../servers/keystone_fake.ts";
import { startSwift, type Swift, swiftAvailable } from "../servers/swift.ts";

const { ignore } = requirement(
  "OpenStack Swift (swift-proxy-server and friends), memcached and the swift command",
  swiftAvailable() && onPath("swift"),
);

let started: Promise<Swift> | undefined;
/**
 * The one Swift of this file (the last test stops it). Right after start-up a loaded machine's
 * container server may still answer 503 for a moment: the first container is created with retries.
 */
const server = () =>
  started ??= startSwift().then(async (sw) => {
    for (let i = 0;; i++) {
      try {
        await sw.createContainer("conformance");
        return sw;
      } catch (e) {
        if (i >= 20) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  });

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** The CLI's settings for the legacy v1 auth against tempauth. */
function v1Env(sw: Swift): Record<string, string> {
  return {
    SREGISTRY_SWIFT_URL: sw.authUrl,
    SREGISTRY_SWIFT_USER: sw.user.name,
    SREGISTRY_SWIFT_TOKEN: sw.user.key,
  };
}

/** `swift -A <auth> -U <user> -K <key> <args>` (python3-swiftclient) in `cwd`. */
async function swiftCmd(sw: Swift, args: string[], cwd: string): Promise<string> {
  const out = await new Deno.Command("swift", {
    args: ["-A", sw.authUrl, "-U", sw.user.name, "-K", sw.user.key, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`swift ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

function random(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

runClientConformance({
  scheme: "swift",
  capabilities: ["pull", "push", "search", "record", "delete"],
  ignore,
  async start(fixture) {
    const sw = await server();
    // Seeded as sregistry-cli pushed: the object alone, no digest (a pull checks its size).
    await sw.createContainer("conformance");
    await sw.putObjects(
      "conformance",
      ["hello", "broken", "dropped", "slow"].map((n) => ({
        name: `${n}:v1.sif`,
        body: fixture.bytes,
        headers: { "content-type": "application/octet-stream" },
      })),
    );
    const proxy = startFaultProxy(sw.url, [
      { path: /\/broken%3Av1\.sif$|\/broken:v1\.sif$/, fault: { status: 503 } },
      { path: /\/dropped%3Av1\.sif$|\/dropped:v1\.sif$/, fault: { dropAfter: 100_000 } },
      { path: /\/slow%3Av1\.sif$|\/slow:v1\.sif$/, fault: { rate: 48 * 1024 } },
    ]);
    const token = await sw.token();
    // The faults sit between the client and the account: a pre-authenticated session through them.
    const faulty = {
      SREGISTRY_SWIFT_AUTHTYPE: "preauth",
      SREGISTRY_SWIFT_OS_AUTH_TOKEN: token,
      SREGISTRY_SWIFT_OS_STORAGE_URL: `${proxy.url}/v1/AUTH_test`,
    };
    return {
      env: v1Env(sw),
      uri: "swift://conformance/hello:v1",
      pushUri: "swift://conformance/pushed:v1",
      search: { query: "swift://conformance/hello", expect: "swift://conformance/hello:v1" },
      unauthorized: {
        uri: "swift://conformance/hello:v1",
        env: { SREGISTRY_SWIFT_TOKEN: "wrong-key" },
      },
      notFound: { uri: "swift://conformance/missing:v1" },
      serverError: { uri: "swift://conformance/broken:v1", env: faulty },
      dropped: { uri: "swift://conformance/dropped:v1", env: faulty },
      slow: { uri: "swift://conformance/slow:v1", env: faulty, sent: () => proxy.faultedBytes },
      secretValues: [token],
      async stop() {
        await proxy.stop();
      },
    };
  },
});

/** A fresh home for CLI runs, removed afterwards. */
async function withHome<T>(fn: (h: TempHome) => Promise<T>): Promise<T> {
  const h = await tempHome();
  try {
    return await fn(h);
  } finally {
    await h.cleanup();
  }
}

Deno.test({
  name: "swift interop: what we push the swift command downloads byte-exact, and the reverse",
  ignore,
  async fn() {
    const sw = await server();
    await withHome(async (h) => {
      const env = { ...v1Env(sw), ...h.env };
      const ours = random(300_000 + 17);
      const file = join(h.dir, "ours.sif");
      await Deno.writeFile(file, ours);
      const p = await runCli(["push", file, "--name", "swift://interop/ours:v1"], { env });
      assertEquals(p.code, 0, p.stderr);
      await swiftCmd(sw, ["download", "interop", "ours:v1.sif", "-o", "back.sif"], h.dir);
      assertEquals(sha(await Deno.readFile(join(h.dir, "back.sif"))), sha(ours));
      const stat = await swiftCmd(sw, ["stat", "interop", "ours:v1.sif"], h.dir);
      assertIncludes(stat, `Meta Sha256: sha256:${sha(ours)}`);

      // Above 64 MiB the digest is computed while the file goes up, then set with a POST.
      const large = new Uint8Array(64 * 1024 * 1024 + 1);
      large.set(random(65536), 1000);
      const largeFile = join(h.dir, "large.sif");
      await Deno.writeFile(largeFile, large);
      const pl = await runCli(["push", largeFile, "--name", "swift://interop/large:v1"], { env });
      assertEquals(pl.code, 0, pl.stderr);
      const statLarge = await swiftCmd(sw, ["stat", "interop", "large:v1.sif"], h.dir);
      assertIncludes(statLarge, `Meta Sha256: sha256:${sha(large)}`);
      assertIncludes(statLarge, "Content Type: application/octet-stream");
      await Deno.remove(largeFile);

      // `swift upload` as sregistry-cli users had it: found by search, pulled by us.
      const theirs = random(123_457);
      await Deno.mkdir(join(h.dir, "up"));
      await Deno.writeFile(join(h.dir, "up", "theirs:v2.sif"), theirs);
      await swiftCmd(sw, ["upload", "interop", "theirs:v2.sif"], join(h.dir, "up"));
      const s = await runCli(["--json", "search", "swift://interop/"], { env });
      assertEquals(s.code, 0, s.stderr);
      const uris = (JSON.parse(s.stdout) as { uri: string }[]).map((x) => x.uri).sort();
      assertEquals(uris, [
        "swift://interop/large:v1",
        "swift://interop/ours:v1",
        "swift://interop/theirs:v2",
      ]);
      const dest = join(h.dir, "theirs.sif");
      const r = await runCli(
        ["--json", "pull", "--no-cache", "--file", dest, "swift://interop/theirs:v2"],
        { env },
      );
      assertEquals(r.code, 0, r.stderr);
      assertEquals(sha(await Deno.readFile(dest)), sha(theirs));
      assertEquals((JSON.parse(r.stdout) as { digest: string }).digest, `sha256:${sha(theirs)}`);

      // A changed object whose digest no longer fits is refused (exit 6), never stored.
      await sw.putObject("interop", "bad:v1.sif", random(1000), {
        "x-object-meta-sha256": `sha256:${"0".repeat(64)}`,
      });
      const bad = await runCli(["pull", "swift://interop/bad:v1"], { env });
      assertEquals(bad.code, 6, bad.stderr);
    });
  },
});

Deno.test({
  name: "swift auth: keystonev3 through a strict fake, a refused token renewed once, wrong keys",
  ignore,
  async fn() {
    const sw = await server();
    await sw.createContainer("auth");
    await sw.putObject("auth", "img:v1.sif", "hello swift");
    const ks = startKeystoneFake({
      user: "demo",
      password: "secret-pw",
      swiftLogin: async () => ({ token: await sw.token(), storageUrl: sw.storageUrl }),
    });
    try {
      await withHome(async (h) => {
        const ksEnv = {
          SREGISTRY_SWIFT_AUTHTYPE: "keystonev3",
          SREGISTRY_SWIFT_URL: ks.url,
          SREGISTRY_SWIFT_USER: "demo",
          SREGISTRY_SWIFT_TOKEN: "secret-pw",
          ...h.env,
        };
        const dest = join(h.dir, "a.sif");
        const ok = await runCli(["pull", "--no-cache", "--file", dest, "swift://auth/img:v1"], {
          env: ksEnv,
        });
        assertEquals(ok.code, 0, ok.stderr);
        assertEquals(await Deno.readTextFile(dest), "hello swift");
        assertEquals(ks.issued, 1);

        // Keystone hands out a token Swift refuses: one 401, one new token, the pull succeeds.
        ks.invalidateNext();
        const h2 = await tempHome();
        try {
          const again = await runCli(["--json", "record", "swift://auth/img:v1"], {
            env: { ...ksEnv, ...h2.env },
          });
          assertEquals(again.code, 0, again.stderr);
          assertEquals(ks.issued, 3, "one token refused, one more asked for");
        } finally {
          await h2.cleanup();
        }

        const wrong = await runCli(["pull", "swift://auth/img:v1"], {
          env: { ...ksEnv, SREGISTRY_SWIFT_TOKEN: "nope", SREGISTRY_DISABLE_CREDENTIAL_CACHE: "1" },
        });
        assertEquals(wrong.code, 4, wrong.stderr);
        assertIncludes(wrong.stderr, "SREGISTRY_SWIFT_TOKEN");
        assert(!wrong.stderr.includes("nope"), "the password was printed");
        const project = await runCli(["pull", "swift://auth/img:v1"], {
          env: {
            ...ksEnv,
            SREGISTRY_SWIFT_PROJECT: "other",
            SREGISTRY_DISABLE_CREDENTIAL_CACHE: "1",
          },
        });
        assertEquals(project.code, 4, project.stderr);
      });

      // v1: the cached token is revoked (here: replaced by garbage); Swift's 401 renews it once.
      await withHome(async (h) => {
        const env = { ...v1Env(sw), ...h.env };
        const first = await runCli(["record", "swift://auth/img:v1"], { env });
        assertEquals(first.code, 0, first.stderr);
        const cache = join(h.dir, ".singularity", ".sregistry", "swift");
        const stored = JSON.parse(await Deno.readTextFile(cache));
        assert(stored.session?.token, `no cached session in ${cache}`);
        stored.session.token = "AUTH_tk0123456789abcdef0123456789abcdef";
        await Deno.writeTextFile(cache, JSON.stringify(stored));
        const dest = join(h.dir, "b.sif");
        const again = await runCli(["pull", "--no-cache", "--file", dest, "swift://auth/img:v1"], {
          env,
        });
        assertEquals(again.code, 0, again.stderr);
        const renewed = JSON.parse(await Deno.readTextFile(cache));
        assertEquals(renewed.session.token, await sw.token(), "the renewed token is cached");
        // The same for a push, whose body is a stream: sent again after the renewal.
        renewed.session.token = "AUTH_tk0123456789abcdef0123456789abcdee";
        await Deno.writeTextFile(cache, JSON.stringify(renewed));
        const push = await runCli(["push", dest, "--name", "swift://auth/again:v1"], { env });
        assertEquals(push.code, 0, push.stderr);
        assertEquals(await sw.listObjects("auth"), ["again:v1.sif", "img:v1.sif"]);

        const wrong = await runCli(["pull", "swift://auth/img:v1"], {
          env: { ...env, SREGISTRY_SWIFT_TOKEN: "wrong-key" },
        });
        assertEquals(wrong.code, 4, wrong.stderr);
        assertIncludes(wrong.stderr, "SREGISTRY_SWIFT_USER and SREGISTRY_SWIFT_TOKEN");
        // A user without rights on the account: 403 is exit 4 too.
        const noRights = await runCli(["pull", "swift://auth/img:v1"], {
          env: {
            ...env,
            SREGISTRY_SWIFT_USER: sw.users.tester3.name,
            SREGISTRY_SWIFT_TOKEN: sw.users.tester3.key,
          },
        });
        assertEquals(noRights.code, 4, noRights.stderr);
      });
    } finally {
      await ks.stop();
    }
  },
});

Deno.test({
  name: "swift: a missing container is exit 3 naming the containers; a missing object exit 3",
  ignore,
  async fn() {
    const sw = await server();
    await sw.createContainer("present");
    await sw.putObject("present", "img:v1.sif", "x");
    await withHome(async (h) => {
      const env = { ...v1Env(sw), ...h.env };
      const r = await runCli(["pull", "swift://absent/img:v1"], { env });
      assertEquals(r.code, 3, r.stderr);
      assertIncludes(r.stderr, 'Swift container "absent" does not exist');
      assertIncludes(r.stderr, '"present"');
      const o = await runCli(["pull", "swift://present/img:v2"], { env });
      assertEquals(o.code, 3, o.stderr);
      assertIncludes(o.stderr, "swift://present/img:v1");
      const d = await runCli(["delete", "--force", "swift://absent/img:v1"], { env });
      assertEquals(d.code, 3, d.stderr);
      const del = await runCli(["--json", "delete", "--force", "swift://present/img:v1"], { env });
      assertEquals(del.code, 0, del.stderr);
      assertIncludes(del.stdout, "swift://present/img:v1");
      assertEquals(await sw.listObjects("present"), []);
    });
  },
});

Deno.test({
  name: "swift SLO: small segments in parallel, byte-exact both ways, replaced and deleted cleanly",
  ignore,
  async fn() {
    const sw = await server();
    await withHome(async (h) => {
      const env = {
        ...v1Env(sw),
        ...h.env,
        SREGISTRY_SWIFT_SEGMENT_THRESHOLD: "100000",
        SREGISTRY_SWIFT_SEGMENT_SIZE: "65536",
      };
      const big = random(600_001);
      const file = join(h.dir, "big.sif");
      await Deno.writeFile(file, big);
      const p = await runCli(["push", file, "--name", "swift://slo/big:v1"], { env });
      assertEquals(p.code, 0, p.stderr);
      const segments = await sw.listObjects("slo_segments");
      assertEquals(segments.length, Math.ceil(600_001 / 65536), segments.join(" "));
      const stat = await swiftCmd(sw, ["stat", "slo", "big:v1.sif"], h.dir);
      assertIncludes(stat, "X-Static-Large-Object: True");
      await swiftCmd(sw, ["download", "slo", "big:v1.sif", "-o", "swift.out"], h.dir);
      assertEquals(sha(await Deno.readFile(join(h.dir, "swift.out"))), sha(big));
      const dest = join(h.dir, "back.sif");
      const r = await runCli(["pull", "--no-cache", "--file", dest, "swift://slo/big:v1"], { env });
      assertEquals(r.code, 0, r.stderr);
      assertEquals(sha(await Deno.readFile(dest)), sha(big));

      // Pushed again with larger segments: the old segments go.
      const p2 = await runCli(["push", file, "--name", "swift://slo/big:v1"], {
        env: { ...env, SREGISTRY_SWIFT_SEGMENT_SIZE: "200000" },
      });
      assertEquals(p2.code, 0, p2.stderr);
      assertEquals((await sw.listObjects("slo_segments")).length, 4);
      const d = await runCli(["delete", "--force", "swift://slo/big:v1"], { env });
      assertEquals(d.code, 0, d.stderr);
      assertEquals(await sw.listObjects("slo_segments"), [], "segments left after delete");
      assertEquals(await sw.listObjects("slo"), []);
    });
  },
});

Deno.test({
  name: "swift search: full listings over several pages of containers and objects",
  ignore,
  async fn() {
    const sw = await server();
    const names = Array.from({ length: 23 }, (_, i) => `img${String(i).padStart(2, "0")}:v1.sif`);
    await sw.createContainer("paged");
    await sw.putObjects("paged", names.map((name) => ({ name, body: "x" })));
    for (let i = 0; i < 8; i++) await sw.createContainer(`paged-c${i}`);
    await withHome(async (h) => {
      const env = { ...v1Env(sw), ...h.env, SREGISTRY_SWIFT_PAGE_SIZE: "5" };
      const s = await runCli(["--json", "search", "swift://paged/"], { env });
      assertEquals(s.code, 0, s.stderr);
      const uris = (JSON.parse(s.stdout) as { uri: string }[]).map((x) => x.uri).sort();
      assertEquals(uris, names.map((n) => `swift://paged/${n.slice(0, -4)}`));
      // The query filters container/object by substring, as the original did.
      const q = await runCli(["--json", "search", "swift://img07"], { env });
      assertEquals((JSON.parse(q.stdout) as { uri: string }[]).map((x) => x.uri), [
        "swift://paged/img07:v1",
      ]);
    });
  },
});

Deno.test({
  name: "swift pull: an interrupted pull resumes from where it stopped",
  ignore,
  async fn() {
    const sw = await server();
    const body = random(240_000);
    await sw.createContainer("resume");
    await sw.putObject("resume", "img:v1.sif", body);
    const proxy = startFaultProxy(sw.url, [{ path: /\/resume\//, fault: { rate: 64 * 1024 } }]);
    try {
      await withHome(async (h) => {
        const env = {
          ...h.env,
          SREGISTRY_SWIFT_AUTHTYPE: "preauth",
          SREGISTRY_SWIFT_OS_AUTH_TOKEN: await sw.token(),
          SREGISTRY_SWIFT_OS_STORAGE_URL: `${proxy.url}/v1/AUTH_test`,
        };
        const child = spawnCli(["pull", "swift://resume/img:v1"], { env });
        const deadline = Date.now() + 15_000;
        while (proxy.faultedBytes < 120_000 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
        }
        child.kill("SIGINT");
        assertEquals((await child.output()).code, 130);
        const first = proxy.faultedBytes;
        assert(first >= 100_000 && first < body.length, `first pull sent ${first}`);
        const r = await runCli(["--json", "pull", "swift://resume/img:v1"], { env });
        assertEquals(r.code, 0, r.stderr);
        const path = (JSON.parse(r.stdout) as { path: string }).path;
        assertEquals(sha(await Deno.readFile(path)), sha(body));
        const again = proxy.faultedBytes - first;
        assert(again < body.length - 50_000, `the second pull fetched ${again} bytes again`);
      });
    } finally {
      await proxy.stop();
    }
  },
});

Deno.test({
  name: "swift: stop the server",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    if (started) await (await started).stop();
  },
});
