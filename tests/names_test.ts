import { assert, assertEquals, assertThrows } from "./_assert.ts";
import fc from "fast-check";
import { isAbsolute, relative, resolve } from "node:path";
import { UsageError } from "../core/errors.ts";
import { getRecipeTag, getUri, parseImageName, removeUri, storagePath } from "../core/names.ts";

// sregistry/tests/test_utils.py vectors.
for (const input of ["ubuntu", "ubuntu:latest", "library/ubuntu:latest"]) {
  Deno.test(`parseImageName: original vector ${input}`, () => {
    const n = parseImageName(input);
    assertEquals(n.image, "ubuntu");
    assertEquals(n.collection, "library");
    assertEquals(n.registry, undefined);
    assertEquals(n.version, undefined);
    assertEquals(n.tag, "latest");
    assertEquals(n.url, "library/ubuntu");
    assertEquals(n.uri, "library/ubuntu:latest");
    assertEquals(n.storage, "library/ubuntu:latest.sif");
    assertEquals(n.original, input);
  });
}

Deno.test("parseImageName: version vector", () => {
  const n = parseImageName("library/ubuntu:latest@version");
  assertEquals(n.version, "version");
  assertEquals(n.uri, "library/ubuntu:latest@version");
  assertEquals(n.storage, "library/ubuntu:latest@version.sif");
});

// The verified extra vectors of reference/sregistry-core.md §7.1:
// [input, registry, collection, image, tag, version, uri]
const VECTORS: [string, string | undefined, string, string, string, string | undefined, string][] =
  [
    [
      "vsoch/hello-world",
      undefined,
      "vsoch",
      "hello-world",
      "latest",
      undefined,
      "vsoch/hello-world:latest",
    ],
    [
      "vsoch/Hello-World:V1.0@ABC123",
      undefined,
      "vsoch",
      "hello-world",
      "v1.0",
      "abc123",
      "vsoch/hello-world:v1.0@abc123",
    ],
    [
      "docker.io/library/ubuntu:18.04",
      "docker.io",
      "library",
      "ubuntu",
      "18.04",
      undefined,
      "docker.io/library/ubuntu:18.04",
    ],
    [
      "quay.io/vanessa/sregistry-cli",
      "quay.io",
      "vanessa",
      "sregistry-cli",
      "latest",
      undefined,
      "quay.io/vanessa/sregistry-cli:latest",
    ],
    [
      "localhost:5000/myimage:tag",
      "localhost:5000",
      "library",
      "myimage",
      "tag",
      undefined,
      "localhost:5000/library/myimage:tag",
    ],
    [
      "registry.com/repo",
      "registry.com",
      "library",
      "repo",
      "latest",
      undefined,
      "registry.com/library/repo:latest",
    ],
    ["a/b/c/d:tag", "a", "b/c", "d", "tag", undefined, "a/b/c/d:tag"],
    ["myimage.sif", undefined, "library", "myimage", "latest", undefined, "library/myimage:latest"],
    [
      "vsoch/hello-world:latest.simg",
      undefined,
      "vsoch",
      "hello-world",
      "latest",
      undefined,
      "vsoch/hello-world:latest",
    ],
    [
      "foo@sha256:abcdef",
      undefined,
      "library",
      "foo",
      "latest",
      "sha256:abcdef",
      "library/foo:latest@sha256:abcdef",
    ],
    [
      "collection/name:tag@version.sif",
      undefined,
      "collection",
      "name",
      "tag",
      "version",
      "collection/name:tag@version",
    ],
    ["a:b/c:d", "a:b", "library", "c", "d", undefined, "a:b/library/c:d"],
    // Fixed: the original read these as image "localhost" with tag "5000/a/b".
    [
      "localhost:5000/a/b",
      "localhost:5000",
      "a",
      "b",
      "latest",
      undefined,
      "localhost:5000/a/b:latest",
    ],
    ["127.0.0.1:5000/a/b:1", "127.0.0.1:5000", "a", "b", "1", undefined, "127.0.0.1:5000/a/b:1"],
  ];

for (const [input, registry, collection, image, tag, version, uri] of VECTORS) {
  Deno.test(`parseImageName: ${input}`, () => {
    const n = parseImageName(input);
    assertEquals(
      [n.registry, n.collection, n.image, n.tag, n.version, n.uri],
      [registry, collection, image, tag, version, uri],
    );
  });
}

Deno.test("parseImageName: keywords", () => {
  assertEquals(
    parseImageName("Vsoch/Hello-World:V1", { lowercase: false }).uri,
    "Vsoch/Hello-World:V1",
  );
  assertEquals(parseImageName("vsoch/x:v1", { tag: "v2" }).tag, "v2");
  assertEquals(parseImageName("vsoch/x", { version: "XyZ" }).version, "xyz");
  assertEquals(
    parseImageName("https://myreg.org/api/vsoch/x", { base: "https://myreg.org/api" }).uri,
    "vsoch/x:latest",
  );
  assertEquals(parseImageName("vsoch/x@1", { ext: "img" }).storage, "vsoch/x:latest@1.img");
});

Deno.test("parseImageName: the extension is only stripped at the end (fixed)", () => {
  assertEquals(parseImageName("my.simgfile/thing").registry, "my.simgfile");
  assertEquals(parseImageName("hello.img.tar").image, "hello.img.tar");
});

for (
  const bad of [
    "",
    "   ",
    "/home/user/images/foo.simg",
    "a//b",
    "../x",
    "a/../b",
    "a/./b",
    "x:..",
    "x@../../etc",
    "a\\b",
    "a/b\u0000c",
    "vsoch/x:a/b",
    "vsoch/x@a/b",
    "..",
  ]
) {
  Deno.test(`parseImageName refuses ${JSON.stringify(bad)}`, () => {
    const err = assertThrows(() => parseImageName(bad), UsageError);
    assert(err.message.startsWith("Cannot parse image name "), err.message);
  });
}

Deno.test("storagePath: the original's layout, registry-qualified names fixed", () => {
  const S = "/s";
  assertEquals(
    storagePath(parseImageName("vsoch/hello-world"), S),
    "/s/vsoch/hello-world/latest.sif",
  );
  assertEquals(
    storagePath(parseImageName("vsoch/hello-world:v1@abc"), S),
    "/s/vsoch/hello-world/v1@abc.sif",
  );
  assertEquals(storagePath(parseImageName("ubuntu"), S), "/s/library/ubuntu/latest.sif");
  assertEquals(
    storagePath(parseImageName("docker.io/library/ubuntu:18.04"), S),
    "/s/docker.io/library/ubuntu/18.04.sif",
  );
  assertEquals(storagePath(parseImageName("a/b/c/d:tag"), S), "/s/a/b/c/d/tag.sif");
  assertEquals(
    storagePath(parseImageName("localhost:5000/myimage:tag"), S),
    "/s/localhost_5000/library/myimage/tag.sif",
  );
  assertEquals(
    storagePath(parseImageName("foo@sha256:ab"), S, "oci.tar"),
    "/s/library/foo/latest@sha256:ab.oci.tar",
  );
});

Deno.test("property: no accepted name yields a storage path outside the root", () => {
  const root = "/srv/storage";
  const chars = fc.constantFrom(
    ..."abcXYZ019.-_:@/\\%~ \t".split(""),
    "..",
    "./",
    "../",
    "//",
    "\u0000",
    "é",
  );
  fc.assert(
    fc.property(fc.array(chars, { maxLength: 24 }).map((a) => a.join("")), (name) => {
      let path: string;
      try {
        path = storagePath(parseImageName(name), root);
      } catch (e) {
        if (e instanceof UsageError) return true; // refused is fine
        throw e;
      }
      const rel = relative(resolve(root), path);
      return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) && path.startsWith(`${root}/`);
    }),
    { numRuns: 5000, seed: 42 },
  );
});

Deno.test("getUri: vectors, with the greedy-regex bug fixed", () => {
  assertEquals(getUri("docker://ubuntu"), "docker");
  assertEquals(getUri("shub://vanessa/x"), "hub");
  assertEquals(getUri("SHUB://x"), "hub");
  assertEquals(getUri("hub://x"), "hub");
  assertEquals(getUri("Google_Build://x"), "google-build");
  assertEquals(getUri("google-compute://x"), "google-compute");
  assertEquals(getUri("http://x"), "http");
  assertEquals(getUri("https://e.com/x.sif"), "https");
  assertEquals(getUri("notvalid://"), undefined);
  assertEquals(getUri("nowvalid://", false), "nowvalid");
  assertEquals(getUri("docker://a://b"), "docker");
  assertEquals(getUri("ubuntu"), undefined);
  assertEquals(getUri(undefined), undefined);
  assertEquals(getUri("s3://bucket/x"), "s3");
  assertEquals(getUri("registry://a/b"), "registry");
  assertEquals(getUri("globus://x"), "globus");
});

Deno.test("removeUri", () => {
  assertEquals(removeUri("docker://ubuntu"), "ubuntu");
  assertEquals(removeUri("shub://vanessa/singularity-images"), "vanessa/singularity-images");
  assertEquals(removeUri("vanessa/x"), "vanessa/x");
  assertEquals(removeUri("docker://a://b"), "a://b");
});

Deno.test("getRecipeTag", () => {
  assertEquals(getRecipeTag("Singularity"), "latest");
  assertEquals(getRecipeTag("/path/to/Singularity"), "latest");
  assertEquals(getRecipeTag("/path/to/Singularity.tag"), "tag");
  assertEquals(getRecipeTag("/path/to/Dockerfile"), undefined);
  assertEquals(getRecipeTag("Singularity.v1.2"), "v1.2");
  assertEquals(getRecipeTag("/opt/Singularity/recipe"), "/recipe");
  assertEquals(getRecipeTag("SingularityX"), "X");
});
