import assert, {
  deepEqual as assertDeep,
  equal as assertEquals,
  match as assertMatch,
} from "./_assert.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { requirement, runCli, tempHome } from "./_cli.ts";
import { buildSingularityLike } from "./_sif_writer.ts";
import {
  digestOf,
  fakeSif,
  makeLayer,
  onPath,
  pushImage,
  pushIndex,
  REGISTRY_BIN,
  startRegistry,
  tokenFor,
} from "./servers/registry.ts";

const { ignore } = requirement(
  `${REGISTRY_BIN}, htpasswd and openssl`,
  onPath(REGISTRY_BIN) && onPath("htpasswd") && onPath("openssl"),
);

async function layers(n: number, tag: string): Promise<Uint8Array[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(await makeLayer({ [`file-${tag}-${i}.txt`]: `layer ${i} of ${tag}\n` }));
  }
  return out;
}

Deno.test(
  { name: "docker pull: anonymous registry, layers, metadata, cache reuse", ignore },
  async () => {
    const reg = await startRegistry();
    const home = await tempHome();
    try {
      const img = await pushImage({ url: reg.url }, "test/hello", "v1", await layers(3, "a"), {
        config: {
          Env: ["PATH=/usr/bin:/bin", "FOO=bar"],
          Entrypoint: ["/bin/echo"],
          Cmd: ["hi"],
          Labels: { maintainer: "tester", "org.example.version": "1.2" },
        },
      });
      const r = await runCli(["--json", "pull", `docker://${reg.host}/test/hello:v1`], {
        env: home.env,
      });
      assertEquals(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assertMatch(out.path, /\.oci\.tar$/);
      assert(existsSync(out.path));
      assertMatch(r.stderr, /oci-archive:/);
      // every blob is in the cache, content-addressed
      for (const d of [...img.layers, img.config]) {
        assert(
          existsSync(
            join(home.env.SINGULARITY_CACHEDIR, "sregistry", "blobs", "sha256", d.slice(7)),
          ),
          d,
        );
      }
      // the archive is a valid OCI layout tar naming the manifest
      const tar = await new Deno.Command("tar", { args: ["-tf", out.path], stdout: "piped" })
        .output();
      const list = new TextDecoder().decode(tar.stdout);
      assertMatch(list, /index\.json/);
      assertMatch(list, new RegExp(img.digest.slice(7)));
      // metadata recorded: inspect works without singularity
      const ins = await runCli(["--json", "inspect", `${reg.host}/test/hello:v1`], {
        env: home.env,
      });
      assertEquals(ins.code, 0, ins.stderr);
      assertMatch(ins.stdout, new RegExp(img.digest));
      assertMatch(ins.stdout, /org\.example\.version/);
      // One metadata shape: the environment as Singularity's script, not an OCI `env` list.
      const metrics = JSON.parse(ins.stdout).metrics;
      assertEquals(metrics.env, undefined);
      assertMatch(Object.values(metrics.environment).join(""), /export FOO="bar"/);
      // labels lists each label once, and no sregistry field (digest, mediaType...)
      const labels = JSON.parse(
        (await runCli(["--json", "labels"], { env: home.env })).stdout,
      ) as { key: string }[];
      assertEquals(labels.map((l) => l.key).sort().join(","), "maintainer,org.example.version");
      // a second pull to a file reuses the cache: stop the registry to prove it needs only the manifest
      const again = await runCli(
        [
          "pull",
          "--no-cache",
          "--file",
          join(home.dir, "out.oci.tar"),
          `docker://${reg.host}/test/hello@${img.digest}`,
        ],
        { env: { ...home.env, MESSAGELEVEL: "VERBOSE" } },
      );
      assertEquals(again.code, 0, again.stderr);
      assertMatch(again.stderr, /Fetched 0 bytes/);
      assert(existsSync(join(home.dir, "out.oci.tar")));
    } finally {
      await reg.stop();
      await home.cleanup();
    }
  },
);

Deno.test({
  name:
    "docker pull: multi-platform index, --platform, missing platform, missing repo, lying registry",
  ignore,
}, async () => {
  const reg = await startRegistry();
  const home = await tempHome();
  try {
    const idx = await pushIndex({ url: reg.url }, "test/multi", "v1", [
      { os: "linux", architecture: "amd64", layers: await layers(2, "amd64") },
      { os: "linux", architecture: "arm64", variant: "v8", layers: await layers(2, "arm64") },
    ]);
    const arm = await runCli([
      "--json",
      "pull",
      "--platform",
      "linux/arm64",
      `docker://${reg.host}/test/multi:v1`,
    ], {
      env: home.env,
    });
    assertEquals(arm.code, 0, arm.stderr);
    const meta = await runCli(["--json", "inspect", `${reg.host}/test/multi:v1`], {
      env: home.env,
    });
    assertMatch(meta.stdout, new RegExp(idx.images[1].digest));
    assertMatch(meta.stdout, /linux\/arm64/);
    // The other platform of the same name and tag is a second row, told apart by its platform.
    const amd = await runCli([
      "pull",
      "--platform",
      "linux/amd64",
      `docker://${reg.host}/test/multi:v1`,
    ], { env: home.env });
    assertEquals(amd.code, 0, amd.stderr);
    const rows = JSON.parse(
      (await runCli(["--json", "images", "multi"], { env: home.env })).stdout,
    );
    assertDeep(rows.map((r: { platform: string }) => r.platform).sort(), [
      "linux/amd64",
      "linux/arm64/v8",
    ]);
    const table = (await runCli(["images", "multi"], { env: home.env })).stdout;
    assertMatch(table, /\[platform\]/);
    assertMatch(table, /linux\/arm64\/v8/);
    // get picks this machine's platform.
    const host = Deno.build.arch === "aarch64" ? "linux/arm64/v8" : "linux/amd64";
    const got = JSON.parse(
      (await runCli(["--json", "get", `${reg.host}/test/multi:v1`], { env: home.env })).stdout,
    );
    assertEquals(got.platform, host);

    // record asks for one platform of the index too (--arch is short for linux/<arch>).
    const recHome = await tempHome();
    try {
      const rec = await runCli(
        ["--json", "record", "--arch", "arm64", `docker://${reg.host}/test/multi:v1`],
        { env: recHome.env },
      );
      assertEquals(rec.code, 0, rec.stderr);
      assertEquals(JSON.parse(rec.stdout).platform, "linux/arm64/v8");
      assertMatch(rec.stdout, new RegExp(idx.images[1].digest));
    } finally {
      await recHome.cleanup();
    }

    const none = await runCli([
      "pull",
      "--platform",
      "linux/s390x",
      `docker://${reg.host}/test/multi:v1`,
    ], { env: home.env });
    assertEquals(none.code, 3, none.stderr);
    assertMatch(none.stderr, /linux\/amd64, linux\/arm64\/v8/);

    const missing = await runCli(["pull", `docker://${reg.host}/test/nothere:v1`], {
      env: home.env,
    });
    assertEquals(missing.code, 3, missing.stderr);
    assertMatch(missing.stderr, /not found/i);

    // pinned digest that the registry does not serve under that name -> wrong digest: we ask
    // for a digest, a lying proxy answers other bytes
    const lie = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const u = new URL(req.url);
      const res = await fetch(`${reg.url}${u.pathname}${u.search}`, {
        headers: req.headers,
        method: req.method,
      });
      if (u.pathname.includes("/blobs/") && req.method === "GET") {
        const body = new Uint8Array(await res.arrayBuffer());
        body[body.length - 1] ^= 0xff; // flip one byte
        return new Response(body, { status: res.status, headers: res.headers });
      }
      return res;
    });
    try {
      const bad = await runCli([
        "pull",
        "--no-cache",
        "--file",
        join(home.dir, "bad.tar"),
        `docker://127.0.0.1:${lie.addr.port}/test/multi:v1`,
      ], {
        // A blob cache of its own: the pulls above cached these blobs already.
        env: { ...home.env, SINGULARITY_CACHEDIR: join(home.dir, "cache-lie") },
      });
      assertEquals(bad.code, 6, bad.stderr);
      assert(!existsSync(join(home.dir, "bad.tar")));
    } finally {
      await lie.shutdown();
    }
  } finally {
    await reg.stop();
    await home.cleanup();
  }
});

Deno.test(
  { name: "docker pull: htpasswd basic auth, wrong password, docker config.json", ignore },
  async () => {
    const reg = await startRegistry({ mode: "htpasswd" });
    const home = await tempHome();
    try {
      const auth = `Basic ${btoa("testuser:testpass")}`;
      await pushImage(
        { url: reg.url, authorization: auth },
        "test/private",
        "v1",
        await layers(2, "p"),
      );
      const anon = await runCli(["pull", `docker://${reg.host}/test/private:v1`], {
        env: home.env,
      });
      assertEquals(anon.code, 4, anon.stderr);
      const wrong = await runCli(["pull", `docker://${reg.host}/test/private:v1`], {
        env: {
          ...home.env,
          SREGISTRY_DOCKER_USERNAME: "testuser",
          SREGISTRY_DOCKER_PASSWORD: "nope-wrong",
        },
      });
      assertEquals(wrong.code, 4, wrong.stderr);
      assert(!wrong.stderr.includes("nope-wrong"));
      const ok = await runCli(["--debug", "pull", `docker://${reg.host}/test/private:v1`], {
        env: {
          ...home.env,
          SREGISTRY_DOCKER_USERNAME: "testuser",
          SREGISTRY_DOCKER_PASSWORD: "testpass",
        },
      });
      assertEquals(ok.code, 0, ok.stderr);
      assert(!ok.stderr.includes("testpass"), "password printed");
      assert(!ok.stderr.includes(btoa("testuser:testpass")), "basic header printed");
      // credentials from ~/.docker/config.json
      await Deno.mkdir(join(home.dir, ".docker"));
      await Deno.writeTextFile(
        join(home.dir, ".docker", "config.json"),
        JSON.stringify({ auths: { [reg.host]: { auth: btoa("testuser:testpass") } } }),
      );
      const cfg = await runCli(["pull", "--force", `docker://${reg.host}/test/private:v1`], {
        env: home.env,
      });
      assertEquals(cfg.code, 0, cfg.stderr);
    } finally {
      await reg.stop();
      await home.cleanup();
    }
  },
);

Deno.test({ name: "docker pull: token auth, refresh, expired tokens", ignore }, async () => {
  const reg = await startRegistry({ mode: "token" });
  const home = await tempHome();
  try {
    const tok = await tokenFor(
      reg.tokens!.realm,
      "testuser",
      "testpass",
      "repository:test/tok:pull,push",
    );
    await pushImage(
      { url: reg.url, authorization: `Bearer ${tok}` },
      "test/tok",
      "v1",
      await layers(4, "t"),
    );
    const env = {
      ...home.env,
      SREGISTRY_DOCKER_USERNAME: "testuser",
      SREGISTRY_DOCKER_PASSWORD: "testpass",
    };
    // tokens that live 1 s: with one worker and several blobs, the pull outlives them
    reg.tokens!.setExpiresIn(1);
    const before = reg.tokens!.issued;
    const ok = await runCli(["pull", `docker://${reg.host}/test/tok:v1`], {
      env: { ...env, SREGISTRY_WORKERS: "1" },
    });
    assertEquals(ok.code, 0, ok.stderr);
    assert(reg.tokens!.issued > before, "no token was issued");
    const wrong = await runCli(["pull", `docker://${reg.host}/test/tok:v1`], {
      env: { ...home.env, SREGISTRY_DOCKER_USERNAME: "testuser", SREGISTRY_DOCKER_PASSWORD: "bad" },
    });
    assertEquals(wrong.code, 4, wrong.stderr);
    // every token is already expired (beyond the registry's leeway): exit 4 after one refresh
    reg.tokens!.setExpiresIn(-3600);
    const expired = await runCli(["pull", "--force", `docker://${reg.host}/test/tok:v1`], { env });
    assertEquals(expired.code, 4, expired.stderr);
  } finally {
    await reg.stop();
    await home.cleanup();
  }
});

Deno.test(
  { name: "docker pull: TLS registry with a test CA; search catalog and tags", ignore },
  async () => {
    const reg = await startRegistry({ mode: "tls" });
    const home = await tempHome();
    const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(reg.caFile!)] });
    try {
      await pushImage({ url: reg.url, client }, "test/secure", "v1", await layers(1, "s"));
      await pushImage({ url: reg.url, client }, "test/secure", "v2", await layers(1, "s2"));
      const env = { ...home.env, SREGISTRY_DOCKER_NOHTTPS: "false" };
      const noCa = await runCli(["pull", `docker://${reg.host}/test/secure:v1`], { env });
      assertEquals(noCa.code, 5, noCa.stderr);
      const ok = await runCli(["pull", `docker://${reg.host}/test/secure:v1`], {
        env: { ...env, SREGISTRY_CA_FILE: reg.caFile! },
      });
      assertEquals(ok.code, 0, ok.stderr);
      const tags = await runCli(["--json", "search", `docker://${reg.host}/test/secure`], {
        env: { ...env, SREGISTRY_CA_FILE: reg.caFile! },
      });
      assertEquals(tags.code, 0, tags.stderr);
      assertMatch(tags.stdout, /test\/secure:v1/);
      assertMatch(tags.stdout, /test\/secure:v2/);
      const cat = await runCli(["search", `docker://${reg.host}`], {
        env: { ...env, SREGISTRY_CA_FILE: reg.caFile! },
      });
      assertEquals(cat.code, 0, cat.stderr);
      assertMatch(cat.stdout, /test\/secure/);
    } finally {
      client.close();
      await reg.stop();
      await home.cleanup();
    }
  },
);

Deno.test({
  name: "oras: push (monolithic and chunked), pull, delete, search",
  ignore,
}, async () => {
  const reg = await startRegistry();
  const home = await tempHome();
  try {
    const sif = join(home.dir, "test.sif");
    const bytes = fakeSif(3 * 1024 * 1024 + 17);
    await Deno.writeFile(sif, bytes);
    const push = await runCli(["--json", "push", "--name", `oras://${reg.host}/test/sif:v1`, sif], {
      env: home.env,
    });
    assertEquals(push.code, 0, push.stderr);
    const chunked = await runCli(["push", "--name", `oras://${reg.host}/test/sifc:v1`, sif], {
      env: { ...home.env, SREGISTRY_ORAS_CHUNK_SIZE: "1M" },
    });
    assertEquals(chunked.code, 0, chunked.stderr);
    // the manifest is the ORAS SIF layout
    const m = await (await fetch(`${reg.url}/v2/test/sifc/manifests/v1`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    })).json();
    assertEquals(m.layers[0].mediaType, "application/vnd.sylabs.sif.layer.v1.sif");
    assertEquals(m.config.mediaType, "application/vnd.sylabs.sif.config.v1+json");
    assertEquals(m.layers[0].digest, digestOf(bytes));

    const pull = await runCli(["--json", "pull", `oras://${reg.host}/test/sifc:v1`], {
      env: home.env,
    });
    assertEquals(pull.code, 0, pull.stderr);
    const path = JSON.parse(pull.stdout).path;
    assertEquals(digestOf(await Deno.readFile(path)), digestOf(bytes));

    const s = await runCli(["search", `oras://${reg.host}/test/sif`], { env: home.env });
    assertEquals(s.code, 0, s.stderr);
    assertMatch(s.stdout, /test\/sif:v1/);

    const del = await runCli(["delete", "--force", `oras://${reg.host}/test/sif:v1`], {
      env: home.env,
    });
    assertEquals(del.code, 0, del.stderr);
    const gone = await runCli(["pull", `oras://${reg.host}/test/sif:v1`], { env: home.env });
    assertEquals(gone.code, 3, gone.stderr);
  } finally {
    await reg.stop();
    await home.cleanup();
  }
});

Deno.test(
  { name: "docker pull: with singularity on PATH, the OCI layout is built into a SIF", ignore },
  async () => {
    const reg = await startRegistry();
    const home = await tempHome();
    try {
      await pushImage({ url: reg.url }, "test/sif", "v1", await layers(2, "s"), {
        config: { Labels: { "org.example.from": "oci-config" } },
      });
      // A stand-in for singularity: checks it was given a real OCI layout, then writes a SIF.
      const bin = join(home.dir, "bin");
      await Deno.mkdir(bin);
      const sif = join(home.dir, "built.sif");
      await Deno.writeFile(sif, buildSingularityLike({ labels: { "org.example.from": "sif" } }));
      const log = join(home.dir, "singularity.log");
      await Deno.writeTextFile(
        join(bin, "singularity"),
        `#!/bin/sh
echo "$@" > "${log}"
[ "$1" = build ] || exit 2
out="$3"; src="$4"; layout="\${src#oci:}"; layout="\${layout%:*}"
[ -f "$layout/oci-layout" ] && [ -f "$layout/index.json" ] || { echo "not an OCI layout: $layout" >&2; exit 1; }
manifest=$(sed -E 's/.*"digest":"sha256:([0-9a-f]+)".*/\\1/' "$layout/index.json")
[ -f "$layout/blobs/sha256/$manifest" ] || { echo "manifest blob missing" >&2; exit 1; }
cp "${sif}" "$out"
`,
      );
      await Deno.chmod(join(bin, "singularity"), 0o755);
      const env = { ...home.env, PATH: `${bin}:${Deno.env.get("PATH")}` };
      const r = await runCli(["--json", "pull", `docker://${reg.host}/test/sif:v1`], { env });
      assertEquals(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assertMatch(out.path, /\.sif$/);
      assertMatch(await Deno.readTextFile(log), /^build --force .* oci:.*:v1/);
      const ins = JSON.parse(
        (await runCli(["--json", "inspect", `${reg.host}/test/sif:v1`], { env })).stdout,
      );
      // The OCI digest and the SIF's own metadata are both recorded.
      assertMatch(ins.metrics.digest, /^sha256:/);
      assertEquals(ins.metrics.sif.format, "sif");
    } finally {
      await reg.stop();
      await home.cleanup();
    }
  },
);

Deno.test({
  name: "docker pull: by digest, --no-cache names, record without a download",
  ignore,
}, async () => {
  const reg = await startRegistry();
  const home = await tempHome();
  try {
    const img = await pushImage({ url: reg.url }, "test/pin", "v1", await layers(1, "pin"), {
      config: { Labels: { purpose: "pinning" } },
    });
    // A pull by digest is catalogued with that digest as its version, not as :latest.
    const r = await runCli(["--json", "pull", `docker://${reg.host}/test/pin@${img.digest}`], {
      env: home.env,
    });
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assertEquals(out.uri, `${reg.host}/test/pin:digest@${img.digest}`);
    assertEquals(out.format, "oci-archive");
    const latest = await runCli(["get", `${reg.host}/test/pin:latest`], { env: home.env });
    assertEquals(latest.code, 3, latest.stderr);
    const byDigest = await runCli(["get", `${reg.host}/test/pin@${img.digest}`], {
      env: home.env,
    });
    assertDeep([byDigest.code, byDigest.stdout.trim()], [0, out.path]);

    // --no-cache writes <image>_<tag>.<real extension> in the current folder; exit 2 when it exists.
    const cwd = join(home.dir, "here");
    await Deno.mkdir(cwd);
    const nc = await runCli(["pull", "--no-cache", `docker://${reg.host}/test/pin:v1`], {
      env: home.env,
      cwd,
    });
    assertEquals(nc.code, 0, nc.stderr);
    assertEquals(nc.stdout.trim(), join(cwd, "pin_v1.oci.tar"));
    const again = await runCli(["pull", "--no-cache", `docker://${reg.host}/test/pin:v1`], {
      env: home.env,
      cwd,
    });
    assertEquals(again.code, 2, again.stderr);
    assertDeep([...Deno.readDirSync(cwd)].map((e) => e.name), ["pin_v1.oci.tar"]);

    // record asks the registry for metadata only and stores a row without a file.
    const rec = await runCli(["--json", "record", `docker://${reg.host}/test/pin:v1`], {
      env: home.env,
    });
    assertEquals(rec.code, 0, rec.stderr);
    const row = JSON.parse(rec.stdout);
    assertDeep([row.image, row.client, row.platform], [null, "docker", "linux/amd64"]);
    assertEquals(row.metrics.labels.purpose, "pinning");
    assertMatch(row.url, /\/v2\/test\/pin\/manifests\//);
    const get = await runCli(["get", row.uri], { env: home.env });
    assertEquals(get.code, 3, get.stderr);
  } finally {
    await reg.stop();
    await home.cleanup();
  }
});

Deno.test(
  { name: "fixed: docker pull of an ORAS SIF artifact stores the SIF", ignore },
  async () => {
    const reg = await startRegistry();
    const home = await tempHome();
    try {
      const sif = join(home.dir, "art.sif");
      const bytes = fakeSif(64 * 1024 + 5);
      await Deno.writeFile(sif, bytes);
      const push = await runCli(["push", "--name", `oras://${reg.host}/test/art:1.0`, sif], {
        env: home.env,
      });
      assertEquals(push.code, 0, push.stderr);
      const r = await runCli(["--json", "pull", `docker://${reg.host}/test/art:1.0`], {
        env: home.env,
      });
      assertEquals(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assertEquals(out.format, "sif");
      assertMatch(out.path, /\.sif$/);
      assertEquals(digestOf(await Deno.readFile(out.path)), digestOf(bytes));
      assertMatch(r.stderr, /ORAS SIF artifact/);
      assertMatch(r.stderr, /oras:\/\//);
    } finally {
      await reg.stop();
      await home.cleanup();
    }
  },
);
