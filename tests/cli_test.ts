import { assert, assertEquals, assertIncludes } from "./_assert.ts";
import { join } from "node:path";
import { VERSION } from "../core/version.ts";
import { runCli, tempHome } from "./_cli.ts";

const existsSync = (path: string): boolean => {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
};

Deno.test("cli: version, --version, no arguments", async () => {
  const home = await tempHome();
  try {
    const v = await runCli(["version"], { env: home.env });
    assertEquals([v.code, v.stdout.split("\n")[0]], [0, `sregistry ${VERSION}`]);
    assertIncludes(v.stdout, `deno ${Deno.version.deno}`);
    assert(/\nsqlite \d+\.\d+\.\d+\n/.test(v.stdout), v.stdout);
    const vj = await runCli(["version", "--json"], { env: home.env });
    const versions = JSON.parse(vj.stdout);
    assertEquals([versions.version, versions.deno], [VERSION, Deno.version.deno]);
    assert(/^\d+\.\d+\.\d+$/.test(versions.sqlite), vj.stdout);
    const V = await runCli(["--version"], { env: home.env });
    assertEquals([V.code, V.stdout.trim()], [0, VERSION]);
    const none = await runCli([], { env: home.env });
    assertEquals(none.code, 0);
    assertIncludes(none.stdout, `Singularity Registry Global Client v${VERSION}`);
    assertIncludes(none.stdout, "Exit codes:");
    // Without NO_COLOR more colour variables are looked at: they must be readable.
    for (
      const env of [home.env, { ...home.env, NO_COLOR: "" }, {
        ...home.env,
        NO_COLOR: "",
        FORCE_COLOR: "0",
      }]
    ) {
      const help = await runCli(["pull", "--help"], { env });
      assertEquals(help.code, 0, help.stderr);
      assertIncludes(help.stdout, "Examples:");
      const top = await runCli(["--help"], { env });
      assertEquals(top.code, 0, top.stderr);
      assertIncludes(top.stdout, "Exit codes:");
    }
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli: an unknown flag or command is a usage error (exit 2), unlike the original", async () => {
  const home = await tempHome();
  try {
    const flag = await runCli(["images", "--bogus"], { env: home.env });
    assertEquals(flag.code, 2);
    assertEquals(flag.stderr.trim().split("\n").length, 1, flag.stderr);
    assert(flag.stderr.startsWith("ERROR "), flag.stderr);
    assertIncludes(flag.stderr, "--bogus");
    const cmd = await runCli(["frobnicate"], { env: home.env });
    assertEquals(cmd.code, 2);
    const missing = await runCli(["push", "x.sif"], { env: home.env });
    assertEquals(missing.code, 2);
    assertIncludes(missing.stderr, "--name");
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli: client selection and unsupported capabilities", async () => {
  const home = await tempHome();
  try {
    const unknown = await runCli(["pull", "frob://x/y"], { env: home.env });
    assertEquals(unknown.code, 2);
    assertIncludes(unknown.stderr, 'Unknown client "frob"');
    assertIncludes(unknown.stderr, "hub");
    // hub is the default client and cannot delete: exit 7.
    const hub = await runCli(["delete", "--force", "vsoch/hello-world"], { env: home.env });
    assertEquals(hub.code, 7, hub.stderr);
    assertIncludes(hub.stderr, "The hub client cannot delete images");
    const json = await runCli(["--json", "share", "shub://x"], { env: home.env });
    assertEquals(json.code, 7);
    const err = JSON.parse(json.stderr);
    assertEquals(err.error.kind, "unsupported");
    assertEquals(err.error.exitCode, 7);
    // record <uri> asks the client; one without record is exit 7, before any network I/O.
    const rec = await runCli(["record", "https://127.0.0.1:9/x.sif"], { env: home.env });
    assertEquals(rec.code, 7, rec.stderr);
    assertIncludes(rec.stderr, "The https client cannot record images");
    // A bad --name is exit 2 before anything is fetched (port 9 would be a network error).
    const bad = await runCli(["pull", "--name", "bad name!", "https://127.0.0.1:9/x.sif"], {
      env: home.env,
    });
    assertEquals(bad.code, 2, bad.stderr);
    assertIncludes(bad.stderr, "letters, digits, . _ -");
    // SREGISTRY_CLIENT chooses the client when the name has no scheme.
    const env = await runCli(["pull", "x/y"], { env: { ...home.env, SREGISTRY_CLIENT: "nope" } });
    assertEquals(env.code, 2);
    assertIncludes(env.stderr, 'Unknown client "nope"');
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli: backend manages the secrets file with the original's bugs fixed", async () => {
  const home = await tempHome();
  const secrets = home.env.SREGISTRY_CLIENT_SECRETS;
  const cli = (...args: string[]) => runCli(["backend", ...args], { env: home.env });
  try {
    assertEquals((await cli()).code, 2);
    assertEquals((await cli("frob")).code, 2);
    assertEquals((await cli("activate")).code, 2);
    assertEquals((await cli("activate", "nonsense")).code, 2);

    let r = await cli("add", "hub", "token", "sup3rs3cret");
    assertEquals(r.code, 0, r.stderr);
    assertIncludes(r.stdout, "SREGISTRY_HUB_TOKEN");
    assert(!r.stdout.includes("sup3rs3cret"), "tokens are never printed");
    assertEquals(Deno.statSync(secrets).mode! & 0o777, 0o600);
    assertEquals(JSON.parse(Deno.readTextFileSync(secrets)).hub.SREGISTRY_HUB_TOKEN, "sup3rs3cret");
    r = await cli("add", "hub", "TOKEN", "other");
    assertEquals(r.code, 2);
    assertIncludes(r.stderr, "--force");
    assertEquals((await cli("add", "hub", "TOKEN", "other", "--force")).code, 0);

    r = await cli("activate", "shub");
    assertEquals([r.code, r.stdout.trim()], [0, "[activate] hub"]);
    const before = Deno.readTextFileSync(secrets);
    r = await cli("status");
    assertIncludes(r.stdout, "There is 1 client found in secrets.");
    assertIncludes(r.stdout, "active: hub");
    assertEquals(Deno.readTextFileSync(secrets), before, "status does not rewrite the file");
    r = await runCli(["--json", "backend", "status"], { env: home.env });
    assertEquals(JSON.parse(r.stdout).clients, ["hub"]);

    r = await cli("ls", "hub");
    assertEquals(r.code, 0);
    assert(!r.stdout.includes("other"), "ls hides credential values");
    assertEquals((await cli("ls", "nope")).code, 3);

    // The original left lower-case names in place.
    r = await cli("rm", "hub", "token");
    assertEquals(r.code, 0, r.stderr);
    assertEquals(JSON.parse(Deno.readTextFileSync(secrets)).hub.SREGISTRY_HUB_TOKEN, undefined);
    assertEquals((await cli("rm", "hub", "token")).code, 3);

    assertEquals((await cli("deactivate")).code, 0);
    assertEquals(JSON.parse(Deno.readTextFileSync(secrets)).SREGISTRY_CLIENT, undefined);
    assertEquals((await cli("delete", "hub")).code, 0);
    assertEquals((await cli("delete", "hub")).code, 3);
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli: a malformed secrets file is an error naming it, and is left alone", async () => {
  const home = await tempHome();
  try {
    const path = home.env.SREGISTRY_CLIENT_SECRETS;
    Deno.writeTextFileSync(path, "{ not json");
    const r = await runCli(["backend", "add", "hub", "base", "x"], { env: home.env });
    assertEquals(r.code, 1);
    assertIncludes(r.stderr, path);
    assertEquals(Deno.readTextFileSync(path), "{ not json");
    // Commands that do not need the file still work.
    assertEquals((await runCli(["version"], { env: home.env })).code, 0);
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli: MESSAGELEVEL numbers work and bad values warn instead of crashing", async () => {
  const home = await tempHome();
  try {
    const r = await runCli(["version"], { env: { ...home.env, MESSAGELEVEL: "5" } });
    assertEquals(r.code, 0);
    const bad = await runCli(["version"], {
      env: { ...home.env, MESSAGELEVEL: "LOUD", SREGISTRY_PYTHON_THREADS: "abc" },
    });
    assertEquals(bad.code, 0);
    assertIncludes(bad.stderr, "WARNING");
    assertIncludes(bad.stderr, "SREGISTRY_PYTHON_THREADS");
    assertEquals(bad.stdout.split("\n")[0], `sregistry ${VERSION}`);
    void join;
  } finally {
    await home.cleanup();
  }
});

Deno.test("pull target: unique per call, hidden, in the given folder; resumable stable", async () => {
  const { pullTarget } = await import("../cli/operations/pull.ts");
  const a = pullTarget("/s/.staging", "docker://alpine:3.20", "linux/arm64");
  const b = pullTarget("/s/.staging", "docker://alpine:3.20", "linux/arm64");
  assert(a.path !== b.path, "two pulls never share a staging file");
  assertEquals(a.resumable, b.resumable);
  assert(a.resumable !== pullTarget("/s/.staging", "docker://alpine:3.20").resumable);
  assert(a.path.startsWith("/s/.staging/.alpine_3.20."), a.path);
  assert(a.path.endsWith(".partial-pull"), a.path);
  assertIncludes(a.path, `.${Deno.pid}-`);
  assertEquals(a.platform, "linux/arm64");
  // Nothing in the image string can leave the folder.
  const evil = pullTarget("/s/.staging", "https://h/../../etc/passwd");
  assert(!evil.path.slice("/s/.staging/".length).includes("/"), evil.path);
});

Deno.test("cli: usage errors honour --json anywhere on the line, exit 2, with suggestions", async () => {
  const home = await tempHome();
  try {
    const cases: [string[], string][] = [
      [["--json", "imags"], 'Unknown command "imags" (did you mean images?)'],
      [["images", "--jsno", "--json"], 'Unknown option "--jsno"'],
      [["pull", "--forse", "x", "--json"], "did you mean --force?"],
      [["get", "--json"], "Missing argument <query>"],
      [["push", "x.sif", "--json"], "Missing option --name"],
      [["pull", "x", "--name", "--json"], "Option --name needs a value"],
      [["version", "extra", "--json"], "Too many arguments"],
      [["images", "--json=yes", "--json"], "takes no value"],
      [["--bogus", "--json", "images"], 'Unknown option "--bogus"'],
    ];
    for (const [args, text] of cases) {
      const r = await runCli(args, { env: home.env });
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertEquals(r.stdout, "");
      const err = JSON.parse(r.stderr).error;
      assertEquals([err.kind, err.exitCode], ["usage", 2], r.stderr);
      assertIncludes(err.message, text);
    }
    const plain = await runCli(["imags"], { env: home.env });
    assertEquals(plain.code, 2);
    assertEquals(plain.stderr.trim().split("\n").length, 1, plain.stderr);
    assert(plain.stderr.startsWith("ERROR Unknown command"), plain.stderr);
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli: help per command lists examples and the global flags; global flags go anywhere", async () => {
  const home = await tempHome();
  try {
    for (const args of [["images", "-h"], ["help", "images"], ["-h", "images"]]) {
      const r = await runCli(args, { env: home.env });
      assertEquals(r.code, 0, r.stderr);
      assertIncludes(r.stdout, "Usage: sregistry images [query...]");
      assertIncludes(r.stdout, "Examples:\n  sregistry images");
      assertIncludes(r.stdout, "--json");
      assertIncludes(r.stdout, "-q, --quiet");
    }
    const cache = await runCli(["cache", "--help"], { env: home.env });
    assertIncludes(cache.stdout, "sregistry cache prune --dry-run");
    assertEquals((await runCli(["-V"], { env: home.env })).stdout.trim(), VERSION);
    const before = await runCli(["--json", "version"], { env: home.env });
    const after = await runCli(["version", "--json"], { env: home.env });
    assertEquals(JSON.parse(before.stdout).version, VERSION);
    assertEquals(before.stdout, after.stdout);
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli: a bad boolean warns once, naming the variable and the accepted values", async () => {
  const home = await tempHome();
  try {
    const r = await runCli(["images"], { env: { ...home.env, SREGISTRY_DISABLE: "maybe" } });
    assertEquals(r.code, 0, r.stderr);
    const warnings = r.stderr.split("\n").filter((l) => l.includes("SREGISTRY_DISABLE"));
    assertEquals(warnings.length, 1, r.stderr);
    assertIncludes(warnings[0], 'SREGISTRY_DISABLE="maybe" is not a boolean');
    assertIncludes(warnings[0], "yes, true, t, 1, y");
    assertIncludes(warnings[0], "using false");
    // False, so the catalog is on: images works on an empty catalog.
    assertIncludes(r.stderr, "No images in the catalog");
    const ok = await runCli(["version"], { env: { ...home.env, SREGISTRY_DISABLE: "No" } });
    assertEquals(ok.stderr, "");
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli: backend hints: no file means nothing configured, variable names are checked, plurals", async () => {
  const home = await tempHome();
  const cli = (...args: string[]) => runCli(["backend", ...args], { env: home.env });
  try {
    const ls = await runCli(["--json", "backend", "ls"], { env: home.env });
    assertEquals(ls.code, 0, ls.stderr);
    const hub = JSON.parse(ls.stdout).find((r: { client: string }) => r.client === "hub");
    assertEquals(hub.configured, false, "the built-in defaults are not a configuration");
    assertIncludes((await cli("status")).stdout, "There are no clients found in secrets.");

    const bad = await cli("add", "oras", "my var", "x");
    assertEquals(bad.code, 2);
    assertIncludes(bad.stderr, '"my var" is not allowed: use letters, digits and underscores');
    let exists = true;
    try {
      Deno.statSync(home.env.SREGISTRY_CLIENT_SECRETS);
    } catch {
      exists = false;
    }
    assertEquals(exists, false, "a rejected add writes nothing");

    assertEquals((await cli("add", "oras", "nohttps", "true")).code, 0);
    assertEquals((await cli("add", "docker", "base_url", "http://x")).code, 0);
    assertIncludes((await cli("status")).stdout, "There are 2 clients found in secrets.");
    const ls2 = JSON.parse((await runCli(["--json", "backend", "ls"], { env: home.env })).stdout);
    assertEquals(
      ls2.filter((r: { configured: boolean }) => r.configured).map((r: { client: string }) =>
        r.client
      ),
      ["docker", "oras"],
    );
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli: cache ls and prune: old blobs and stale partials go, fresh ones stay; --dry-run keeps all", async () => {
  const home = await tempHome();
  try {
    const dir = join(home.env.SINGULARITY_CACHEDIR, "sregistry", "blobs", "sha256");
    Deno.mkdirSync(dir, { recursive: true });
    const old = new Date(Date.now() - 2 * 24 * 3600_000);
    const files = {
      oldBlob: join(dir, "a".repeat(64)),
      freshBlob: join(dir, "b".repeat(64)),
      oldPartial: join(dir, `${"c".repeat(64)}.partial`),
      oldState: join(dir, `${"c".repeat(64)}.partial.json`),
      freshPartial: join(dir, `${"d".repeat(64)}.partial`),
      storageTmp: join(home.env.SREGISTRY_STORAGE, "demo", "x", "1.0.sif.partial"),
      oldLegacyBlob: join(home.env.SREGISTRY_STORAGE, ".blobs", "sha256", "e".repeat(64)),
    };
    Deno.mkdirSync(join(home.env.SREGISTRY_STORAGE, ".blobs", "sha256"), { recursive: true });
    Deno.mkdirSync(join(home.env.SREGISTRY_STORAGE, "demo", "x"), { recursive: true });
    for (const [k, f] of Object.entries(files)) {
      Deno.writeTextFileSync(f, "x".repeat(1500));
      if (k.startsWith("old") || k === "storageTmp") Deno.utimeSync(f, old, old);
    }
    const ls = await runCli(["cache", "ls"], { env: home.env });
    assertEquals(ls.code, 0, ls.stderr);
    assertIncludes(ls.stdout, `sha256:${"a".repeat(64)}`);
    assertIncludes(ls.stdout, "1.5 KiB");
    assertIncludes(ls.stdout, "7 files, 10.3 KiB");
    const lsj = JSON.parse((await runCli(["cache", "ls", "--json"], { env: home.env })).stdout);
    assertEquals(lsj.entries.length, 7);
    assertEquals(lsj.totalBytes, 10500);

    const dry = await runCli(["cache", "prune", "--dry-run", "--json"], { env: home.env });
    assertEquals(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout);
    assertEquals(planned.dryRun, true);
    const expected = [
      files.oldBlob,
      files.oldPartial,
      files.oldState,
      files.storageTmp,
      files.oldLegacyBlob,
    ].sort();
    assertEquals(planned.removed.map((e: { path: string }) => e.path).sort(), expected);
    for (const f of Object.values(files)) Deno.statSync(f); // all still there

    const pr = await runCli(["cache", "prune"], { env: home.env });
    assertEquals(pr.code, 0, pr.stderr);
    assertIncludes(pr.stderr, "Removed 5 files");
    for (const [k, f] of Object.entries(files)) {
      let present = true;
      try {
        Deno.statSync(f);
      } catch {
        present = false;
      }
      assertEquals(present, k.startsWith("fresh"), k);
    }
    assertEquals((await runCli(["cache", "frob"], { env: home.env })).code, 2);
    assertEquals((await runCli(["cache"], { env: home.env })).code, 2);
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli: cache prune also removes stale staging files of interrupted pulls", async () => {
  const home = await tempHome();
  try {
    const staging = join(home.env.SREGISTRY_STORAGE, ".staging");
    Deno.mkdirSync(staging, { recursive: true });
    const old = new Date(Date.now() - 2 * 24 * 3600_000);
    // An interrupted pull of another process (pid 1 is never ours): stale after a day.
    const stale = join(staging, ".hello_1.0.1-0badcafe.partial-pull.partial");
    const fresh = join(staging, ".hello_2.0.1-0decafe0.partial-pull.partial");
    Deno.writeTextFileSync(stale, "x".repeat(2048));
    Deno.writeTextFileSync(fresh, "y".repeat(10));
    Deno.utimeSync(stale, old, old);
    const dry = await runCli(["--json", "cache", "prune", "--dry-run"], { env: home.env });
    assertEquals(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout).removed.map((e: { path: string }) => e.path);
    assert(planned.includes(stale), dry.stdout);
    assert(!planned.includes(fresh), dry.stdout);
    Deno.statSync(stale); // --dry-run removes nothing
    const pr = await runCli(["cache", "prune"], { env: home.env });
    assertEquals(pr.code, 0, pr.stderr);
    assertEquals(existsSync(stale), false, "the stale staging file is gone");
    assertEquals(existsSync(fresh), true, "a fresh one stays");
  } finally {
    await home.cleanup();
  }
});
