import { assert, assertEquals, assertIncludes } from "./_assert.ts";
import { join } from "node:path";
import { VERSION } from "../core/version.ts";
import { runCli, tempHome } from "./_cli.ts";

Deno.test("cli: version, --version, no arguments", async () => {
  const home = await tempHome();
  try {
    const v = await runCli(["version"], { env: home.env });
    assertEquals([v.code, v.stdout], [0, `${VERSION}\n`]);
    const vj = await runCli(["version", "--json"], { env: home.env });
    assertEquals(JSON.parse(vj.stdout).version, VERSION);
    const V = await runCli(["--version"], { env: home.env });
    assertEquals([V.code, V.stdout.trim()], [0, VERSION]);
    const none = await runCli([], { env: home.env });
    assertEquals(none.code, 0);
    assertIncludes(none.stdout, `Singularity Registry Global Client v${VERSION}`);
    assertIncludes(none.stdout, "Exit codes:");
    // Without NO_COLOR commander looks at more colour variables: they must be readable.
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
    // hub is the default client and cannot pull yet: exit 7.
    const hub = await runCli(["pull", "vsoch/hello-world"], { env: home.env });
    assertEquals(hub.code, 7, hub.stderr);
    assertIncludes(hub.stderr, "The hub client cannot pull images");
    const json = await runCli(["--json", "search", "shub://x"], { env: home.env });
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
    assertIncludes(r.stdout, "There are 1 clients found in secrets.");
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
    assertEquals(bad.stdout, `${VERSION}\n`);
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
