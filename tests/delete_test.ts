import { assert, assertEquals, assertIncludes } from "./_assert.ts";
import { main } from "../main.ts";
import { textInput } from "../cli/prompt.ts";
import { memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";
import { requirement, runCli, tempHome } from "./_cli.ts";
import {
  fakeSif,
  onPath,
  pushBlob,
  pushManifest,
  REGISTRY_BIN,
  startRegistry,
} from "./servers/registry.ts";

const { ignore } = requirement(REGISTRY_BIN, onPath(REGISTRY_BIN));

const OCI = "application/vnd.oci.image.manifest.v1+json";

/** Push one SIF artifact under several tags (the same manifest, so the same digest). */
async function pushTags(url: string, repo: string, tags: string[]): Promise<void> {
  const t = { url };
  const layer = await pushBlob(t, repo, fakeSif(2048));
  const config = await pushBlob(t, repo, new TextEncoder().encode("{}"));
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI,
    config: { mediaType: "application/vnd.sylabs.sif.config.v1+json", ...config },
    layers: [{ mediaType: "application/vnd.sylabs.sif.layer.v1.sif", ...layer }],
  };
  for (const tag of tags) await pushManifest(t, repo, tag, manifest, OCI);
}

async function tagsOf(url: string, repo: string): Promise<string[]> {
  const res = await fetch(`${url}/v2/${repo}/tags/list`);
  if (res.status === 404) {
    await res.body?.cancel();
    return [];
  }
  return ((await res.json()).tags ?? []).sort();
}

Deno.test({
  name: "oras delete: one tag of a shared manifest never takes the others silently",
  ignore,
}, async () => {
  const reg = await startRegistry();
  const home = await tempHome();
  try {
    const env = home.env;
    await pushTags(reg.url, "demo/sif", ["1.0", "2.0"]);
    const uri = `oras://${reg.host}/demo/sif:2.0`;

    // no at the first question: nothing asked of the registry, exit 0
    const no = await runCli(["delete", uri], { env, stdin: "n\n" });
    assertEquals(no.code, 0, no.stderr);
    assertIncludes(no.stderr, "Nothing deleted");
    assertEquals(await tagsOf(reg.url, "demo/sif"), ["1.0", "2.0"]);

    // yes, then: the registry (distribution 2.8) cannot untag, so the other tag is named and asked
    const keep = await runCli(["delete", uri], { env, stdin: "y\nn\n" });
    assertEquals(keep.code, 0, keep.stderr);
    assertIncludes(keep.stderr, "cannot delete the tag 2.0 alone");
    assertIncludes(keep.stderr, "also deletes :1.0. Delete them all? [y/N]");
    assertIncludes(keep.stderr, "Nothing deleted");
    assertEquals(await tagsOf(reg.url, "demo/sif"), ["1.0", "2.0"]);

    // without a terminal or answers, the second question also defaults to no
    const silent = await runCli(["delete", uri], { env, stdin: "y\n" });
    assertEquals(silent.code, 0, silent.stderr);
    assertEquals(await tagsOf(reg.url, "demo/sif"), ["1.0", "2.0"]);

    // yes twice: both tags go, and both are reported
    const all = await runCli(["--json", "delete", uri], { env, stdin: "y\ny\n" });
    assertEquals(all.code, 0, all.stderr);
    assertEquals(JSON.parse(all.stdout).deleted, [uri, `oras://${reg.host}/demo/sif:1.0`]);
    assertEquals(await tagsOf(reg.url, "demo/sif"), []);

    // --force: no question, but a warning says which other tags went with it
    await pushTags(reg.url, "demo/forced", ["a", "b", "c"]);
    const forced = await runCli(["delete", "--force", `oras://${reg.host}/demo/forced:b`], {
      env,
    });
    assertEquals(forced.code, 0, forced.stderr);
    assert(!forced.stderr.includes("[y/N]"), forced.stderr);
    assertIncludes(forced.stderr, "WARNING");
    assertIncludes(forced.stderr, "also deletes :a, :c");
    assertEquals(await tagsOf(reg.url, "demo/forced"), []);

    // a manifest with one tag is deleted after the first question only; others stay
    await pushTags(reg.url, "demo/one", ["x"]);
    await pushTags(reg.url, "demo/two", ["y"]);
    const one = await runCli(["delete", `oras://${reg.host}/demo/one:x`], { env, stdin: "y\n" });
    assertEquals(one.code, 0, one.stderr);
    assertEquals((one.stderr.match(/\[y\/N\]/g) ?? []).length, 1, one.stderr);
    assertEquals(await tagsOf(reg.url, "demo/one"), []);
    assertEquals(await tagsOf(reg.url, "demo/two"), ["y"]);

    // a missing tag is exit 3
    const missing = await runCli(["delete", "--force", `oras://${reg.host}/demo/two:nope`], {
      env,
    });
    assertEquals(missing.code, 3, missing.stderr);
  } finally {
    await reg.stop();
    await home.cleanup();
  }
});

/**
 * A strict fake of the OCI distribution 1.1 endpoints delete uses, for a registry that can delete a
 * tag alone (the real one on this machine cannot). `untagDeletesManifest` makes it behave badly.
 */
function fakeRegistry(tags: Map<string, string>, untagDeletesManifest = false): typeof fetch {
  return (input, init) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    const m = /^\/v2\/demo\/sif\/(manifests|tags)\/(.+)$/.exec(url.pathname);
    if (url.pathname === "/v2/") return Promise.resolve(new Response("{}"));
    if (m?.[1] === "tags" && req.method === "GET") {
      return Promise.resolve(Response.json({ name: "demo/sif", tags: [...tags.keys()] }));
    }
    if (m?.[1] === "manifests") {
      const ref = m[2];
      const digest = ref.startsWith("sha256:")
        ? ([...tags.values()].includes(ref) ? ref : undefined)
        : tags.get(ref);
      if (!digest) return Promise.resolve(new Response(null, { status: 404 }));
      if (req.method === "HEAD") {
        return Promise.resolve(
          new Response(null, { headers: { "docker-content-digest": digest } }),
        );
      }
      if (req.method === "DELETE") {
        const byDigest = ref.startsWith("sha256:") || untagDeletesManifest;
        for (const [t, d] of [...tags]) if (byDigest ? d === digest : t === ref) tags.delete(t);
        return Promise.resolve(new Response(null, { status: 202 }));
      }
    }
    return Promise.resolve(new Response(null, { status: 405 }));
  };
}

Deno.test("oras delete: a registry that can untag deletes the tag alone, and a liar is named", async () => {
  const home = await tempHome();
  try {
    const d = `sha256:${"a".repeat(64)}`;
    for (const liar of [false, true]) {
      const tags = new Map([["1.0", d], ["2.0", d], ["3.0", `sha256:${"b".repeat(64)}`]]);
      const stdout = memorySink();
      const stderr = memorySink();
      const code = await main(["--json", "delete", "oras://127.0.0.1:5999/demo/sif:2.0"], {
        env: envFrom(home.env),
        fetch: fakeRegistry(tags, liar),
        stdout,
        stderr,
        stdin: textInput("y\n"),
      });
      assertEquals(code, 0, stderr.text());
      // one question only: the other tag was never at risk (or the registry took it anyway)
      assertEquals((stderr.text().match(/\[y\/N\]/g) ?? []).length, 1, stderr.text());
      if (!liar) {
        assertEquals([...tags.keys()], ["1.0", "3.0"]);
        assertEquals(JSON.parse(stdout.text()).deleted, ["oras://127.0.0.1:5999/demo/sif:2.0"]);
      } else {
        assertEquals([...tags.keys()], ["3.0"]);
        assertIncludes(stderr.text(), "also deleted :1.0");
      }
    }
  } finally {
    await home.cleanup();
  }
});
