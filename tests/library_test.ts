/**
 * library:// beyond the suite: the grammar; the legacy transfers through the library fake, whose
 * presigned URLs point at the real S3 API of a Swift server (download, single PUT, parallel
 * multipart, an interrupted multipart push resumed); tags per architecture; the SIF's own
 * architecture; delete; the OCI-redirect push with re-push and oras:// interop.
 */

import { join } from "node:path";
import { assert, assertEquals, assertThrows, match } from "./_assert.ts";
import { requirement, runCli, spawnCli, tempHome } from "./_cli.ts";
import { buildSif, buildSingularityLike, fakeSquashfs, primaryPartition } from "./_sif_writer.ts";
import { FAST_ENV } from "./conformance.ts";
import { onPath, REGISTRY_BIN, startRegistry } from "./servers/registry.ts";
import { startSwift, swiftAvailable } from "./servers/swift.ts";
import { type LibraryFakeOptions, startLibraryFake } from "./servers/library_fake.ts";
import { parseLibraryRef } from "../clients/library/reference.ts";
import { versionAtLeast } from "../clients/library/_api.ts";
import { UsageError } from "../core/errors.ts";

const { ignore } = requirement(
  "docker-registry and Swift",
  onPath(REGISTRY_BIN) && swiftAvailable(),
);
const TOKEN = "library-extra-token-abcdef";
const opts = { sanitizeOps: false, sanitizeResources: false };
const MiB = 1024 * 1024;
/** A PUT of an uploaded image (not of the bucket or a seeded image). */
const NEW_OBJECT_PUT = /^PUT \/lib-\d+\/images\/i[0-9a-f]{8}\.sif\?/;

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

Deno.test("library API versions compare as Go's semver does", () => {
  assert(versionAtLeast("2.0.0-alpha.2", "2.0.0-alpha.1"));
  assert(versionAtLeast("2.0.0-alpha.10", "2.0.0-alpha.2"));
  assert(!versionAtLeast("2.0.0-alpha.1", "2.0.0-alpha.2"));
  assert(versionAtLeast("2.0.0", "2.0.0-alpha.2"));
  assert(versionAtLeast("v2.1.0", "2.0.0-alpha.1"));
  assert(!versionAtLeast("1.9.9", "2.0.0-alpha.1"));
  assert(!versionAtLeast(undefined, "2.0.0-alpha.1"));
});

/** A SIF of about `size` bytes whose primary partition is random (parts differ) and of `arch`. */
function bigSif(size: number, arch: string): Uint8Array {
  const data = fakeSquashfs(size);
  for (let i = 4096; i < data.length; i += 65536) {
    crypto.getRandomValues(data.subarray(i, Math.min(i + 65536, data.length)));
  }
  return buildSif({
    launchScript: "#!/usr/bin/env run-singularity\n",
    createdAt: 1_700_000_000,
    objects: [primaryPartition(arch, { data })],
  });
}

const sha256 = async (b: Uint8Array) =>
  Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(b))),
    (x) => x.toString(16).padStart(2, "0"),
  ).join("");

Deno.test({
  name: "library legacy transfers through the real S3 API of Swift",
  ignore,
  ...opts,
  async fn(t) {
    const swift = await startSwift();
    const reg = await startRegistry();
    const h = await tempHome();
    const hello = buildSingularityLike({ labels: { "org.test": "library" } });
    const fakes: { stop(): Promise<void> }[] = [];
    const fake = async (extra: Partial<LibraryFakeOptions> = {}) => {
      const lib = await startLibraryFake({
        token: TOKEN,
        registry: reg.url,
        namespace: "ns",
        images: { hello },
        ociRedirect: false,
        s3: swift.s3,
        bucket: `lib-${fakes.length}`,
        ...extra,
      });
      fakes.push(lib);
      const env = {
        ...h.env,
        ...FAST_ENV,
        SREGISTRY_LIBRARY_BASE: lib.url,
        SREGISTRY_LIBRARY_TOKEN: TOKEN,
        SREGISTRY_LIBRARY_MULTIPART_THRESHOLD: "1",
      };
      const cli = (args: string[], more: Record<string, string> = {}, stdin?: string) =>
        runCli(args, { env: { ...env, ...more }, stdin });
      return { lib, env, cli };
    };
    const file = async (name: string, bytes: Uint8Array) => {
      const p = join(h.dir, name);
      await Deno.writeFile(p, bytes);
      return p;
    };
    try {
      await t.step("pull: 302 to a presigned GET, no token sent there, hash verified", async () => {
        const { lib, cli } = await fake();
        const out = join(h.dir, "hello.sif");
        const r = await cli(["pull", "--no-cache", "--file", out, "library://lib/ns/hello:v1"]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(await Deno.readFile(out), hello);
        assertEquals(lib.leakedAuth, [], "the object store got an Authorization header");
        assert(lib.storeLog.some((l) => l.startsWith("GET /lib-0/images/img-hello.sif?")));
        // The image's hash as its tag (what search answers for an image) pulls it too.
        const byHash = join(h.dir, "by-hash.sif");
        const hashed = await cli([
          "pull",
          "--no-cache",
          "--file",
          byHash,
          `library://lib/ns/hello:sha256.${await sha256(hello)}`,
        ]);
        assertEquals(hashed.code, 0, hashed.stderr);
        assertEquals(await Deno.readFile(byHash), hello);
        const bad = await fake({ hashes: { hello: `sha256.${"0".repeat(64)}` } });
        const wrong = await bad.cli(["pull", "library://lib/ns/hello:v1"]);
        assertEquals(wrong.code, 6, wrong.stderr);
        const images = await bad.cli(["--json", "images"]);
        assert(!images.stdout.includes("hello"), images.stdout);
      });

      await t.step(
        "push a small file: entity, collection, container and image created, one PUT, v1 tags",
        async () => {
          const { lib, cli } = await fake();
          const src = await file("small.sif", hello);
          const r = await cli([
            "--json",
            "push",
            src,
            "--name",
            "library://me/tools/small:v1,latest",
          ]);
          assertEquals(r.code, 0, r.stderr);
          assertEquals(JSON.parse(r.stdout).digest, `sha256:${await sha256(hello)}`);
          for (
            const call of [
              "POST /v1/entities",
              "POST /v1/collections",
              "POST /v1/containers",
              "POST /v1/images",
            ]
          ) {
            assert(lib.calls.includes(call), `${call} missing: ${lib.calls}`);
          }
          assert(
            lib.calls.some((c) => /^PUT \/v2\/imagefile\/[^/]+\/_complete$/.test(c)),
            `${lib.calls}`,
          );
          assertEquals(lib.calls.filter((c) => c.startsWith("POST /v1/tags/")).length, 2);
          assertEquals(lib.partsPresigned, []);
          assertEquals(lib.storeLog.filter((l) => NEW_OBJECT_PUT.test(l)).length, 1);
          // The same file again: the library has it, nothing is uploaded.
          const again = await cli(["push", src, "--name", "library://me/tools/small:v2"]);
          assertEquals(again.code, 0, again.stderr);
          match(again.stderr, /already has this image/);
          assertEquals(lib.storeLog.filter((l) => NEW_OBJECT_PUT.test(l)).length, 1);
          const out = join(h.dir, "small-back.sif");
          const back = await cli([
            "pull",
            "--no-cache",
            "--file",
            out,
            "library://me/tools/small:latest",
          ]);
          assertEquals(back.code, 0, back.stderr);
          assertEquals(await Deno.readFile(out), hello);
          assertEquals(lib.leakedAuth, []);

          // delete: asks first (no answer: nothing), then names the other tags on the same image.
          const no = await cli(["delete", "library://me/tools/small:v1"]);
          assertEquals(no.code, 0, no.stderr);
          match(no.stderr, /Nothing deleted/);
          // Yes to the first question, no to the one naming the other tags: nothing goes.
          const half = await cli(["delete", "library://me/tools/small:v1"], {}, "y\nn\n");
          assertEquals(half.code, 0, half.stderr);
          match(half.stderr, /small:latest.*name the same image/);
          match(half.stderr, /Nothing deleted/);
          assert(!lib.calls.some((c) => c.startsWith("DELETE ")), `${lib.calls}`);
          const gone = await cli(["--json", "delete", "--force", "library://me/tools/small:v1"]);
          assertEquals(gone.code, 0, gone.stderr);
          const deleted: string[] = JSON.parse(gone.stdout).deleted;
          assertEquals(deleted.sort(), [
            "library://me/tools/small:latest",
            "library://me/tools/small:v1",
            "library://me/tools/small:v2",
          ]);
          match(gone.stderr, /Also deleting/);
          assert(lib.calls.some((c) => c.startsWith("DELETE /v1/images/me/tools/small:v1")));
          const after = await cli(["pull", "library://me/tools/small:latest"]);
          assertEquals(after.code, 3, after.stderr);
          const missing = await cli(["delete", "--force", "library://me/tools/small:v1"]);
          assertEquals(missing.code, 3, missing.stderr);
        },
      );

      await t.step(
        "push a large arm64 SIF: parallel S3 multipart parts, v2 arch tags",
        async () => {
          const { lib, cli } = await fake({ apiVersion: "2.0.0-alpha.2" });
          const bytes = bigSif(17 * MiB, "arm64");
          const src = await file("big.sif", bytes);
          const r = await cli(["push", src, "--name", "library://me/big/arm:v1"]);
          assertEquals(r.code, 0, r.stderr);
          assertEquals(lib.partsPresigned.toSorted(), [1, 2, 3, 4]);
          assert(lib.maxPartsInFlight > 1, `parts went one at a time (${lib.maxPartsInFlight})`);
          assert(
            lib.storeLog.some((l) =>
              /^POST \/lib-\d+\/images\/[^?]+\?uploads/.test(l) || /^POST .*uploads=/.test(l)
            ),
          );
          assert(
            lib.calls.filter((c) => c.startsWith("POST /v2/tags/")).length === 1,
            `${lib.calls}`,
          );
          // Tagged for the SIF's architecture, not this machine's.
          const host = await cli(["pull", "library://me/big/arm:v1"]);
          assertEquals(host.code, 3, host.stderr);
          const out = join(h.dir, "arm-back.sif");
          const back = await cli([
            "pull",
            "--no-cache",
            "--file",
            out,
            "--arch",
            "arm64",
            "library://me/big/arm:v1",
          ]);
          assertEquals(back.code, 0, back.stderr);
          assertEquals(await sha256(await Deno.readFile(out)), await sha256(new Uint8Array(bytes)));
          // Without --arch, record and delete find a tag with one architecture under it; with
          // --arch they ask for that one (none for amd64 here: exit 3).
          const rec = await cli(["--json", "record", "library://me/big/arm:v1"]);
          assertEquals(rec.code, 0, rec.stderr);
          assertEquals(JSON.parse(rec.stdout).platform, "linux/arm64");
          const recArm = await cli([
            "--json",
            "record",
            "--arch",
            "arm64",
            "library://me/big/arm:v1",
          ]);
          assertEquals(JSON.parse(recArm.stdout).platform, "linux/arm64", recArm.stderr);
          const recAmd = await cli([
            "record",
            "--platform",
            "linux/amd64",
            "library://me/big/arm:v1",
          ]);
          assertEquals(recAmd.code, 3, recAmd.stderr);
          const delAmd = await cli([
            "delete",
            "--force",
            "--arch",
            "amd64",
            "library://me/big/arm:v1",
          ]);
          assertEquals(delAmd.code, 3, delAmd.stderr);
          const del = await cli(
            ["--json", "delete", "--force", "--arch", "arm64", "library://me/big/arm:v1"],
          );
          assertEquals(del.code, 0, del.stderr);
          assert(lib.calls.some((c) => c === "DELETE /v1/images/me/big/arm:v1"), `${lib.calls}`);
          const gone = await cli(["pull", "--arch", "arm64", "library://me/big/arm:v1"]);
          assertEquals(gone.code, 3, gone.stderr);
        },
      );

      await t.step(
        "an interrupted multipart push resumes with the parts already stored",
        async () => {
          const { lib, env, cli } = await fake();
          const bytes = bigSif(16 * MiB, "amd64");
          const src = await file("resume.sif", bytes);
          lib.holdPartsAfter(1);
          const child = spawnCli(["push", src, "--name", "library://me/big/resume:v1"], {
            env: { ...env, SREGISTRY_LIBRARY_CONCURRENCY: "2" },
          });
          const deadline = Date.now() + 30_000;
          while (lib.held < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
          assertEquals(lib.held, 2, "the push never reached the held parts");
          child.kill("SIGINT");
          const first = await child.output();
          const stderr = new TextDecoder().decode(first.stderr);
          assertEquals(first.code, 130, stderr);
          match(stderr, /1 of 4 parts are stored: run the same push again/);
          lib.release();
          const before = lib.partsPresigned.length;
          const again = await cli(
            ["--debug", "push", src, "--name", "library://me/big/resume:v1"],
            {
              SREGISTRY_LIBRARY_CONCURRENCY: "2",
            },
          );
          assertEquals(again.code, 0, again.stderr);
          match(again.stderr, /1 of 4 parts are already stored/);
          const resent = lib.partsPresigned.slice(before);
          assertEquals(resent.toSorted(), [2, 3, 4], `resumed push sent parts ${resent}`);
          assertEquals(
            lib.storeLog.filter((l) => /uploads=/.test(l) && l.startsWith("POST")).length,
            1,
          );
          const out = join(h.dir, "resume-back.sif");
          const back = await cli([
            "pull",
            "--no-cache",
            "--file",
            out,
            "library://me/big/resume:v1",
          ]);
          assertEquals(back.code, 0, back.stderr);
          assertEquals(await sha256(await Deno.readFile(out)), await sha256(new Uint8Array(bytes)));
        },
      );

      await t.step(
        "a part the object store keeps refusing: exit 5, the next push sends only it",
        async () => {
          const { lib, cli } = await fake();
          const bytes = bigSif(11 * MiB, "amd64");
          const src = await file("flaky.sif", bytes);
          lib.failPart(2, 2);
          const first = await cli(["push", src, "--name", "library://me/big/flaky:v1"]);
          assertEquals(first.code, 5, first.stderr);
          match(first.stderr, /503.*2 of 3 parts are stored: run the same push again to resume/);
          const before = lib.partsPresigned.length;
          const again = await cli(["push", src, "--name", "library://me/big/flaky:v1"]);
          assertEquals(again.code, 0, again.stderr);
          const resent = lib.partsPresigned.slice(before);
          assertEquals(resent, [2], `resumed push sent parts ${resent}`);
          const out = join(h.dir, "flaky-back.sif");
          const back = await cli([
            "pull",
            "--no-cache",
            "--file",
            out,
            "library://me/big/flaky:v1",
          ]);
          assertEquals(back.code, 0, back.stderr);
          assertEquals(await sha256(await Deno.readFile(out)), await sha256(bytes));
        },
      );

      await t.step("two pushes at once into a new container both succeed", async () => {
        const { cli } = await fake();
        const a = await file("twin-a.sif", bigSif(1 * MiB, "amd64"));
        const b = await file("twin-b.sif", bigSif(1 * MiB, "amd64"));
        // Both look the entity, collection and container up before either creates them; the
        // loser of each creation gets 409 and uses the winner's.
        const [ra, rb] = await Promise.all([
          cli(["push", a, "--name", "library://twin/tools/img:a"]),
          cli(["push", b, "--name", "library://twin/tools/img:b"]),
        ]);
        assertEquals([ra.code, rb.code], [0, 0], `${ra.stderr}\n${rb.stderr}`);
        for (const tag of ["a", "b"]) {
          const out = join(h.dir, `twin-${tag}-back.sif`);
          const r = await cli([
            "pull",
            "--no-cache",
            "--file",
            out,
            `library://twin/tools/img:${tag}`,
          ]);
          assertEquals(r.code, 0, r.stderr);
        }
      });

      await t.step("one image pushed four times at once: every push succeeds", async () => {
        const { cli } = await fake();
        // Two pushes of one path (they share the saved upload: the second waits for the first) and
        // two of copies elsewhere (parallel CI jobs): one image record, one upload slot; a push
        // whose upload the library refuses finds the image uploaded and succeeds.
        const bytes = bigSif(1 * MiB + 7, "amd64");
        const src = await file("quad.sif", bytes);
        const copies = [src, src, await file("quad-1.sif", bytes), await file("quad-2.sif", bytes)];
        const rs = await Promise.all(
          copies.map((f, i) => cli(["push", f, "--name", `library://quad/tools/img:t${i}`])),
        );
        assertEquals(rs.map((r) => r.code), [0, 0, 0, 0], rs.map((r) => r.stderr).join("\n"));
        const out = join(h.dir, "quad-back.sif");
        const back = await cli([
          "pull",
          "--no-cache",
          "--file",
          out,
          "library://quad/tools/img:t3",
        ]);
        assertEquals(back.code, 0, back.stderr);
        assertEquals(await sha256(await Deno.readFile(out)), await sha256(bytes));
      });

      await t.step("a library without multipart uploads gets a large file in one PUT", async () => {
        const { lib, cli } = await fake({ multipart: false });
        const bytes = bigSif(6 * MiB, "amd64");
        const src = await file("one-piece.sif", bytes);
        const r = await cli(["push", src, "--name", "library://me/big/whole:v1"]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(lib.partsPresigned, []);
        assertEquals(lib.storeLog.filter((l) => NEW_OBJECT_PUT.test(l)).length, 1);
        const out = join(h.dir, "whole-back.sif");
        const back = await cli(["pull", "--no-cache", "--file", out, "library://me/big/whole:v1"]);
        assertEquals(back.code, 0, back.stderr);
        assertEquals(await sha256(await Deno.readFile(out)), await sha256(bytes));
      });

      await t.step(
        "the fake is strict: a wrong token, a bad hash, a Content-Type on v1 tags",
        async () => {
          const { lib } = await fake();
          const call = async (
            method: string,
            path: string,
            body?: unknown,
            headers: Record<string, string> = {},
          ) => {
            const r = await fetch(`${lib.url}/${path}`, {
              method,
              headers: { authorization: `Bearer ${TOKEN}`, ...headers },
              body: body === undefined ? undefined : JSON.stringify(body),
            });
            return { status: r.status, body: await r.json() };
          };
          const wrong = await fetch(`${lib.url}/v1/entities/lib`, {
            headers: { authorization: "Bearer nope" },
          });
          assertEquals(wrong.status, 401);
          assertEquals((await wrong.json()).error.code, 401);
          const c = (await call("GET", "v1/containers/lib/ns/hello")).body.data;
          const bad = await call("POST", "v1/images", { hash: "sha256:abc", container: c.id });
          assertEquals(bad.status, 400);
          match(bad.body.error.message, /sha256\.<hex>/);
          const typed = await call("POST", `v1/tags/${c.id}`, { Tag: "x", ImageID: "img-hello" }, {
            "content-type": "application/json",
          });
          assertEquals(typed.status, 415);
          const plain = await fetch(`${lib.url}/v1/tags/${c.id}`, {
            method: "POST",
            headers: { authorization: `Bearer ${TOKEN}` },
            body: new TextEncoder().encode(JSON.stringify({ Tag: "x", ImageID: "img-hello" })),
          });
          assertEquals(plain.status, 200, await plain.text());
        },
      );
    } finally {
      for (const f of fakes) await f.stop();
      await reg.stop();
      await swift.stop();
      await h.cleanup();
    }
  },
});

Deno.test({
  name:
    "library push via the OCI redirect: the SIF's arch, re-push uploads nothing, oras:// pulls it",
  ignore,
  ...opts,
  async fn() {
    const bytes = buildSingularityLike({ labels: { "org.test": "library" } }, { arch: "arm64" });
    const reg = await startRegistry();
    const lib = await startLibraryFake({
      token: TOKEN,
      registry: reg.url,
      namespace: "ns",
      images: {},
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
    try {
      const uri = "library://lib/ns/pushed:v1,latest";
      const first = await runCli(["push", file, "--name", uri], { env });
      assertEquals(first.code, 0, first.stderr);
      const again = await runCli(["--debug", "push", file, "--name", uri], { env });
      assertEquals(again.code, 0, again.stderr);
      assert(/not uploading it again/.test(again.stderr), again.stderr);
      const accept = "application/vnd.oci.image.index.v1+json";
      const index =
        await (await fetch(`${reg.url}/v2/ns/pushed/manifests/v1`, { headers: { accept } })).json();
      assertEquals(index.manifests[0].platform, { architecture: "arm64", os: "linux" });
      const manifest =
        await (await fetch(`${reg.url}/v2/ns/pushed/manifests/${index.manifests[0].digest}`, {
          headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
        })).json();
      // The media types SingularityCE writes and reads for a library SIF.
      assertEquals(manifest.mediaType, "application/vnd.oci.image.manifest.v1+json");
      assertEquals(manifest.config.mediaType, "application/vnd.sylabs.sif.config.v1+json");
      assertEquals(manifest.layers.length, 1);
      assertEquals(manifest.layers[0].mediaType, "application/vnd.sylabs.sif.layer.v1.sif");
      assertEquals(manifest.layers[0].digest, `sha256:${await sha256(bytes)}`);
      assertEquals(manifest.layers[0].size, bytes.length);
      const config = await (await fetch(`${reg.url}/v2/ns/pushed/blobs/${manifest.config.digest}`))
        .json();
      assertEquals(config.architecture, "arm64");
      assertEquals(config.signed, false);
      // --arch (or --platform) files the image under another architecture than its own.
      const other = await runCli(
        ["push", file, "--name", "library://lib/ns/other:v1", "--arch", "ppc64le"],
        { env },
      );
      assertEquals(other.code, 0, other.stderr);
      const otherIndex =
        await (await fetch(`${reg.url}/v2/ns/other/manifests/v1`, { headers: { accept } })).json();
      assertEquals(otherIndex.manifests[0].platform, { architecture: "ppc64le", os: "linux" });
      const both = await runCli(
        ["push", file, "--name", uri, "--arch", "arm64", "--platform", "linux/arm64"],
        { env },
      );
      assertEquals(both.code, 2, both.stderr);
      assert(/not both/.test(both.stderr), both.stderr);
      const out = join(h.dir, "via-oras.sif");
      const oras = await runCli(
        [
          "pull",
          "--no-cache",
          "--file",
          out,
          "--platform",
          "linux/arm64",
          `oras://${reg.host}/ns/pushed:latest`,
        ],
        { env },
      );
      assertEquals(oras.code, 0, oras.stderr);
      assertEquals(await Deno.readFile(out), bytes);
      if (onPath("skopeo")) {
        const sk = await new Deno.Command("skopeo", {
          args: ["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/ns/pushed:v1`],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert(sk.success, new TextDecoder().decode(sk.stderr));
        const raw = JSON.parse(new TextDecoder().decode(sk.stdout));
        assertEquals(raw.mediaType, "application/vnd.oci.image.index.v1+json");
        assertEquals(raw.manifests[0].platform, { architecture: "arm64", os: "linux" });
        const one = await new Deno.Command("skopeo", {
          args: [
            "inspect",
            "--raw",
            "--tls-verify=false",
            `docker://${reg.host}/ns/pushed@${raw.manifests[0].digest}`,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert(one.success, new TextDecoder().decode(one.stderr));
        const m = JSON.parse(new TextDecoder().decode(one.stdout));
        assertEquals(
          [m.config.mediaType, m.layers.map((l: { mediaType: string }) => l.mediaType)],
          ["application/vnd.sylabs.sif.config.v1+json", [
            "application/vnd.sylabs.sif.layer.v1.sif",
          ]],
        );
      }
    } finally {
      await lib.stop();
      await reg.stop();
      await h.cleanup();
    }
  },
});

Deno.test({
  name: "library: a plain-http base is refused unless it is loopback or NOHTTPS says so",
  ...opts,
  async fn() {
    const h = await tempHome();
    try {
      const env = {
        ...h.env,
        ...FAST_ENV,
        SREGISTRY_LIBRARY_BASE: "http://library.invalid",
        SREGISTRY_LIBRARY_TOKEN: TOKEN,
      };
      const r = await runCli(["pull", "library://a/b/c:v1"], { env });
      assertEquals(r.code, 2, r.stderr);
      match(r.stderr, /must be https/);
      assert(!r.stderr.includes(TOKEN));
      // Asked for (the setting, or --plain-http): it is tried, and the host does not resolve.
      for (const args of [["pull"], ["--plain-http", "pull"]]) {
        const more: Record<string, string> = args.length === 1
          ? { SREGISTRY_LIBRARY_NOHTTPS: "true" }
          : {};
        const t = await runCli([...args, "library://a/b/c:v1"], { env: { ...env, ...more } });
        assertEquals(t.code, 5, t.stderr);
      }
      const ftp = await runCli(["pull", "library://a/b/c:v1"], {
        env: { ...env, SREGISTRY_LIBRARY_BASE: "ftp://library.example.org" },
      });
      assertEquals(ftp.code, 2, ftp.stderr);
    } finally {
      await h.cleanup();
    }
  },
});

/** Put a blob into a registry repository (POST, then PUT ?digest=). */
async function putBlob(registry: string, repo: string, bytes: Uint8Array): Promise<string> {
  const digest = `sha256:${await sha256(bytes)}`;
  const start = await fetch(`${registry}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  await start.body?.cancel();
  const at = new URL(start.headers.get("location")!, registry);
  at.searchParams.set("digest", digest);
  const put = await fetch(at, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: bytes as Uint8Array<ArrayBuffer>,
  });
  await put.body?.cancel();
  assertEquals(put.status, 201, `blob ${digest}`);
  return digest;
}

Deno.test({
  name:
    "library: endpoints from config.prod.json; search of every kind; an OCI pull refuses a non-SIF config or two layers",
  ignore: requirement(REGISTRY_BIN, onPath(REGISTRY_BIN)).ignore,
  ...opts,
  async fn() {
    const bytes = buildSingularityLike({ labels: { "org.test": "discovery" } });
    const reg = await startRegistry();
    const lib = await startLibraryFake({
      token: TOKEN,
      registry: reg.url,
      namespace: "tools",
      images: { seeded: bytes },
    });
    // The remote the user names only publishes the endpoint map; the library API is elsewhere.
    let config: "ok" | "html" | "http" = "ok";
    const frontRequests: string[] = [];
    const front = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const p = new URL(req.url).pathname;
      frontRequests.push(`${req.method} ${p}`);
      if (p !== "/assets/config/config.prod.json") return new Response("no", { status: 404 });
      if (config === "html") return new Response("<html>login</html>", { status: 200 });
      if (config === "http") {
        return Response.json({ libraryAPI: { uri: "http://library.invalid" } });
      }
      return Response.json({
        libraryAPI: { uri: lib.url },
        tokenAPI: { uri: lib.url },
        keystoreAPI: { uri: "https://keys.invalid" },
      });
    });
    const h = await tempHome();
    const env = {
      ...h.env,
      ...FAST_ENV,
      SREGISTRY_LIBRARY_BASE: `http://127.0.0.1:${front.addr.port}`,
      SREGISTRY_LIBRARY_TOKEN: TOKEN,
    };
    const file = join(h.dir, "image.sif");
    await Deno.writeFile(file, bytes);
    try {
      const push = await runCli(
        ["--json", "push", file, "--name", "library://lib/tools/found:v1"],
        {
          env,
        },
      );
      assertEquals(push.code, 0, push.stderr);
      const out = join(h.dir, "back.sif");
      const pull = await runCli(
        ["--json", "pull", "--no-cache", "--file", out, "library://lib/tools/found:v1"],
        { env },
      );
      assertEquals(pull.code, 0, pull.stderr);
      assertEquals(await Deno.readFile(out), bytes);
      assertEquals(new Set(frontRequests), new Set(["GET /assets/config/config.prod.json"]));
      assert(lib.calls.some((c) => c.startsWith("GET /v1/oci-redirect")), `${lib.calls}`);

      // search: containers, collections, entities and images (by hash), each a usable URI.
      const hex = await sha256(bytes);
      const search = async (q: string) => {
        const r = await runCli(["--json", "search", q], { env });
        assertEquals(r.code, 0, r.stderr);
        return (JSON.parse(r.stdout) as { uri: string; details: { kind: string } }[])
          .map((x) => `${x.details.kind} ${x.uri}`);
      };
      assert((await search("library://found")).includes("container library://lib/tools/found"));
      assertEquals(await search(`library://sha256.${hex.slice(0, 12)}`), [
        `image library://lib/tools/seeded:sha256.${hex}`,
      ]);
      assert((await search("library://tools")).includes("collection library://lib/tools"));
      assert((await search("library://lib")).includes("entity library://lib"));
      // --endpoint: a remote other than SREGISTRY_LIBRARY_BASE, as a URL or a host.
      for (const endpoint of [lib.url, lib.host]) {
        const r = await runCli(["--json", "search", "--endpoint", endpoint, "library://found"], {
          env: { ...env, SREGISTRY_LIBRARY_BASE: "http://127.0.0.1:9" },
        });
        assertEquals(r.code, 0, r.stderr);
        assert(r.stdout.includes("library://lib/tools/found"), r.stdout);
      }
      assertEquals(parseLibraryRef(`library://lib/tools/seeded:sha256.${hex}`).tags, [
        `sha256.${hex}`,
      ]);

      // An OCI image that is not a library SIF: a wrong config type, or two layers.
      const sif = await putBlob(reg.url, "tools/notsif", bytes);
      const cfg = new TextEncoder().encode("{}");
      const manifests: [string, unknown][] = [
        ["notsif", {
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: {
            mediaType: "application/vnd.oci.image.config.v1+json",
            digest: await putBlob(reg.url, "tools/notsif", cfg),
            size: 2,
          },
          layers: [{
            mediaType: "application/vnd.sylabs.sif.layer.v1.sif",
            digest: sif,
            size: bytes.length,
          }],
        }],
        ["twolayers", {
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: {
            mediaType: "application/vnd.sylabs.sif.config.v1+json",
            digest: await putBlob(reg.url, "tools/twolayers", cfg),
            size: 2,
          },
          layers: [0, 1].map(() => ({
            mediaType: "application/vnd.sylabs.sif.layer.v1.sif",
            digest: sif,
            size: bytes.length,
          })),
        }],
      ];
      await putBlob(reg.url, "tools/twolayers", bytes);
      for (const [name, m] of manifests) {
        const r = await fetch(`${reg.url}/v2/tools/${name}/manifests/v1`, {
          method: "PUT",
          headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
          body: JSON.stringify(m),
        });
        await r.body?.cancel();
        assertEquals(r.status, 201, name);
      }
      const notSif = await runCli(["--json", "pull", "library://lib/tools/notsif:v1"], { env });
      assertEquals(notSif.code, 1, notSif.stderr);
      match(notSif.stderr, /not a SIF image: its config is application\/vnd\.oci\.image\.config/);
      const two = await runCli(["pull", "library://lib/tools/twolayers:v1"], { env });
      assertEquals(two.code, 1, two.stderr);
      match(two.stderr, /has 2 layers/);
      const images = await runCli(["--json", "images"], { env });
      assert(!/notsif|twolayers/.test(images.stdout), images.stdout);

      // An endpoint map naming a plain-http library API elsewhere: the token is not sent there.
      config = "http";
      const clear = await runCli(["pull", "library://lib/tools/found:v1"], { env });
      assertEquals(clear.code, 2, clear.stderr);
      match(clear.stderr, /not https: the token is not sent in clear text/);

      // A remote whose endpoint map is not JSON: one clear line, exit 5.
      config = "html";
      const bad = await runCli(["pull", "library://lib/tools/found:v1"], { env });
      assertEquals(bad.code, 5, bad.stderr);
      match(bad.stderr, /config\.prod\.json is not the library's endpoint map/);
    } finally {
      await front.shutdown();
      await lib.stop();
      await reg.stop();
      await h.cleanup();
    }
  },
});
