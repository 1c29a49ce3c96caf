import assert, { deepStrictEqual as assertEquals } from "./_assert.ts";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { type CliResult, runCli, tempHome } from "./_cli.ts";

interface Home {
  dir: string;
  env: Record<string, string>;
  cli(...args: string[]): Promise<CliResult>;
  file(name: string, content: string): Promise<string>;
}

async function withHome(fn: (h: Home) => Promise<void>): Promise<void> {
  const home = await tempHome();
  const env = home.env;
  const h: Home = {
    dir: home.dir,
    env,
    cli: (...args) => runCli(args, { env, cwd: home.dir }),
    async file(name, content) {
      const p = join(home.dir, name);
      await Deno.writeTextFile(p, content);
      return p;
    },
  };
  try {
    await fn(h);
  } finally {
    await home.cleanup();
  }
}

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

async function sha(text: string): Promise<string> {
  const buf = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("add, images, get and inspect work end to end, with --json", async () => {
  await withHome(async (h) => {
    const src = await h.file("hello.sif", "hello image");
    const hex = await sha("hello image");
    const storage = h.env.SREGISTRY_STORAGE;
    const added = ok(await h.cli("add", src, "--name", "vsoch/Hello-World:v1"));
    const path = join(storage, "vsoch", "hello-world", `v1@${hex}.sif`);
    assertEquals(added.stdout, `${path}\n`);
    assert(added.stderr.includes(`[container][new] vsoch/hello-world:v1@${hex}`), added.stderr);
    await assert.rejects(() => Deno.stat(src));

    const images = ok(await h.cli("images"));
    const lines = images.stdout.trimEnd().split("\n");
    assertEquals(lines[0], "Containers:");
    assert(/^1\s+\w+ \d{2}, \d{4}\s+\[local\]\s+vsoch\/hello-world:v1@/.test(lines[2]), lines[2]);
    assertEquals(ok(await h.cli("images", "nomatch")).stdout, "");

    const json = JSON.parse(ok(await h.cli("images", "--json")).stdout);
    assertEquals(json.length, 1);
    assertEquals([json[0].uri, json[0].image, json[0].size], [
      `vsoch/hello-world:v1@${hex}`,
      path,
      11,
    ]);

    // Fixed: without a tag, other tags are found (the original only looked for `latest`).
    assertEquals(ok(await h.cli("get", "vsoch/hello-world")).stdout, `${path}\n`);
    const got = JSON.parse(ok(await h.cli("--json", "get", "vsoch/hello-world:v1")).stdout);
    assertEquals(got.digest, `sha256:${hex}`);

    const inspected = JSON.parse(ok(await h.cli("inspect", "vsoch/hello-world:v1")).stdout);
    for (
      const k of [
        "client",
        "collection",
        "collection_id",
        "created_at",
        "id",
        "image",
        "metrics",
        "name",
        "tag",
        "uri",
        "url",
        "version",
        "size",
        "digest",
      ]
    ) {
      assert(k in inspected, `inspect lacks ${k}`);
    }
    assertEquals(inspected.url, null); // fixed: no pseudo-URL
    assertEquals(inspected.metrics.type, "container");
  });
});

Deno.test("usage and not-found exit codes", async () => {
  await withHome(async (h) => {
    const src = await h.file("x.sif", "x");
    const noName = await h.cli("add", src);
    assertEquals(noName.code, 2);
    assert(noName.stderr.startsWith("ERROR Missing --name"), noName.stderr);
    assertEquals((await h.cli("add", join(h.dir, "missing.sif"), "--name", "a/b")).code, 3);
    for (
      const args of [["get", "a/b"], ["inspect", "a/b"], ["rm", "a/b"], ["mv", "a/b", h.dir], [
        "rename",
        "a/b",
        "c/d",
      ]]
    ) {
      const r = await h.cli(...args);
      assertEquals(r.code, 3, `${args.join(" ")}: ${r.stderr}`);
      assertEquals(r.stdout, "");
      assert(r.stderr.includes('"a/b" is not in the catalog'), r.stderr);
    }
    const j = await h.cli("rm", "a/b", "--json");
    assertEquals(j.code, 3);
    assertEquals(JSON.parse(j.stderr).error.kind, "not_found");
    assertEquals((await h.cli("record", "a/b", "--metadata", "{nope")).code, 2);
    assertEquals((await h.cli("inspect")).code, 2);
  });
});

Deno.test("record, labels, rename, mv and rm", async () => {
  await withHome(async (h) => {
    const meta = await h.file(
      "meta.json",
      JSON.stringify({ MAINTAINER: "Vanessa", labels: { "org.version": "1.0" } }),
    );
    const rec = ok(
      await h.cli(
        "record",
        "docker://alpine:3.20",
        "--url",
        "https://x.org/a.sif",
        "--metadata",
        `@${meta}`,
      ),
    );
    assertEquals(rec.stdout, "library/alpine:3.20\n");
    const recJson = JSON.parse(ok(await h.cli("inspect", "--json", "library/alpine:3.20")).stdout);
    assertEquals([recJson.client, recJson.url, recJson.image], [
      "docker",
      "https://x.org/a.sif",
      null,
    ]);
    // Fixed: get of a record without a file is exit 3 naming its url, not exit 0.
    const fileless = await h.cli("get", "alpine");
    assertEquals([fileless.code, fileless.stdout], [3, ""]);
    assert(fileless.stderr.includes("is a record without a file"), fileless.stderr);
    assert(fileless.stderr.includes("https://x.org/a.sif"), fileless.stderr);

    const labels = ok(await h.cli("labels", "-k", "maintainer"));
    assert(/MAINTAINER\s+Vanessa\s+library\/alpine:3\.20/.test(labels.stdout), labels.stdout);
    const lj = JSON.parse(ok(await h.cli("labels", "--value", "1.0", "--json")).stdout);
    assertEquals(lj.map((x: { key: string }) => x.key), ["org.version"]);
    // Fixed: every label once, and none of sregistry's own fields (uri, tag, type...).
    const all = JSON.parse(ok(await h.cli("labels", "--json")).stdout);
    assertEquals(all.map((x: { key: string }) => x.key).sort(), ["MAINTAINER", "org.version"]);

    // Fixed: rm of a record without a file succeeds.
    const rm = ok(await h.cli("rm", "alpine:3.20"));
    assertEquals(rm.stdout, "library/alpine:3.20\n");
    assertEquals(ok(await h.cli("images", "--json")).stdout.trim(), "[]");

    const src = await h.file("o.sif", "other");
    const hex = await sha("other");
    ok(await h.cli("add", "--copy", src, "--name", "vsoch/other:latest"));
    await Deno.stat(src); // --copy kept it
    const renamed = ok(await h.cli("rename", "vsoch/other", "tacos.simg"));
    const storage = h.env.SREGISTRY_STORAGE;
    assertEquals(renamed.stdout, `${join(storage, "library", "tacos", `latest@${hex}.sif`)}\n`);
    await assert.rejects(() => Deno.stat(join(storage, "vsoch")));

    const out = join(h.dir, "out");
    await Deno.mkdir(out);
    const moved = ok(await h.cli("mv", "library/tacos", out));
    assertEquals(moved.stdout, `${join(out, `latest@${hex}.sif`)}\n`);
    assert(moved.stderr.includes("[move]"), moved.stderr);
    const removed = ok(await h.cli("rm", "library/tacos"));
    assertEquals(removed.stdout, `${join(out, `latest@${hex}.sif`)}\n`);
    assertEquals([...Deno.readDirSync(out)].length, 0);
  });
});

Deno.test("eight concurrent `sregistry add` processes all succeed and leave a consistent catalog", async () => {
  await withHome(async (h) => {
    const files = await Promise.all(
      Array.from({ length: 8 }, (_, i) => h.file(`img${i}.sif`, `image number ${i}`)),
    );
    const results = await Promise.all(
      files.map((f, i) => h.cli("add", f, "--name", `race/img${i}:t`)),
    );
    for (const r of results) ok(r);
    const db = new DatabaseSync(join(h.env.SREGISTRY_DATABASE, "sregistry.db"));
    try {
      assertEquals({ ...db.prepare("PRAGMA integrity_check").get() }, { integrity_check: "ok" });
      const colls = db.prepare("SELECT name FROM collection").all().map((r) => r.name);
      assertEquals(colls, ["race"]);
      const rows = db.prepare("SELECT name, image, collection_id FROM container ORDER BY name")
        .all();
      assertEquals(rows.map((r) => r.name), Array.from({ length: 8 }, (_, i) => `img${i}`));
      for (const r of rows) {
        assertEquals(r.collection_id, 1);
        await Deno.stat(String(r.image));
      }
    } finally {
      db.close();
    }
    const stored: string[] = [];
    for (const d of Deno.readDirSync(join(h.env.SREGISTRY_STORAGE, "race"))) {
      for (const f of Deno.readDirSync(join(h.env.SREGISTRY_STORAGE, "race", d.name))) {
        stored.push(f.name);
      }
    }
    assertEquals(stored.length, 8);
    assert(stored.every((n) => n.startsWith("t@") && n.endsWith(".sif")), stored.join(","));
  });
});

Deno.test("fixed: bad names are exit 2 saying what is allowed, and create no paths", async () => {
  await withHome(async (h) => {
    const src = await h.file("x.sif", "x");
    const r = await h.cli("add", src, "--name", "bad name!");
    assertEquals(r.code, 2, r.stderr);
    assert(r.stderr.includes("letters, digits, . _ -"), r.stderr);
    assert(r.stderr.includes('"bad name!"'), r.stderr);
    await Deno.stat(src); // not moved
    await assert.rejects(() => Deno.stat(join(h.env.SREGISTRY_STORAGE, "library")));
    const tag = await h.cli("add", src, "--name", "a/b:t*g");
    assertEquals(tag.code, 2, tag.stderr);
    assert(tag.stderr.includes("tag"), tag.stderr);
  });
});

Deno.test("fixed: rename's hint does not name --name; mv names the missing folder", async () => {
  await withHome(async (h) => {
    const src = await h.file("y.sif", "y");
    ok(await h.cli("add", src, "--name", "a/y:1"));
    const rn = await h.cli("rename", "a/y:1", "/abs/path.sif");
    assertEquals(rn.code, 2, rn.stderr);
    assert(!rn.stderr.includes("--name"), rn.stderr);
    assert(rn.stderr.includes("collection/image"), rn.stderr);
    const missing = join(h.dir, "nope", "deeper");
    const mv = await h.cli("mv", "a/y:1", `${missing}/`);
    assertEquals(mv.code, 3, mv.stderr);
    assert(mv.stderr.includes(`Folder ${JSON.stringify(missing)} does not exist`), mv.stderr);
    const mvFile = await h.cli("mv", "a/y:1", join(missing, "file.sif"));
    assertEquals(mvFile.code, 3, mvFile.stderr);
    assert(mvFile.stderr.includes(JSON.stringify(missing)), mvFile.stderr);
  });
});

Deno.test("get of a record with neither file nor url is exit 3 with a message", async () => {
  await withHome(async (h) => {
    ok(await h.cli("record", "a/bare:1"));
    const r = await h.cli("get", "a/bare:1");
    assertEquals([r.code, r.stdout], [3, ""]);
    assert(r.stderr.includes("is a record without a file: pull it"), r.stderr);
    const j = await h.cli("--json", "get", "a/bare:1");
    assertEquals(JSON.parse(j.stderr).error.exitCode, 3);
  });
});

Deno.test("old rows with an OCI env list also show the one environment shape", async () => {
  await withHome(async (h) => {
    ok(await h.cli("record", "a/old:1", "--metadata", JSON.stringify({ env: ["A=1"] })));
    const row = JSON.parse(ok(await h.cli("inspect", "a/old:1")).stdout);
    assertEquals(row.metrics.env, ["A=1"]);
    assertEquals(
      Object.values(row.metrics.environment as Record<string, string>)[0].includes('export A="1"'),
      true,
    );
  });
});
