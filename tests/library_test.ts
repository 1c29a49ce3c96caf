/** library:// beyond the suite: the grammar, the legacy download, re-push, and oras:// interop. */

import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { requirement, runCli, tempHome } from "./_cli.ts";
import { buildSingularityLike } from "./_sif_writer.ts";
import { FAST_ENV } from "./conformance.ts";
import { onPath, REGISTRY_BIN, startRegistry } from "./servers/registry.ts";
import { startLibraryFake } from "./servers/library_fake.ts";
import { parseLibraryRef } from "../clients/library/reference.ts";
import { UsageError } from "../core/errors.ts";

const { ignore } = requirement(REGISTRY_BIN, onPath(REGISTRY_BIN));
const TOKEN = "library-extra-token-abcdef";
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("library reference grammar: host, entity/collection/container, tags", () => {
  assertEquals(parseLibraryRef("library://alpine"), {
    host: undefined,
    entity: "library",
    collection: "default",
    container: "alpine",
    tags: ["latest"],
  });
  assertEquals(parseLibraryRef("library://h.example:8443/a/b/c:t1,t2"), {
    host: "h.example:8443",
    entity: "a",
    collection: "b",
    container: "c",
    tags: ["t1", "t2"],
  });
  assertEquals(parseLibraryRef("library://a/b/c").host, undefined);
  assertThrows(() => parseLibraryRef("library://a//c"), UsageError);
  assertThrows(() => parseLibraryRef("library://a/b"), UsageError);
  assertThrows(() => parseLibraryRef("library://a/b/c:bad tag"), UsageError);
});

async function setup(ociRedirect: boolean, hashes?: Record<string, string>) {
  const bytes = buildSingularityLike({ labels: { "org.test": "library" } });
  const reg = await startRegistry();
  const lib = startLibraryFake({
    token: TOKEN,
    registry: reg.url,
    namespace: "ns",
    images: { hello: bytes },
    ociRedirect,
    hashes,
  });
  const h = await tempHome();
  const env = {
    ...h.env,
    ...FAST_ENV,
    SREGISTRY_LIBRARY_BASE: lib.url,
    SREGISTRY_LIBRARY_TOKEN: TOKEN,
  };
  const file = join(h.dir, "image.sif");
  await Deno.writeFile(file, bytes);
  return {
    bytes,
    reg,
    lib,
    env,
    file,
    h,
    async stop() {
      await lib.stop();
      await reg.stop();
      await h.cleanup();
    },
  };
}

Deno.test({
  name: "library legacy pull follows the redirect without sending the token elsewhere",
  ignore,
  ...opts,
  async fn() {
    const s = await setup(false);
    try {
      const r = await runCli(["--json", "pull", "library://lib/ns/hello:v1"], { env: s.env });
      assertEquals(r.code, 0, r.stderr);
      assertEquals(s.lib.leakedAuth, [], "the presigned host got an Authorization header");
      const push = await runCli(["push", s.file, "--name", "library://lib/ns/new:v1"], {
        env: s.env,
      });
      assertEquals(push.code, 7, push.stderr);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "library push via the OCI redirect: re-push uploads nothing, oras:// pulls it",
  ignore,
  ...opts,
  async fn() {
    const s = await setup(true);
    try {
      const uri = "library://lib/ns/pushed:v1,latest";
      const first = await runCli(["push", s.file, "--name", uri], { env: s.env });
      assertEquals(first.code, 0, first.stderr);
      const again = await runCli(["--debug", "push", s.file, "--name", uri], { env: s.env });
      assertEquals(again.code, 0, again.stderr);
      assert(/not uploading it again/.test(again.stderr), again.stderr);
      const out = join(s.h.dir, "via-oras.sif");
      const oras = await runCli(
        ["pull", "--no-cache", "--file", out, `oras://${s.reg.host}/ns/pushed:latest`],
        { env: s.env },
      );
      assertEquals(oras.code, 0, oras.stderr);
      assertEquals(await Deno.readFile(out), s.bytes);
      if (onPath("skopeo")) {
        const sk = await new Deno.Command("skopeo", {
          args: ["inspect", "--raw", "--tls-verify=false", `docker://${s.reg.host}/ns/pushed:v1`],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert(sk.success, new TextDecoder().decode(sk.stderr));
        const index = JSON.parse(new TextDecoder().decode(sk.stdout));
        assertEquals(index.mediaType, "application/vnd.oci.image.index.v1+json");
      }
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "library legacy pull is verified against the library's image hash",
  ignore,
  ...opts,
  async fn() {
    const s = await setup(false, { hello: `sha256.${"0".repeat(64)}` });
    try {
      const r = await runCli(["pull", "library://lib/ns/hello:v1"], { env: s.env });
      assertEquals(r.code, 6, r.stderr);
      const images = await runCli(["--json", "images"], { env: s.env });
      assert(!images.stdout.includes("hello"), images.stdout);
    } finally {
      await s.stop();
    }
  },
});
