import assert, { deepStrictEqual as assertEquals } from "./_assert.ts";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { collectionName, openCatalog, rowToJson, sha256File, sqlTimestamp } from "../db/catalog.ts";
import { migrate, ORIGINAL_DDL, SCHEMA_VERSION } from "../db/schema.ts";
import type { Catalog, Metadata } from "../db/types.ts";
import { NotFoundError, UsageError } from "../core/errors.ts";
import { createLogger, Level, memorySink } from "../core/log.ts";
import { parseImageName } from "../core/names.ts";

/** Awaits a rejection of the given class whose message contains `includes`. */
async function assertRejects(
  fn: () => Promise<unknown>,
  cls: new (...args: never[]) => Error,
  includes = "",
): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    assert(e instanceof cls, `expected ${cls.name}, got ${e}`);
    assert(
      (e as Error).message.includes(includes),
      `"${(e as Error).message}" lacks "${includes}"`,
    );
    return true;
  });
}

interface Fixture {
  dir: string;
  storage: string;
  dbDir: string;
  warnings: () => string;
  open(opts?: { readMetadata?: (f: string) => Promise<Metadata>; clock?: () => Date }): Catalog;
  file(name: string, content: string): Promise<string>;
}

async function withFixture(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sregistry-catalog-" });
  const sink = memorySink();
  const log = createLogger({ sink, level: Level.DEBUG });
  const opened: Catalog[] = [];
  const f: Fixture = {
    dir,
    storage: join(dir, "shub"),
    dbDir: join(dir, "db", "nested"),
    warnings: () => sink.text(),
    open(opts = {}) {
      const c = openCatalog({ databaseDir: f.dbDir, storage: f.storage, log, ...opts });
      opened.push(c);
      return c;
    },
    async file(name, content) {
      const p = join(dir, name);
      await Deno.writeTextFile(p, content);
      return p;
    },
  };
  try {
    await fn(f);
  } finally {
    for (const c of opened) c.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function sha(text: string): Promise<string> {
  const buf = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string, rel: string) {
    for await (const e of Deno.readDir(d)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(join(d, e.name), r);
      else out.push(r);
    }
  }
  try {
    await walk(root, "");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

Deno.test("a new database carries the original DDL, WAL and the latest user_version", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    c.close();
    const db = new DatabaseSync(c.path);
    try {
      const sql = db.prepare(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name",
      )
        .all() as { name: string; sql: string }[];
      assertEquals(sql[0].sql, ORIGINAL_DDL[0].replace(" IF NOT EXISTS", ""));
      // Migrations add columns to container's text; without them it is the original's.
      assertEquals(
        sql[1].sql.replace(" size INTEGER, digest TEXT, platform TEXT,", ""),
        ORIGINAL_DDL[1].replace(" IF NOT EXISTS", ""),
      );
      assertEquals(
        (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
        SCHEMA_VERSION,
      );
      assertEquals(
        (db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode,
        "wal",
      );
      // Idempotent: a second run does nothing, a run on an up-to-date DB does nothing.
      assertEquals(migrate(db), []);
    } finally {
      db.close();
    }
    await Deno.stat(f.dbDir); // mkdir -p of a missing nested folder
  });
});

Deno.test("a database written by sregistry-cli 0.2.39 opens, lists and updates", async () => {
  await withFixture(async (f) => {
    await Deno.mkdir(f.dbDir, { recursive: true });
    const content = "hello world image";
    const hex = await sha(content);
    const legacy = new DatabaseSync(join(f.dbDir, "sregistry.db"));
    for (const ddl of ORIGINAL_DDL) legacy.exec(ddl.replace(" IF NOT EXISTS", ""));
    legacy.prepare(
      "INSERT INTO collection (id, name, token, created_at) VALUES (1, 'vsoch', 'tok', ?)",
    )
      .run("2026-11-21 10:00:00");
    const path = join(f.storage, "vsoch", "hello-world", `v1@${hex}.sif`);
    await Deno.mkdir(join(f.storage, "vsoch", "hello-world"), { recursive: true });
    await Deno.writeTextFile(path, content);
    const metrics = JSON.stringify({
      collection: "vsoch",
      image: "hello-world",
      url: "vsoch/hello-world",
      type: "container",
      MAINTAINER: "vanessasaur",
    });
    const ins = legacy.prepare(
      `INSERT INTO container (created_at, metrics, name, tag, image, url, uri, client, version, collection_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
    );
    ins.run(
      "2026-11-21 10:00:01",
      metrics,
      "hello-world",
      "v1",
      path,
      "vsoch/hello-world",
      `vsoch/hello-world:v1@${hex}`,
      "hub",
      hex,
    );
    // A row whose uri lacks the version, as old versions of sregistry-cli wrote.
    ins.run(
      "2026-11-21 10:00:02",
      "{}",
      "hello-world",
      "latest",
      null,
      null,
      "vsoch/hello-world:latest",
      "hub",
      "",
    );
    legacy.close();

    const c = f.open({ clock: () => new Date("2027-01-02T03:04:05Z") });
    const rows = c.images();
    assertEquals(rows.map((r) => r.uri), [
      `vsoch/hello-world:v1@${hex}`,
      "vsoch/hello-world:latest",
    ]);
    assertEquals(rows[0].metadata.MAINTAINER, "vanessasaur");
    assertEquals(rows[0].size, null);
    assertEquals(c.get("vsoch/hello-world:v1")?.id, rows[0].id);

    // Re-adding the same content updates the same row, fills the new columns and keeps old metrics.
    const src = await f.file("again.sif", content);
    const res = await c.add({ uri: "vsoch/hello-world:v1", file: src, client: "local" });
    assertEquals(res.created, false);
    assertEquals(res.container.id, rows[0].id);
    assertEquals(res.container.size, content.length);
    assertEquals(res.container.digest, `sha256:${hex}`);
    assertEquals(res.container.metadata.MAINTAINER, "vanessasaur");
    assertEquals(res.container.createdAt, "2026-11-21 10:00:01");
    c.close();

    // The original's queries (columns it knows) still work on the migrated database.
    const again = new DatabaseSync(join(f.dbDir, "sregistry.db"));
    try {
      const r = again.prepare(
        "SELECT container.name, container.tag, collection.name AS coll FROM container JOIN collection ON collection.id = container.collection_id WHERE container.id = ?",
      ).get(rows[0].id) as Record<string, string>;
      assertEquals([r.name, r.tag, r.coll], ["hello-world", "v1", "vsoch"]);
      assertEquals(migrate(again), []);
      assertEquals({ ...again.prepare("PRAGMA integrity_check").get() }, { integrity_check: "ok" });
    } finally {
      again.close();
    }
  });
});

Deno.test("add moves the file to the storage path with the sha256 as version", async () => {
  await withFixture(async (f) => {
    const c = f.open({ clock: () => new Date("2026-11-21T10:11:12.345Z") });
    const src = await f.file("img.sif", "abc");
    const hex = await sha("abc");
    const { container, created } = await c.add({
      uri: "vsoch/Hello-World:V1",
      file: src,
      client: "local",
    });
    assert(created);
    const expected = join(f.storage, "vsoch", "hello-world", `v1@${hex}.sif`);
    assertEquals(container.image, expected);
    assertEquals(container.uri, `vsoch/hello-world:v1@${hex}`);
    assertEquals(container.version, hex);
    assertEquals(container.createdAt, "2026-11-21 10:11:12");
    assertEquals(await Deno.readTextFile(expected), "abc");
    await assertRejects(() => Deno.stat(src), Deno.errors.NotFound);
    assertEquals(await listFiles(f.storage), [`vsoch/hello-world/v1@${hex}.sif`]);

    // --copy keeps the source; a given version is used as is; a registry gets its own folder.
    const src2 = await f.file("img2.sif", "def");
    const r2 = await c.add({
      uri: "docker.io/library/ubuntu:18.04@deadbeef",
      file: src2,
      client: "docker",
      copy: true,
    });
    assertEquals(await Deno.readTextFile(src2), "def");
    assertEquals(
      r2.container.image,
      join(f.storage, "docker.io", "library", "ubuntu", "18.04@deadbeef.sif"),
    );
    assertEquals(r2.container.collection, "docker.io/library");
    assertEquals(r2.container.digest, `sha256:${await sha("def")}`);
    assertEquals(c.get("docker.io/library/ubuntu")?.id, r2.container.id);
    assertEquals(c.get("library/ubuntu"), undefined);
  });
});

Deno.test("fixed: add keeps the caller's metadata merged over the image's own", async () => {
  await withFixture(async (f) => {
    const c = f.open({
      readMetadata: () => Promise.resolve({ MAINTAINER: "image", arch: "amd64", type: "x" }),
    });
    const src = await f.file("m.sif", "meta");
    const { container } = await c.add({
      uri: "a/b:c",
      file: src,
      client: "local",
      metadata: { MAINTAINER: "caller", extra: { nested: true } },
    });
    assertEquals(container.metadata.MAINTAINER, "caller");
    assertEquals(container.metadata.arch, "amd64");
    assertEquals(container.metadata.extra, { nested: true });
    assertEquals(container.metadata.type, "x");
    assertEquals(container.metadata.collection, "a");
    // Stored, not just returned.
    c.close();
    const again = f.open();
    assertEquals(again.get("a/b:c")?.metadata.MAINTAINER, "caller");
  });
});

Deno.test("add warns and goes on when the image metadata cannot be read", async () => {
  await withFixture(async (f) => {
    const c = f.open({ readMetadata: () => Promise.reject(new Error("not a SIF file")) });
    const src = await f.file("bad.sif", "nope");
    const { container } = await c.add({ uri: "a/b", file: src, client: "local" });
    assertEquals(container.metadata.type, "container");
    assert(f.warnings().includes("not a SIF file"), f.warnings());
  });
});

Deno.test("fixed: no pseudo-URL is stored when none is given", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    const src = await f.file("u.sif", "u");
    assertEquals(
      (await c.add({ uri: "vsoch/hello", file: src, client: "local" })).container.url,
      null,
    );
    assertEquals((await c.record({ uri: "vsoch/rec", client: "local" })).container.url, null);
    const r = await c.record({ uri: "vsoch/rec2", client: "hub", url: "https://x/y" });
    assertEquals(r.container.url, "https://x/y");
    assertEquals(r.container.image, null);
    // An update without a url keeps the one recorded.
    const u = await c.record({ uri: "vsoch/rec2", client: "hub", metadata: { k: "v" } });
    assertEquals([u.created, u.container.url, u.container.metadata.k], [false, "https://x/y", "v"]);
  });
});

Deno.test("fixed: get without a tag finds any tag, latest first, else the newest", async () => {
  await withFixture(async (f) => {
    let t = Date.parse("2026-01-01T00:00:00Z");
    const c = f.open({ clock: () => new Date(t += 1000) });
    await c.record({ uri: "vsoch/hello-world:v1", client: "local" });
    await c.record({ uri: "vsoch/hello-world:v2", client: "local" });
    assertEquals(c.get("vsoch/hello-world")?.tag, "v2");
    assertEquals(c.get("vsoch/hello-world:v1")?.tag, "v1");
    await c.record({ uri: "vsoch/hello-world:latest", client: "local" });
    await c.record({ uri: "vsoch/hello-world:v3", client: "local" });
    assertEquals(c.get("vsoch/hello-world")?.tag, "latest");
    assertEquals(c.get("hub://vsoch/hello-world:v3")?.tag, "v3");
    assertEquals(c.get("vsoch/nope"), undefined);

    // Without a version, the newest version of a tag.
    const a = await c.add({ uri: "x/y:t", file: await f.file("1", "one"), client: "local" });
    const b = await c.add({ uri: "x/y:t", file: await f.file("2", "two"), client: "local" });
    assert(a.container.id !== b.container.id);
    assertEquals(c.get("x/y:t")?.id, b.container.id);
    assertEquals(c.get(`x/y:t@${a.container.version}`)?.id, a.container.id);
  });
});

Deno.test("get finds a hash version by the start `images` shows; exact wins; ambiguous is usage", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    const a = await c.record({ uri: `p/q:t@ab12${"0".repeat(60)}`, client: "local" });
    const b = await c.record({ uri: `p/q:t@ab12${"1".repeat(60)}`, client: "local" });
    const d = await c.record({ uri: `p/q:u@sha256:${"cd34".repeat(16)}`, client: "local" });
    const e = await c.record({ uri: "p/q:t@beef", client: "local" });
    // 12 characters, as images prints them, with or without the tag, with or without sha256:.
    assertEquals(c.get(`p/q:t@ab12${"0".repeat(8)}`)?.id, a.container.id);
    assertEquals(c.get(`p/q@ab12${"1".repeat(8)}`)?.id, b.container.id);
    assertEquals(c.get(`p/q:u@sha256:${"cd34".repeat(3)}`)?.id, d.container.id);
    assertEquals(c.get(`p/q:u@ab12${"0".repeat(8)}`), undefined);
    // An exact version wins over the start of another; too short is exact only; a common start
    // of two versions is a usage error that says what to do.
    assertEquals(c.get("p/q:t@beef")?.id, e.container.id);
    assertEquals(c.get("p/q:t@ab1"), undefined);
    assert.throws(() => c.get("p/q:t@ab12"), (err: unknown) => {
      assert(err instanceof UsageError, String(err));
      assert(/more than one version.*--no-trunc/.test(err.message), err.message);
      return true;
    });
  });
});

Deno.test("images follows the original's match rules; '' and '*' list all", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    for (
      const u of ["vsoch/hello-world:v1", "vsoch/other:latest", "library/ubuntu:18.04", "a_b/c:d"]
    ) {
      await c.record({ uri: u, client: "local" });
    }
    const uris = (q: string[]) => c.images(q).map((r) => r.uri);
    assertEquals(uris([]).length, 4);
    assertEquals(uris(["*"]).length, 4);
    assertEquals(uris([""]).length, 4);
    assertEquals(uris(["hello"]), ["vsoch/hello-world:v1"]);
    assertEquals(uris(["VSOCH"]), ["vsoch/hello-world:v1", "vsoch/other:latest"]); // collection, ASCII case
    assertEquals(uris(["18.04"]), ["library/ubuntu:18.04"]);
    assertEquals(uris(["other", "ubuntu"]), ["vsoch/other:latest", "library/ubuntu:18.04"]);
    // `_` is literal, not a LIKE wildcard.
    assertEquals(uris(["a_b"]), ["a_b/c:d"]);
    assertEquals(uris(["h_llo"]), []);
    assertEquals(uris(["nothing"]), []);
  });
});

Deno.test("fixed: rm succeeds for a record without a file and for a missing file", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    await c.record({ uri: "vsoch/rec", client: "local" });
    const r1 = await c.rm("vsoch/rec");
    assertEquals([r1.container.uri, r1.removedFile], ["vsoch/rec:latest", undefined]);
    assertEquals(c.get("vsoch/rec"), undefined);

    const { container } = await c.add({
      uri: "vsoch/gone",
      file: await f.file("g", "g"),
      client: "local",
    });
    await Deno.remove(container.image!);
    const r2 = await c.rm("vsoch/gone");
    assertEquals(r2.removedFile, undefined);
    assert(f.warnings().includes("does not exist"));
    assertEquals(c.images().length, 0);

    const kept = await c.add({ uri: "vsoch/keep", file: await f.file("k", "k"), client: "local" });
    const r3 = await c.rm("vsoch/keep");
    assertEquals(r3.removedFile, kept.container.image);
    assertEquals(await listFiles(f.storage), []);
    // Emptied folders are pruned, the storage root stays.
    await assertRejects(() => Deno.stat(join(f.storage, "vsoch")), Deno.errors.NotFound);
    await Deno.stat(f.storage);
    await assertRejects(() => c.rm("vsoch/keep"), NotFoundError);
  });
});

Deno.test("fixed: mv and rename of an unknown image are NotFoundError", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    await assertRejects(() => c.mv("vsoch/nope", f.dir), NotFoundError);
    await assertRejects(() => c.rename("vsoch/nope", "vsoch/other"), NotFoundError);
    await c.record({ uri: "vsoch/rec", client: "local" });
    await assertRejects(() => c.mv("vsoch/rec", f.dir), NotFoundError, "without a file");
  });
});

Deno.test("mv moves the file to a folder or a path and updates the row", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    const { container } = await c.add({
      uri: "vsoch/hello:v1",
      file: await f.file("h", "h"),
      client: "local",
    });
    const out = join(f.dir, "out");
    await Deno.mkdir(out);
    const moved = await c.mv("vsoch/hello:v1", out);
    assertEquals(moved.image, join(out, container.image!.split("/").pop()!));
    assertEquals(await Deno.readTextFile(moved.image!), "h");
    const renamed = await c.mv("vsoch/hello:v1", join(out, "x.sif"));
    assertEquals(renamed.image, join(out, "x.sif"));
    assertEquals(await listFiles(out), ["x.sif"]);
    await assertRejects(
      () => c.mv("vsoch/hello:v1", join(f.dir, "missing", "y.sif")),
      NotFoundError,
      "create it first",
    );
  });
});

Deno.test("rename re-parses the name, keeps the version, moves the file and prunes old folders", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    const { container } = await c.add({
      uri: "vsoch/other:v1",
      file: await f.file("o", "o"),
      client: "local",
    });
    const r = await c.rename("vsoch/other:v1", "tacos.simg");
    const v = container.version;
    assertEquals(r.uri, `library/tacos:latest@${v}`);
    assertEquals(r.image, join(f.storage, "library", "tacos", `latest@${v}.sif`));
    assertEquals(r.id, container.id);
    assertEquals(await listFiles(f.storage), [`library/tacos/latest@${v}.sif`]);
    await assertRejects(() => Deno.stat(join(f.storage, "vsoch")), Deno.errors.NotFound);
    assertEquals(c.get("library/tacos")?.id, container.id);
    // A name taken by another image is refused and nothing moves.
    await c.add({ uri: "library/taken:latest", file: await f.file("t", "o"), client: "local" });
    await assertRejects(() => c.rename("library/tacos", "library/taken"), UsageError, "already");
    assertEquals(c.get("library/tacos")?.image, r.image);
    await Deno.stat(r.image!);
  });
});

Deno.test("an existing different file is replaced only with force; same content is fine", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    await c.add({ uri: "a/b:c@v1", file: await f.file("1", "one"), client: "local" });
    const dest = c.storagePath(parseImageName("a/b:c@v1"));
    const src = await f.file("2", "two");
    await assertRejects(
      () => c.add({ uri: "a/b:c@v1", file: src, client: "local" }),
      UsageError,
      "--force",
    );
    assertEquals(await Deno.readTextFile(dest), "one");
    assertEquals(await Deno.readTextFile(src), "two"); // the source was not touched
    await c.add({ uri: "a/b:c@v1", file: src, client: "local", force: true });
    assertEquals(await Deno.readTextFile(dest), "two");
    await c.add({ uri: "a/b:c@v1", file: await f.file("3", "two"), client: "local" });
    assertEquals(c.images().length, 1);
    assertEquals(await listFiles(join(f.storage, "a")), ["b/c@v1.sif"]);
  });
});

Deno.test("a failed insert leaves no row, no partial file, and the source in place", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    c.close();
    const db = new DatabaseSync(c.path);
    db.exec(
      "CREATE TRIGGER fail_insert BEFORE INSERT ON container WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    );
    db.close();
    const c2 = f.open();
    const src = await f.file("boom.sif", "payload");
    await assertRejects(
      () => c2.add({ uri: "x/boom", file: src, client: "local" }),
      Error,
      "disk on fire",
    );
    assertEquals(await Deno.readTextFile(src), "payload");
    assertEquals(c2.images().length, 0);
    assertEquals(await listFiles(f.storage), []);
    // Forced replacement that fails keeps the old file.
    const ok = await c2.add({
      uri: "x/fine:t@v",
      file: await f.file("fine", "old"),
      client: "local",
    });
    const db2 = new DatabaseSync(c.path);
    db2.exec(
      "CREATE TRIGGER fail_update BEFORE UPDATE ON container BEGIN SELECT RAISE(ABORT, 'no'); END",
    );
    db2.close();
    const src2 = await f.file("fine2", "new");
    await assertRejects(
      () => c2.add({ uri: "x/fine:t@v", file: src2, client: "local", force: true }),
      Error,
      "no",
    );
    assertEquals(await Deno.readTextFile(ok.container.image!), "old");
    assertEquals(await Deno.readTextFile(src2), "new");
    assertEquals(await listFiles(f.storage), ["x/fine/t@v.sif"]);
  });
});

Deno.test("labels searches stored metadata keys and values, case-insensitively", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    await c.record({
      uri: "a/one",
      client: "local",
      metadata: { MAINTAINER: "Vanessa", labels: { "org.x.Version": "1.2" } },
    });
    await c.record({ uri: "a/two", client: "local", metadata: { maintainer: "someone", size: 3 } });
    const hits = (o: { key?: string; value?: string }) =>
      c.labels(o).map((h) => `${h.container.name}:${h.key}=${h.value}`);
    assertEquals(hits({ key: "maintainer" }), ["one:MAINTAINER=Vanessa", "two:maintainer=someone"]);
    assertEquals(hits({ value: "VANESSA" }), ["one:MAINTAINER=Vanessa"]);
    assertEquals(hits({ key: "version", value: "1." }), ["one:org.x.Version=1.2"]);
    // Fixed: sregistry's own fields (size, names, digests) are not labels.
    assertEquals(hits({ key: "size" }), []);
    assertEquals(hits({ key: "nope" }), []);
    // Fixed: a label kept both at the top level and in `labels` (OCI pulls) is listed once.
    await c.record({
      uri: "a/three",
      client: "docker",
      metadata: {
        maintainer: "oci",
        labels: { maintainer: "oci" },
        digest: "sha256:00",
        environment: { "/x": "export A=1" },
      },
    });
    assertEquals(c.labels({}).filter((h) => h.container.name === "three").map((h) => h.key), [
      "maintainer",
    ]);
  });
});

Deno.test("add stores by the real format: an OCI archive is .oci.tar, also after rename", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    // A real tar with oci-layout and index.json, as writeLayoutTar and skopeo write.
    const layout = join(f.dir, "layout");
    await Deno.mkdir(layout);
    await Deno.writeTextFile(join(layout, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    await Deno.writeTextFile(join(layout, "index.json"), '{"schemaVersion":2,"manifests":[]}');
    const tar = join(f.dir, "img.tar");
    const made = await new Deno.Command("tar", {
      args: ["-cf", tar, "-C", layout, "oci-layout", "index.json"],
    }).output();
    assert(made.success, "tar failed");
    const { container } = await c.add({ uri: "oci/arch:v1", file: tar, client: "local" });
    assert(container.image!.endsWith(".oci.tar"), container.image!);
    const renamed = await c.rename("oci/arch:v1", "oci/other:v2");
    assert(renamed.image!.endsWith(".oci.tar"), renamed.image!);
    assert(renamed.image!.includes("/oci/other/v2@"), renamed.image!);
    // An unknown format keeps the .sif name sregistry-cli gave every file.
    const plain = await f.file("plain", "just bytes");
    const p = await c.add({ uri: "oci/plain", file: plain, client: "local" });
    assert(p.container.image!.endsWith(".sif"), p.container.image!);
  });
});

Deno.test("platform: stored per row; get prefers the asked (default: host) platform", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    const a = await f.file("a", "arm bytes");
    const b = await f.file("b", "amd bytes");
    await c.add({ uri: "m/multi:v1", file: a, client: "docker", platform: "linux/arm64/v8" });
    await c.add({ uri: "m/multi:v1", file: b, client: "docker", platform: "linux/amd64" });
    assertEquals(c.get("m/multi:v1", { platform: "linux/arm64" })!.platform, "linux/arm64/v8");
    assertEquals(c.get("m/multi:v1", { platform: "linux/amd64" })!.platform, "linux/amd64");
    assertEquals(c.images(["multi"]).map((r) => r.platform).sort(), [
      "linux/amd64",
      "linux/arm64/v8",
    ]);
    assertEquals(
      rowToJson(c.get("m/multi:v1", { platform: "linux/amd64" })!).platform,
      "linux/amd64",
    );
  });
});

Deno.test("helpers: timestamps, hashing, JSON shape and collection names", async () => {
  assertEquals(sqlTimestamp(new Date("2026-02-03T04:05:06.789Z")), "2026-02-03 04:05:06");
  assertEquals(collectionName(parseImageName("localhost:5000/a/b:t")), "localhost:5000/a");
  assertEquals(collectionName(parseImageName("ubuntu")), "library");
  await withFixture(async (f) => {
    const p = await f.file("h", "hash me");
    assertEquals(await sha256File(p), await sha("hash me"));
    const c = f.open();
    const { container } = await c.record({ uri: "a/b", client: "local", metadata: { k: 1 } });
    assertEquals(Object.keys(rowToJson(container)), [
      "client",
      "collection",
      "collection_id",
      "created_at",
      "digest",
      "id",
      "image",
      "metrics",
      "name",
      "platform",
      "size",
      "tag",
      "uri",
      "url",
      "version",
    ]);
    assertEquals(rowToJson(container, false).metrics, undefined);
  });
});

const SHM_OTHER_DEVICE = (() => {
  try {
    return Deno.statSync("/dev/shm").dev !== Deno.statSync(Deno.env.get("TMPDIR") ?? "/tmp").dev;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "add moves a file across filesystems (copy, fsync, remove)",
  ignore: !SHM_OTHER_DEVICE,
  fn: async () => {
    await withFixture(async (f) => {
      const shm = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "sregistry-xdev-" });
      try {
        const src = join(shm, "x.sif");
        await Deno.writeTextFile(src, "across");
        const c = f.open();
        const { container } = await c.add({ uri: "x/dev", file: src, client: "local" });
        assertEquals(await Deno.readTextFile(container.image!), "across");
        await assertRejects(() => Deno.stat(src), Deno.errors.NotFound);
        assertEquals(await listFiles(f.storage), [`x/dev/latest@${await sha("across")}.sif`]);
      } finally {
        await Deno.remove(shm, { recursive: true });
      }
    });
  },
});

Deno.test("migrate re-applies the migrations a re-created table lost, and only once", () => {
  const db = new DatabaseSync(":memory:");
  try {
    assertEquals(migrate(db), [1, 2, 3]);
    db.exec("DROP TABLE container");
    assertEquals(migrate(db), [1, 2, 3]);
    const cols = (db.prepare("PRAGMA table_info(container)").all() as { name: string }[])
      .map((c) => c.name);
    for (const c of ["size", "digest", "platform"]) assert(cols.includes(c), cols.join(","));
    assertEquals(migrate(db), []);
    assertEquals(
      (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      SCHEMA_VERSION,
    );
  } finally {
    db.close();
  }
});

Deno.test("userinfo in URLs is never stored, and hidden in rows written by other tools", async () => {
  await withFixture(async (f) => {
    const c = f.open();
    const { container } = await c.record({
      uri: "c/rec:v1",
      url: "https://u:PASS@example.org/x.sif",
      metadata: {
        url: "http://tok@example.org/y",
        nested: ["ftp://a:b@h/z"],
        ref: "docker://a@sha256:1",
      },
      client: "local",
    });
    assertEquals(container.url, "https://example.org/x.sif");
    assertEquals(container.metadata.nested, ["ftp://h/z"]);
    // Not an http URL: the @ is a digest, not userinfo.
    assertEquals(container.metadata.ref, "docker://a@sha256:1");
    const raw = new DatabaseSync(join(f.dbDir, "sregistry.db"));
    try {
      assert(!JSON.stringify(raw.prepare("SELECT * FROM container").all()).includes("PASS"));
      raw.prepare("UPDATE container SET url = ?, metrics = ?").run(
        "http://old:PASS@h/x",
        JSON.stringify({ url: "http://old:PASS@h/x" }),
      );
    } finally {
      raw.close();
    }
    const row = c.get("c/rec:v1")!;
    assertEquals(row.url, "http://h/x");
    assert(!JSON.stringify(rowToJson(row)).includes("PASS"));
  });
});

Deno.test({
  name: "a catalog that cannot be written is read-only: reads work, writes name the database",
  // root ignores permissions; tests/catalog_hardening_test.ts covers root with a read-only mount.
  ignore: Deno.uid() === 0,
}, async () => {
  await withFixture(async (f) => {
    const c = f.open();
    await c.record({ uri: "c/one:v1", client: "local" });
    c.close();
    await Deno.chmod(f.dbDir, 0o555);
    try {
      const ro = f.open();
      assert(ro.get("c/one:v1"));
      await assertRejects(() => ro.record({ uri: "c/two:v1", client: "local" }), Error, f.dbDir);
    } finally {
      await Deno.chmod(f.dbDir, 0o755);
    }
  });
});
