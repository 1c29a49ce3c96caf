/**
 * Catalog and store-step hardening (issue 10, items 4, 6–9, 11, 12, 16, 17 and parts of 20), each
 * driven through the CLI the way a user or a hostile server would.
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  CLI_ARGS,
  type CliResult,
  onPath,
  requirement,
  runCli,
  spawnCli,
  tempHome,
} from "./_cli.ts";
import { makeData, startFaultServer } from "./servers/fault_server.ts";

const FAST = { SREGISTRY_BACKOFF_MS: "10", SREGISTRY_STALL_TIMEOUT: "5" };

interface Home {
  dir: string;
  env: Record<string, string>;
  storage: string;
  cli(...args: string[]): Promise<CliResult>;
  file(name: string, content: string | Uint8Array): Promise<string>;
}

async function withHome(fn: (h: Home) => Promise<void>): Promise<void> {
  const home = await tempHome();
  const env: Record<string, string> = { ...home.env, ...FAST };
  const h: Home = {
    dir: home.dir,
    env,
    storage: env.SREGISTRY_STORAGE,
    cli: (...args) => runCli(args, { env, cwd: home.dir }),
    async file(name, content) {
      const p = join(home.dir, name);
      if (typeof content === "string") await Deno.writeTextFile(p, content);
      else await Deno.writeFile(p, content);
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

function code(r: CliResult, expected: number): CliResult {
  assert.equal(r.code, expected, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

async function fileSha(path: string): Promise<string> {
  return sha256(await Deno.readFile(path));
}

/** Every path under a folder (files, folders and links), relative, sorted. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(join(dir, prefix))) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      out.push(rel);
      if (e.isDirectory) out.push(...await tree(dir, rel));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

function rows(h: Home): { uri: string; image: string | null; digest: string | null }[] {
  const db = new DatabaseSync(join(h.env.SREGISTRY_DATABASE, "sregistry.db"));
  try {
    return db.prepare("SELECT uri, image, digest FROM container ORDER BY id").all() as never;
  } finally {
    db.close();
  }
}

// Item 6.
Deno.test("pull --no-cache --force: an encoded ../ in the URL never leaves the current folder", async () => {
  await withHome(async (h) => {
    const srv = startFaultServer();
    try {
      const cwd = join(h.dir, "a", "b");
      await Deno.mkdir(cwd, { recursive: true });
      const victim = await h.file("a/evil.sif", "precious");
      await Deno.writeTextFile(join(h.dir, "evil.sif"), "precious");
      const data = makeData(4096, 3);
      for (const path of ["/..%2f..%2fevil.sif", "/%2e%2e%2f%2e%2e%2fevil.sif", "/..%5cevil.sif"]) {
        await srv.setFile(path, data);
        const r = await runCli(["pull", "--no-cache", "--force", `${srv.url}${path}`], {
          env: h.env,
          cwd,
        });
        ok(r);
        const written = r.stdout.trim();
        assert.equal(join(written, ".."), cwd, `written outside the current folder: ${written}`);
        assert(!written.slice(cwd.length + 1).includes("/"), written);
      }
      assert.equal(await Deno.readTextFile(victim), "precious");
      assert.equal(await Deno.readTextFile(join(h.dir, "evil.sif")), "precious");
    } finally {
      await srv.close();
    }
  });
});

// Item 7, the same source and name at once.
Deno.test("two pulls of one URL and --name at once both succeed and agree with the file", async () => {
  await withHome(async (h) => {
    const srv = startFaultServer();
    try {
      const data = makeData(600_000, 11);
      await srv.setFile("/slow.sif", data);
      srv.setFault("/slow.sif", { rate: 300_000 });
      const args = ["pull", `${srv.url}/slow.sif`, "--name", "race/same:v1"];
      const a = spawnCli(args, { env: h.env, cwd: h.dir });
      const b = spawnCli(args, { env: h.env, cwd: h.dir });
      const [ra, rb] = await Promise.all([a.output(), b.output()]);
      const dec = new TextDecoder();
      assert.equal(ra.code, 0, dec.decode(ra.stderr));
      assert.equal(rb.code, 0, dec.decode(rb.stderr));
      // One waited for the other (the download takes 2 s; both start within a second).
      assert.match(dec.decode(ra.stderr) + dec.decode(rb.stderr), /Waiting for another pull/);
      const all = rows(h);
      assert.equal(all.length, 1, JSON.stringify(all));
      assert.equal(all[0].digest, `sha256:${sha256(data)}`);
      assert.equal(await fileSha(all[0].image!), sha256(data));
      assert.deepEqual(
        (await tree(join(h.storage, ".staging"))).filter((p) => !p.startsWith("locks")),
        [],
      );
    } finally {
      await srv.close();
    }
  });
});

// Item 7, different files under one name at once.
Deno.test("two pulls of different files under one --name at once: each row matches its file", async () => {
  await withHome(async (h) => {
    const srv = startFaultServer();
    try {
      const one = makeData(200_000, 1);
      const two = makeData(200_000, 2);
      await srv.setFile("/one.sif", one);
      await srv.setFile("/two.sif", two);
      srv.setFault("/one.sif", { rate: 250_000 });
      srv.setFault("/two.sif", { rate: 250_000 });
      const a = spawnCli(["pull", `${srv.url}/one.sif`, "--name", "race/name"], {
        env: h.env,
        cwd: h.dir,
      });
      const b = spawnCli(["pull", `${srv.url}/two.sif`, "--name", "race/name"], {
        env: h.env,
        cwd: h.dir,
      });
      const [ra, rb] = await Promise.all([a.output(), b.output()]);
      const dec = new TextDecoder();
      assert.equal(ra.code, 0, dec.decode(ra.stderr));
      assert.equal(rb.code, 0, dec.decode(rb.stderr));
      const all = rows(h);
      assert.equal(all.length, 2, JSON.stringify(all));
      for (const r of all) {
        assert.equal(r.digest, `sha256:${await fileSha(r.image!)}`, JSON.stringify(r));
      }
      assert.deepEqual(
        new Set(all.map((r) => r.digest)),
        new Set([`sha256:${sha256(one)}`, `sha256:${sha256(two)}`]),
      );
    } finally {
      await srv.close();
    }
  });
});

// Item 8.
Deno.test("add refuses another entry's stored file and keeps both entries whole", async () => {
  await withHome(async (h) => {
    const src = await h.file("two.sif", "two");
    const stored = ok(await h.cli("add", src, "--name", "c/two:v1")).stdout.trim();
    const r = code(await h.cli("add", stored, "--name", "c/three:v1"), 2);
    assert.match(r.stderr, /c\/two:v1@/);
    assert.equal(await Deno.readTextFile(stored), "two");
    assert.equal(ok(await h.cli("get", "c/two:v1")).stdout.trim(), stored);
    code(await h.cli("get", "c/three:v1"), 3);
    // A copy is not a move: allowed.
    ok(await h.cli("add", "--copy", stored, "--name", "c/copy:v1"));
    assert.equal(await Deno.readTextFile(stored), "two");
  });
});

Deno.test("add of a relative symlink stores the target's content and leaves the link alone", async () => {
  await withHome(async (h) => {
    await h.file("four.sif", "four");
    await Deno.symlink("four.sif", join(h.dir, "link.sif"));
    const stored = ok(await h.cli("add", "link.sif", "--name", "c/four:v1")).stdout.trim();
    assert(!(await Deno.lstat(stored)).isSymlink, "the stored file is a link");
    assert.equal(await Deno.readTextFile(stored), "four");
    assert.equal(await Deno.readLink(join(h.dir, "link.sif")), "four.sif");
    assert.equal(await Deno.readTextFile(join(h.dir, "link.sif")), "four");
  });
});

// Item 9.
Deno.test("no add, mv, rename or rm goes through a symlink inside storage", async () => {
  await withHome(async (h) => {
    const elsewhere = join(h.dir, "elsewhere");
    await Deno.mkdir(elsewhere);
    await Deno.mkdir(join(h.storage, "shub"), { recursive: true });
    const link = join(h.storage, "shub", "evil");
    await Deno.symlink(elsewhere, link);
    const src = await h.file("five.sif", "five");
    let r = code(await h.cli("add", src, "--name", "shub/evil:v1"), 2);
    assert(r.stderr.includes(link), r.stderr);
    assert.deepEqual(await tree(elsewhere), []);
    assert.equal(await Deno.readTextFile(src), "five");

    // A row whose file lies behind the link (written by another tool): rm keeps the file.
    ok(await h.cli("add", src, "--name", "shub/good:v1"));
    await Deno.writeTextFile(join(elsewhere, "victim.sif"), "victim");
    const db = new DatabaseSync(join(h.env.SREGISTRY_DATABASE, "sregistry.db"));
    db.prepare("UPDATE container SET image = ?").run(join(link, "victim.sif"));
    db.close();
    r = code(await h.cli("rm", "shub/good:v1"), 2);
    assert(r.stderr.includes(link), r.stderr);
    r = code(await h.cli("rename", "shub/good:v1", "shub/other:v1"), 2);
    assert(r.stderr.includes(link), r.stderr);
    assert.equal(await Deno.readTextFile(join(elsewhere, "victim.sif")), "victim");
    // Writing into the linked folder through mv of another row is refused too.
    const six = await h.file("six.sif", "six");
    ok(await h.cli("add", six, "--name", "c/six:v1"));
    r = code(await h.cli("mv", "c/six:v1", join(link, "six.sif")), 2);
    assert(r.stderr.includes(link), r.stderr);
  });
});

// Item 11 (stale files).
Deno.test("stale staging and temp files with no live owner are removed by the next run", async () => {
  await withHome(async (h) => {
    const staging = join(h.storage, ".staging");
    const folder = join(h.storage, "c", "img");
    await Deno.mkdir(staging, { recursive: true });
    await Deno.mkdir(folder, { recursive: true });
    const old = new Date(Date.now() - 2 * 86_400_000);
    const stale = [
      join(staging, ".img.999999-deadbeef.partial-pull"),
      join(staging, ".img.0123456789abcdef.resumable"),
      join(staging, ".img.0123456789abcdef.resumable.partial"),
      join(staging, ".img.0123456789abcdef.resumable.partial.json.tmp"),
      join(folder, ".v1@abc.sif.0a1b2c3d.tmp"),
      join(folder, ".v1@abc.sif.0a1b2c3d.rm"),
    ];
    const keep = [
      join(staging, ".fresh.999999-cafebabe.partial-pull"), // young
      join(staging, ".live.0123456789abcdef.resumable.lock"), // a held (fresh) lock
      join(folder, "v1@abc.sif"), // old, but not a temp file
    ];
    stale.push(join(staging, ".dead.0123456789abcdef.resumable.lock")); // its owner stopped
    for (const p of [...stale, ...keep]) await Deno.writeTextFile(p, "x");
    for (const p of [...stale, keep[2]]) await Deno.utime(p, old, old);
    ok(await h.cli("images"));
    for (const p of stale) assert(!(await exists(p)), `${p} was kept`);
    for (const p of keep) assert(await exists(p), `${p} was removed`);
  });
});

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.lstat(p);
    return true;
  } catch {
    return false;
  }
}

// Item 12.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} during add: either completed (exit 0, said so) or rolled back (exit 130)`, async () => {
    await withHome(async (h) => {
      const big = join(h.dir, "big.sif");
      {
        using f = await Deno.open(big, { create: true, write: true });
        await f.truncate(400 * 1024 * 1024);
        await f.write(new TextEncoder().encode("head"));
      }
      const child = spawnCli(["add", big, "--name", "c/big:v1"], { env: h.env, cwd: h.dir });
      // Wait until the add has started (the database exists), then interrupt it.
      const dbFile = join(h.env.SREGISTRY_DATABASE, "sregistry.db");
      for (let i = 0; i < 200 && !(await exists(dbFile)); i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      await new Promise((r) => setTimeout(r, 100));
      child.kill(signal);
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      const all = rows(h);
      if (out.code === 0) {
        assert.equal(all.length, 1);
        assert(await exists(all[0].image!));
        assert(!(await exists(big)));
        assert.match(stderr, /completed/i);
      } else {
        assert.equal(out.code, 130, stderr);
        assert.deepEqual(all, [], "interrupted but the row is there");
        assert(await exists(big), "interrupted but the file was moved");
        assert.deepEqual(
          (await tree(h.storage)).filter((p) => !p.startsWith(".staging")),
          [],
          "interrupted but storage has files",
        );
        assert.match(stderr, /not added; the catalog and .* are unchanged/);
      }
    });
  });
}

// Item 16.
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Run the CLI after `setup` (shell) in a private mount namespace (root only). */
async function inNamespace(h: Home, setup: string, args: string[]): Promise<CliResult> {
  const cli = [Deno.execPath(), ...CLI_ARGS, ...args].map(q).join(" ");
  const p = await new Deno.Command("unshare", {
    args: ["-m", "sh", "-c", `${setup} && ${cli}`],
    cwd: h.dir,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1", ...h.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: p.code, stdout: dec.decode(p.stdout), stderr: dec.decode(p.stderr) };
}

const root = Deno.uid() === 0;
const mounts = onPath("unshare") && onPath("mount");

Deno.test({
  name: "a read-only database folder: images and get work, add names the database",
  ...requirement("unshare and mount (to make a read-only folder as root)", !root || mounts),
  fn: async () => {
    await withHome(async (h) => {
      const src = await h.file("one.sif", "one");
      const stored = ok(await h.cli("add", src, "--name", "c/one:v1")).stdout.trim();
      const dbDir = h.env.SREGISTRY_DATABASE;
      const two = await h.file("two.sif", "two");
      // root ignores permissions: a read-only bind mount in a private mount namespace.
      const ro = `mount --bind ${q(dbDir)} ${q(dbDir)} && mount -o remount,bind,ro ${q(dbDir)}`;
      const run = (...args: string[]) => root ? inNamespace(h, ro, args) : h.cli(...args);
      if (!root) await Deno.chmod(dbDir, 0o555);
      try {
        const images = ok(await run("images"));
        assert.match(images.stdout, /c\/one:v1@/);
        assert.equal(ok(await run("get", "c/one:v1")).stdout.trim(), stored);
        ok(await run("inspect", "c/one:v1"));
        for (const args of [["add", two, "--name", "c/two:v1"], ["rm", "c/one:v1"]]) {
          const r = code(await run(...args), 4);
          assert(r.stderr.includes(join(dbDir, "sregistry.db")), r.stderr);
        }
        assert.equal(await Deno.readTextFile(two), "two", "the failed add moved the file");
        assert.equal(await Deno.readTextFile(stored), "one", "the failed rm removed the file");
      } finally {
        if (!root) await Deno.chmod(dbDir, 0o755);
      }
    });
  },
});

Deno.test({
  name: "a read-only database of sregistry-cli (no migrations applied) is read all the same",
  ...requirement("unshare and mount (to make a read-only folder as root)", !root || mounts),
  fn: async () => {
    await withHome(async (h) => {
      const dbDir = h.env.SREGISTRY_DATABASE;
      await Deno.mkdir(dbDir, { recursive: true });
      const { ORIGINAL_DDL } = await import("../db/schema.ts");
      const db = new DatabaseSync(join(dbDir, "sregistry.db"));
      for (const ddl of ORIGINAL_DDL) db.exec(ddl);
      db.exec("INSERT INTO collection (id, name) VALUES (1, 'old')");
      db.exec(
        `INSERT INTO container (metrics, name, tag, client, version, collection_id, url)
         VALUES ('{}', 'img', 'latest', 'hub', 'abc', 1, 'https://u:PASS@h/x')`,
      );
      db.close();
      const ro = `mount --bind ${q(dbDir)} ${q(dbDir)} && mount -o remount,bind,ro ${q(dbDir)}`;
      const run = (...args: string[]) => root ? inNamespace(h, ro, args) : h.cli(...args);
      if (!root) await Deno.chmod(dbDir, 0o555);
      try {
        assert.match(ok(await run("images")).stdout, /old\/img:latest@abc/);
        const shown = ok(await run("inspect", "old/img"));
        assert.equal(JSON.parse(shown.stdout).url, "https://h/x");
      } finally {
        if (!root) await Deno.chmod(dbDir, 0o755);
      }
      // Nothing was written to the original.
      const after = new DatabaseSync(join(dbDir, "sregistry.db"));
      const cols = after.prepare("PRAGMA table_info(container)").all() as { name: string }[];
      after.close();
      assert(!cols.some((c) => c.name === "size"), "the read-only database was migrated");
    });
  },
});

Deno.test({
  name: "a database on a full disk: images and get work, add names the database",
  // A full file system needs a tmpfs mount: root only (unprivileged CI runs the read-only case).
  ignore: !root || !mounts,
  fn: async () => {
    await withHome(async (h) => {
      const dbDir = h.env.SREGISTRY_DATABASE;
      await Deno.mkdir(dbDir, { recursive: true });
      const src = await h.file("one.sif", "one");
      const two = await h.file("two.sif", "two");
      const full = `mount -t tmpfs -o size=256k tmpfs ${q(dbDir)} && ${
        [Deno.execPath(), ...CLI_ARGS, "add", "--copy", src, "--name", "c/one:v1"].map(q).join(" ")
      } >/dev/null && (dd if=/dev/zero of=${q(join(dbDir, "fill"))} bs=4k 2>/dev/null || true)`;
      const r1 = ok(await inNamespace(h, full, ["images"]));
      assert.match(r1.stdout, /c\/one:v1@/);
      const r2 = await inNamespace(h, full, ["add", two, "--name", "c/two:v1"]);
      assert.notEqual(r2.code, 0);
      assert(r2.stderr.includes(join(dbDir, "sregistry.db")), r2.stderr);
      assert.match(r2.stderr, /space/);
      assert.equal(await Deno.readTextFile(two), "two");
    });
  },
});

// Item 17.
Deno.test("names too long for the file system are usage errors and create no folder", async () => {
  await withHome(async (h) => {
    const src = await h.file("a.sif", "a");
    for (
      const name of [
        `a/${"x".repeat(300)}`,
        `${"x".repeat(5000)}/b`,
        `a/b:${"t".repeat(300)}`,
        `${"abcdefgh/".repeat(600)}img`,
      ]
    ) {
      const r = code(await h.cli("add", src, "--name", name), 2);
      assert.match(r.stderr, /too long/, r.stderr);
      assert(r.stderr.length < 400, "the message repeats the whole name");
      code(await h.cli("record", name), 2);
    }
    assert.deepEqual(await tree(h.storage), []);
    assert.equal(await Deno.readTextFile(src), "a");
  });
});

// Item 4 (store part).
Deno.test("passwords in URLs are never stored or shown: pull, record, and rows from older tools", async () => {
  await withHome(async (h) => {
    const srv = startFaultServer();
    try {
      await srv.setFile("/x.sif", makeData(2048, 5));
      const url = srv.url.replace("http://", "http://user:PASS@") + "/x.sif";
      const pulled = ok(await h.cli("--json", "pull", url, "--name", "c/x:v1"));
      assert(!pulled.stdout.includes("PASS"), pulled.stdout);
      assert.equal(JSON.parse(pulled.stdout).url, `${srv.url}/x.sif`);
      const rec = ok(
        await h.cli("--json", "record", "c/rec:v1", "--url", "https://u:PASS@example.org/r.sif"),
      );
      assert(!rec.stdout.includes("PASS"), rec.stdout);
      const db = new DatabaseSync(join(h.env.SREGISTRY_DATABASE, "sregistry.db"));
      const raw = JSON.stringify(db.prepare("SELECT url, metrics FROM container").all());
      assert(!raw.includes("PASS"), raw);
      // A row as sregistry-cli wrote it.
      db.prepare("UPDATE container SET url = ?, metrics = ? WHERE uri LIKE 'c/rec%'").run(
        "https://old:PASS@example.org/r.sif",
        JSON.stringify({ url: "https://old:PASS@example.org/r.sif" }),
      );
      db.close();
      for (
        const args of [["inspect", "c/rec:v1"], ["--json", "images"], ["--json", "get", "c/x"]]
      ) {
        const r = ok(await h.cli(...args));
        assert(!r.stdout.includes("PASS"), `${args.join(" ")}: ${r.stdout}`);
      }
      assert.match(ok(await h.cli("inspect", "c/rec:v1")).stdout, /https:\/\/example\.org\/r\.sif/);
    } finally {
      await srv.close();
    }
  });
});

// Item 20 (parts).
Deno.test("mv to '' and add of '' are usage errors", async () => {
  await withHome(async (h) => {
    const src = await h.file("one.sif", "one");
    const stored = ok(await h.cli("add", src, "--name", "c/one:v1")).stdout.trim();
    code(await h.cli("mv", "c/one:v1", ""), 2);
    assert.equal(ok(await h.cli("get", "c/one:v1")).stdout.trim(), stored);
    code(await h.cli("add", "", "--name", "x/y"), 2);
    code(await h.cli("get", "x/y"), 3);
    assert.equal(rows(h).length, 1);
  });
});

Deno.test("a database whose container table was dropped gets the full current schema back", async () => {
  await withHome(async (h) => {
    const src = await h.file("one.sif", "one");
    ok(await h.cli("add", src, "--name", "c/one:v1"));
    const path = join(h.env.SREGISTRY_DATABASE, "sregistry.db");
    let db = new DatabaseSync(path);
    db.exec("DROP TABLE container");
    db.close();
    ok(await h.cli("images"));
    db = new DatabaseSync(path);
    const cols = (db.prepare("PRAGMA table_info(container)").all() as { name: string }[]).map((
      c,
    ) => c.name);
    const indexes = db.prepare("PRAGMA index_list(container)").all() as { name: string }[];
    db.close();
    for (const c of ["size", "digest", "platform"]) assert(cols.includes(c), cols.join(","));
    assert(indexes.some((i) => i.name === "ix_container_lookup"));
    const two = await h.file("two.sif", "two");
    ok(await h.cli("add", two, "--name", "c/two:v1"));
    assert.match(ok(await h.cli("inspect", "c/two:v1")).stdout, /"digest": "sha256:/);
  });
});

// Unit tests of the pieces above.
Deno.test("lock: a second taker waits for the release; a stale lock is broken", async () => {
  const { acquireLock, lockIsStale, readLockOwner } = await import("../core/lock.ts");
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "x.lock");
    const first = await acquireLock(path, { pollMs: 10 });
    assert.equal(readLockOwner(path)?.pid, Deno.pid);
    let waited = false;
    let secondHeld = false;
    const second = acquireLock(path, { pollMs: 10, onWait: () => waited = true }).then((l) => {
      secondHeld = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 100));
    assert(waited && !secondHeld, "the second taker did not wait");
    await first.release();
    const l2 = await second;
    assert(secondHeld);
    await l2.release();
    assert(!(await exists(path)), "release left the lock");
    // No leftovers of the link dance.
    assert.deepEqual(await tree(dir), []);

    // A lock nobody touches any more is stale after staleMs, whoever wrote it.
    await Deno.writeTextFile(path, JSON.stringify({ pid: 1, host: "other-host", time: 0 }));
    const long = new Date(Date.now() - 60_000);
    await Deno.utime(path, long, long);
    assert(lockIsStale(path, 30_000));
    const taken = await acquireLock(path, { staleMs: 30_000, heartbeatMs: 50, pollMs: 10 });
    assert.equal(readLockOwner(path)?.pid, Deno.pid);
    // The holder's heartbeat keeps its lock fresh.
    await new Promise((r) => setTimeout(r, 400));
    assert(!lockIsStale(path, 300));
    await taken.release();

    // A lock held by a live process elsewhere is waited for, and the wait can be interrupted.
    await Deno.writeTextFile(path, JSON.stringify({ pid: 1, host: "other-host", time: 0 }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("stop")), 100);
    await assert.rejects(() => acquireLock(path, { pollMs: 10, signal: ac.signal }), /stop/);
    assert.deepEqual(await tree(dir), ["x.lock"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lock: a lock of a dead process on this host is stale at once (where /proc is readable)", async () => {
  const { lockIsStale } = await import("../core/lock.ts");
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "x.lock");
    const child = new Deno.Command(Deno.execPath(), { args: ["eval", "0"] }).spawn();
    await child.status;
    await Deno.writeTextFile(
      path,
      JSON.stringify({ pid: child.pid, host: Deno.hostname(), time: Date.now() }),
    );
    assert(lockIsStale(path, 60_000), "a dead owner's lock is not stale");
    await Deno.writeTextFile(
      path,
      JSON.stringify({ pid: Deno.pid, host: Deno.hostname(), time: Date.now() }),
    );
    assert(!lockIsStale(path, 60_000), "a live owner's lock is stale");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweep: only old temp files go, at most once an hour unless forced, never through links", async () => {
  const { sweepStale } = await import("../db/sweep.ts");
  const dir = await Deno.makeTempDir();
  try {
    const storage = join(dir, "storage");
    const outside = join(dir, "outside");
    await Deno.mkdir(join(storage, "c", "i"), { recursive: true });
    await Deno.mkdir(outside);
    const victim = join(outside, ".x.sif.0a1b2c3d.tmp");
    await Deno.writeTextFile(victim, "outside");
    await Deno.symlink(outside, join(storage, "c", "link"));
    const temp = join(storage, "c", "i", ".v1.sif.0a1b2c3d.tmp");
    await Deno.writeTextFile(temp, "12345");
    const old = new Date(Date.now() - 3 * 86_400_000);
    await Deno.utime(temp, old, old);
    await Deno.utime(victim, old, old);
    const marker = join(dir, "marker");
    assert.deepEqual(sweepStale(storage, { marker, dryRun: true }).removed, [temp]);
    assert(await exists(temp), "a dry run removed a file");
    const r = sweepStale(storage, { marker });
    assert.deepEqual(r.removed, [temp]);
    assert.equal(r.bytes, 5);
    assert(await exists(victim));
    await Deno.writeTextFile(temp, "again");
    await Deno.utime(temp, old, old);
    assert.equal(sweepStale(storage, { marker }).skipped, true);
    assert.deepEqual(sweepStale(storage, { marker, force: true }).removed, [temp]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("names: components, tags and versions have length limits, checked before any path", async () => {
  const { NAME_LIMITS, parseImageName } = await import("../core/names.ts");
  parseImageName(`c/${"i".repeat(NAME_LIMITS.component)}`);
  assert.throws(() => parseImageName(`c/${"i".repeat(NAME_LIMITS.component + 1)}`), /too long/);
  parseImageName(`c/i:${"t".repeat(NAME_LIMITS.tag)}`);
  assert.throws(() => parseImageName(`c/i:${"t".repeat(NAME_LIMITS.tag + 1)}`), /too long/);
  // A sha512 version fits beside a long tag; tag and version share one file-name component.
  parseImageName(`c/i:${"t".repeat(100)}@sha512:${"a".repeat(128)}`);
  assert.throws(
    () => parseImageName(`c/i:${"t".repeat(128)}@sha512:${"a".repeat(128)}`),
    /too long/,
  );
  assert.throws(() => parseImageName(`${"c/".repeat(600)}i`), /too long/);
});

Deno.test("store step: a --no-cache file name is one safe segment in the current folder", async () => {
  const { localDestination, localFileName } = await import("../cli/operations/store.ts");
  const { parseImageName } = await import("../core/names.ts");
  const names = parseImageName("c/..-..-evil:latest");
  assert.equal(localFileName(names, "sif"), "..-..-evil_latest.sif");
  assert.equal(join(localDestination(names, "sif"), ".."), Deno.cwd());
  // A hand-made name that never passed the parser cannot escape either.
  const forged = { ...names, image: "../../x" };
  assert.throws(() => localFileName(forged, "sif"), /safe file name/);
  assert.throws(() => localFileName({ ...names, tag: "x/../../.bashrc" }, "sif"), /safe/);
  assert.throws(() => localFileName({ ...names, image: "a\\..\\b" }, "sif"), /safe/);
});
