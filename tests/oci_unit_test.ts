import assert, { deepEqual, equal, match, rejects, throws } from "./_assert.ts";
import { join } from "node:path";
import { dockerConfigCredentials, runHelper } from "../clients/oci/auth.ts";
import { parseChallenges } from "../core/auth/challenge.ts";
import { openBlobCache } from "../clients/oci/blob_cache.ts";
import {
  hostPlatform,
  type ImageIndex,
  parsePlatform,
  selectPlatform,
} from "../clients/oci/manifest.ts";
import { isLoopback } from "../core/http.ts";
import { parseReference, registryScheme } from "../clients/oci/reference.ts";
import { signatureParts } from "../core/auth/sigv4.ts";
import { parseChunkSize } from "../clients/oras/mod.ts";
import { NotFoundError, UsageError } from "../core/errors.ts";

Deno.test("reference: docker defaults, registries, digests", () => {
  deepEqual(parseReference("ubuntu"), {
    registry: "index.docker.io",
    repository: "library/ubuntu",
    tag: "latest",
    digest: undefined,
    explicitRegistry: false,
  });
  equal(parseReference("docker://docker.io/vsoch/hello:1.0").repository, "vsoch/hello");
  equal(parseReference("docker.io/ubuntu").repository, "library/ubuntu");
  const q = parseReference("quay.io/biocontainers/samtools:1.9--h8571acd_11");
  equal(q.registry, "quay.io");
  equal(q.repository, "biocontainers/samtools");
  const l = parseReference("localhost:5000/x");
  equal(l.registry, "localhost:5000");
  equal(l.repository, "x");
  const d = "sha256:" + "a".repeat(64);
  const p = parseReference(`127.0.0.1:5000/a/b:tag@${d}`);
  deepEqual([p.registry, p.repository, p.tag, p.digest], ["127.0.0.1:5000", "a/b", "tag", d]);
  equal(parseReference(`x@${d}`).tag, undefined);
  equal(
    parseReference("tensorflow:17.11", { registry: "nvcr.io", namespace: "nvidia" }).repository,
    "nvidia/tensorflow",
  );
  throws(() => parseReference("Ubuntu"), UsageError);
  throws(() => parseReference("x@sha256:123"), UsageError);
  throws(() => parseReference(""), UsageError);
});

Deno.test("reference: http only on loopback unless NOHTTPS says otherwise", () => {
  assert(isLoopback("127.0.0.1:5000"));
  assert(isLoopback("127.5.6.7"));
  assert(isLoopback("localhost:80"));
  assert(isLoopback("[::1]:5000"));
  assert(!isLoopback("128.0.0.1:5000"));
  assert(!isLoopback("registry.example.org"));
  equal(registryScheme("127.0.0.1:5000", undefined), "http");
  equal(registryScheme("127.0.0.1:5000", "false"), "https");
  equal(registryScheme("quay.io", undefined), "https");
  equal(registryScheme("quay.io", "true"), "http");
});

Deno.test("challenge parser: docker, NGC without service, empty scope, several challenges", () => {
  deepEqual(
    parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
    ),
    [{
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/ubuntu:pull",
      },
    }],
  );
  deepEqual(
    parseChallenges('Bearer realm="https://nvcr.io/proxy_auth",scope="repository:nvidia/x:pull"')[0]
      .params,
    {
      realm: "https://nvcr.io/proxy_auth",
      scope: "repository:nvidia/x:pull",
    },
  );
  equal(parseChallenges('Bearer realm="https://nvcr.io/proxy_auth",scope=""')[0].params.scope, "");
  const two = parseChallenges(
    'Basic realm="basic-realm", Bearer scope="a b", realm=x, error="insufficient_scope"',
  );
  deepEqual(two.map((c) => c.scheme), ["basic", "bearer"]);
  deepEqual(two[1].params, { scope: "a b", realm: "x", error: "insufficient_scope" });
  equal(parseChallenges('Bearer realm="a\\"b"')[0].params.realm, 'a"b');
  deepEqual(parseChallenges(null), []);
});

Deno.test("platform selection", () => {
  const index: ImageIndex = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: "m",
        digest: "sha256:1",
        size: 1,
        platform: { os: "linux", architecture: "amd64" },
      },
      {
        mediaType: "m",
        digest: "sha256:2",
        size: 1,
        platform: { os: "linux", architecture: "arm", variant: "v7" },
      },
      {
        mediaType: "m",
        digest: "sha256:3",
        size: 1,
        platform: { os: "linux", architecture: "arm64" },
      },
      {
        mediaType: "m",
        digest: "sha256:4",
        size: 1,
        platform: { os: "unknown", architecture: "unknown" },
      },
    ],
  };
  equal(selectPlatform(index, parsePlatform("linux/amd64"), "x").digest, "sha256:1");
  equal(selectPlatform(index, parsePlatform("linux/arm64/v8"), "x").digest, "sha256:3");
  equal(selectPlatform(index, parsePlatform("linux/arm/v7"), "x").digest, "sha256:2");
  equal(selectPlatform(index, parsePlatform("aarch64"), "x").digest, "sha256:3");
  throws(() => selectPlatform(index, parsePlatform("linux/arm/v6"), "x"), NotFoundError);
  throws(
    () => selectPlatform(index, parsePlatform("linux/s390x"), "x"),
    /available: linux\/amd64, linux\/arm\/v7, linux\/arm64/,
  );
  throws(() => parsePlatform("linux//amd64"), UsageError);
  deepEqual(hostPlatform({ os: "linux", arch: "x86_64" }), { os: "linux", architecture: "amd64" });
  deepEqual(hostPlatform({ os: "darwin", arch: "aarch64" }), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
});

Deno.test("sigv4: AWS documented examples", () => {
  // AWS SigV4 test suite, get-vanilla.
  const vanilla = signatureParts(
    {
      method: "GET",
      url: "https://example.amazonaws.com/",
      headers: { "X-Amz-Date": "20150830T123600Z" },
      body: "",
    },
    { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
    "us-east-1",
    "service",
    new Date(Date.UTC(2015, 7, 30, 12, 36, 0)),
  );
  equal(vanilla.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  // S3 documentation example "GET Object" (Range header, x-amz-content-sha256).
  const s3 = signatureParts(
    {
      method: "GET",
      url: "https://examplebucket.s3.amazonaws.com/test.txt",
      headers: {
        Range: "bytes=0-9",
        "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-amz-date": "20130524T000000Z",
      },
      body: "",
    },
    {
      accessKeyId: "AKIAIOSFODNN7EXAMPLE",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    },
    "us-east-1",
    "s3",
    new Date(Date.UTC(2013, 4, 24)),
  );
  equal(s3.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  equal(s3.signedHeaders, "host;range;x-amz-content-sha256;x-amz-date");
});

Deno.test("docker config: auths, credHelpers, credsStore with a fake helper on PATH", async () => {
  const dir = await Deno.makeTempDir();
  const oldPath = Deno.env.get("PATH") ?? "";
  try {
    const helper = join(dir, "docker-credential-fake");
    await Deno.writeTextFile(
      helper,
      `#!/bin/sh\nread server\nif [ "$1" != get ]; then exit 2; fi\nif [ "$server" = "quay.io" ]; then echo '{"ServerURL":"quay.io","Username":"qu","Secret":"qs"}'; exit 0; fi\necho "credentials not found in native keychain"; exit 1\n`,
    );
    await Deno.chmod(helper, 0o755);
    Deno.env.set("PATH", `${dir}:${oldPath}`);
    const config = {
      auths: {
        "https://index.docker.io/v1/": { auth: btoa("hubuser:hubpass") },
        "r.example.org": { identitytoken: "tok123" },
      },
      credHelpers: { "quay.io": "fake" },
      credsStore: "fake",
    };
    deepEqual(await dockerConfigCredentials(config, "index.docker.io", runHelper), {
      username: "hubuser",
      password: "hubpass",
    });
    deepEqual(await dockerConfigCredentials(config, "r.example.org", runHelper), {
      username: "<token>",
      password: "tok123",
    });
    deepEqual(await dockerConfigCredentials(config, "quay.io", runHelper), {
      username: "qu",
      password: "qs",
    });
    // credsStore answers "not found" for other hosts: anonymous
    equal(await dockerConfigCredentials(config, "ghcr.io", runHelper), undefined);
    await rejects(
      dockerConfigCredentials({ credsStore: "missing-helper" }, "ghcr.io", runHelper),
      /cannot be run/,
    );
  } finally {
    Deno.env.set("PATH", oldPath);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("blob cache: two pullers of one blob, one fetch; stale lock taken over", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cache = openBlobCache(dir, { pollMs: 10, staleMs: 300, heartbeatMs: 50 });
    const digest = "sha256:" + "b".repeat(64);
    let fetches = 0;
    const fetch = async (dest: string) => {
      fetches++;
      await new Promise((r) => setTimeout(r, 100));
      await Deno.writeTextFile(dest, "x");
    };
    const [a, b] = await Promise.all([
      cache.ensure(digest, 1, fetch),
      cache.ensure(digest, 1, fetch),
    ]);
    equal(fetches, 1);
    deepEqual([a.source, b.source].sort(), ["fetched", "waited"]);
    equal((await cache.ensure(digest, 1, fetch)).source, "hit");
    // a crashed holder's lock (never touched) is taken over
    const d2 = "sha256:" + "c".repeat(64);
    await Deno.writeTextFile(`${cache.path(d2)}.lock`, "{}");
    const old = new Date(Date.now() - 10_000);
    await Deno.utime(`${cache.path(d2)}.lock`, old, old);
    equal((await cache.ensure(d2, 1, fetch)).source, "fetched");
    throws(() => cache.path("md5:abc"), UsageError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("oras chunk size parsing", () => {
  equal(parseChunkSize(undefined), 0);
  equal(parseChunkSize("1048576"), 1048576);
  equal(parseChunkSize("16M"), 16 * 1024 * 1024);
  equal(parseChunkSize("2k"), 2048);
  throws(() => parseChunkSize("lots"), UsageError);
  match(String(parseChunkSize("1G")), /^1073741824$/);
});
