import { assert, assertEquals, assertIncludes, assertThrows } from "./_assert.ts";
import { join } from "node:path";
import { ConfigError, FormatError, UsageError } from "../core/errors.ts";
import type { ClientFactory } from "../clients/types.ts";
import { variableName } from "../cli/commands/backend.ts";
import {
  DEFAULT_SECRETS,
  getSettings,
  openSecrets,
  readClientSecrets,
  updateClientSecrets,
} from "../core/secrets.ts";
import { clientSettings } from "../core/client_settings.ts";
import { credentialCachePath, openCredentialStore } from "../core/credentials.ts";
import { envFrom } from "../core/settings.ts";
import { runCli, spawnCli, tempHome } from "./_cli.ts";
import { makeData, startFaultServer } from "./servers/fault_server.ts";

async function withDir(fn: (dir: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("secrets: a missing file reads as the default and is not written", () =>
  withDir((dir) => {
    const s = openSecrets(join(dir, ".sregistry"));
    assertEquals(readClientSecrets(s), DEFAULT_SECRETS);
    assertEquals(s.exists(), false);
  }));

Deno.test("secrets: the original's file is read and written back compatibly, mode 0600", () =>
  withDir((dir) => {
    const path = join(dir, ".sregistry");
    // As sregistry-cli wrote it: indent 4, world-readable.
    const original = {
      hub: { base: "https://singularity-hub.org/api", SREGISTRY_SHELL: "python" },
      SREGISTRY_CLIENT: "registry",
      registry: { SREGISTRY_REGISTRY_TOKEN: "zzz", SREGISTRY_REGISTRY_BASE: "http://127.0.0.1" },
    };
    Deno.writeTextFileSync(path, JSON.stringify(original, null, 4));
    Deno.chmodSync(path, 0o644);
    const s = openSecrets(path);
    assertEquals(getSettings(s, "registry"), original.registry);
    assertEquals(getSettings(s, "unknown"), original); // the original's rule: the whole file
    updateClientSecrets(s, "registry", { SREGISTRY_REGISTRY_USERNAME: "me" });
    assertEquals(Deno.statSync(path).mode! & 0o777, 0o600);
    const back = JSON.parse(Deno.readTextFileSync(path));
    assertEquals(back.SREGISTRY_CLIENT, "registry");
    assertEquals(back.hub, original.hub);
    assertEquals(back.registry.SREGISTRY_REGISTRY_TOKEN, "zzz");
    assertEquals(back.registry.SREGISTRY_REGISTRY_USERNAME, "me");
    assert(Deno.readTextFileSync(path).includes('\n    "hub": {'), "indent 4 like the original");
    // No temporary files are left behind.
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), [".sregistry"]);
  }));

Deno.test("secrets: a malformed file names the file and position and is never overwritten", () =>
  withDir((dir) => {
    const path = join(dir, ".sregistry");
    const bad = '{"hub": {"base": "x",}}';
    Deno.writeTextFileSync(path, bad);
    const s = openSecrets(path);
    const e = assertThrows(() => s.read(), FormatError);
    assert(e.message.includes(path), e.message);
    assert(/position|line|column/.test(e.message), e.message);
    assertThrows(() => updateClientSecrets(s, "hub", { a: "b" }), FormatError);
    assertEquals(Deno.readTextFileSync(path), bad);
  }));

Deno.test("client settings: environment first, then the file; getAndUpdate persists", () =>
  withDir((dir) => {
    const s = openSecrets(join(dir, ".sregistry"));
    updateClientSecrets(s, "s3", { SREGISTRY_S3_BASE: "http://file" });
    const cs = clientSettings(s, "s3", envFrom({ SREGISTRY_S3_BUCKET: "from-env" }));
    assertEquals(cs.prefix, "SREGISTRY_S3_");
    assertEquals(cs.get("SREGISTRY_S3_BASE"), "http://file");
    assertEquals(cs.get("SREGISTRY_S3_BUCKET"), "from-env");
    assertEquals(cs.get("SREGISTRY_S3_NOPE", "dflt"), "dflt");
    assertEquals(cs.getAndUpdate("SREGISTRY_S3_BUCKET"), "from-env");
    assertEquals(getSettings(s, "s3").SREGISTRY_S3_BUCKET, "from-env");
    const e = assertThrows(() => cs.require("SREGISTRY_S3_SIGNATURE"), ConfigError);
    assert(e.message.includes("SREGISTRY_S3_SIGNATURE"));
    assertEquals(cs.requireSecrets("SREGISTRY_S3_BASE").SREGISTRY_S3_BASE, "http://file");
    assertThrows(() => cs.requireSecrets(["SREGISTRY_S3_MISSING"]), ConfigError);
    const other = clientSettings(s, "swift", envFrom({}));
    assertThrows(() => other.requireSecrets(), ConfigError);
    assertEquals(clientSettings(s, "google-drive", envFrom({})).prefix, "SREGISTRY_GOOGLE_DRIVE_");
  }));

Deno.test("client settings: require names every unset variable and the backend add fix", () =>
  withDir((dir) => {
    const s = openSecrets(join(dir, ".sregistry"));
    const cs = clientSettings(s, "s3", envFrom({ SREGISTRY_S3_BASE: "http://env" }));
    const e = assertThrows(
      () => cs.require(["SREGISTRY_S3_BASE", "SREGISTRY_S3_BUCKET", "SREGISTRY_S3_ZONE"]),
      ConfigError,
    );
    assert(e.message.includes("SREGISTRY_S3_BUCKET and SREGISTRY_S3_ZONE"), e.message);
    assert(!e.message.includes("SREGISTRY_S3_BASE and"), e.message);
    assert(e.message.includes('"sregistry backend add s3 SREGISTRY_S3_ZONE <value>"'), e.message);
    // what the environment gave was persisted on the way
    assertEquals(getSettings(s, "s3").SREGISTRY_S3_BASE, "http://env");
    const ok = clientSettings(s, "s3", envFrom({ SREGISTRY_S3_BUCKET: "b" }))
      .require(["SREGISTRY_S3_BASE", "SREGISTRY_S3_BUCKET"]);
    assertEquals(ok, { SREGISTRY_S3_BASE: "http://env", SREGISTRY_S3_BUCKET: "b" });
    const missing = assertThrows(() => cs.requireSecrets("SREGISTRY_S3_NOPE"), ConfigError);
    assert(missing.message.includes("sregistry backend add s3 SREGISTRY_S3_NOPE"), missing.message);
  }));

Deno.test("client settings: secret values are reported when read or saved, others never", () =>
  withDir((dir) => {
    const s = openSecrets(join(dir, ".sregistry"));
    updateClientSecrets(s, "acme", {
      SREGISTRY_ACME_TOKEN: "file-token-1",
      SREGISTRY_ACME_BASE: "b1",
    });
    const seen: string[] = [];
    const cs = clientSettings(s, "acme", envFrom({ SREGISTRY_ACME_PASSWORD: "env-pass-1" }), {
      secretNames: ["SREGISTRY_ACME_TOKEN", "SREGISTRY_ACME_PASSWORD"],
      onSecret: (v) => seen.push(v),
    });
    cs.get("SREGISTRY_ACME_BASE");
    cs.get("SREGISTRY_ACME_TOKEN");
    cs.get("SREGISTRY_ACME_PASSWORD");
    cs.update("SREGISTRY_ACME_TOKEN", "refreshed-2");
    assertEquals(seen, ["file-token-1", "env-pass-1", "refreshed-2"]);
  }));

Deno.test("credential cache path: follows the chosen client, can be disabled", () =>
  withDir((dir) => {
    const root = join(dir, ".singularity", ".sregistry");
    assertEquals(
      credentialCachePath({ root, disabled: false, client: "docker", env: envFrom({}) }),
      join(root, "docker"),
    );
    assertEquals(
      credentialCachePath({ root, disabled: true, client: "docker", env: envFrom({}) }),
      undefined,
    );
    assertEquals(
      credentialCachePath({
        root,
        disabled: false,
        client: "google-drive",
        env: envFrom({ SREGISTRY_DISABLE_CREDENTIAL_GOOGLE_DRIVE: "false" }),
      }),
      undefined,
    );
    // a name that could leave the folder is refused
    assertThrows(
      () => credentialCachePath({ root, disabled: false, client: "../x", env: envFrom({}) }),
      ConfigError,
    );
  }));

Deno.test("credential store: JSON per key, atomic, 0600 in a 0700 folder, one file per client", () =>
  withDir((dir) => {
    const root = join(dir, ".singularity", ".sregistry");
    const open = (client: string) =>
      openCredentialStore({ root, client, disabled: false, env: envFrom({}) });
    const drive = open("google-drive");
    assertEquals(drive.get("refresh_token"), undefined);
    assertEquals([...Deno.readDirSync(dir)].length, 0, "reading creates nothing");
    drive.set("refresh_token", "r-123");
    drive.set("expires", { at: 42 });
    assertEquals(drive.get("refresh_token"), "r-123");
    assertEquals(drive.get<{ at: number }>("expires")?.at, 42);
    const file = join(root, "google-drive");
    assertEquals(drive.path, file);
    assertEquals(Deno.statSync(file).mode! & 0o777, 0o600);
    assertEquals(Deno.statSync(root).mode! & 0o777, 0o700);
    assertEquals(JSON.parse(Deno.readTextFileSync(file)), {
      refresh_token: "r-123",
      expires: { at: 42 },
    });
    // another client's store cannot see it, whatever the key
    const dropbox = open("dropbox");
    assertEquals(dropbox.get("refresh_token"), undefined);
    assertEquals(dropbox.get("../google-drive"), undefined);
    drive.delete("refresh_token");
    assertEquals(drive.get("refresh_token"), undefined);
    assertEquals(drive.get("expires"), { at: 42 });
    assertEquals([...Deno.readDirSync(root)].map((e) => e.name), ["google-drive"], "no temp files");
    // a folder made world-readable by an older tool is tightened on the next write
    Deno.chmodSync(root, 0o755);
    drive.set("a", 1);
    assertEquals(Deno.statSync(root).mode! & 0o777, 0o700);
  }));

Deno.test("credential store: disabled, reads find nothing and writes do nothing, said once", () =>
  withDir((dir) => {
    const root = join(dir, ".sregistry");
    const lines: string[] = [];
    const store = openCredentialStore({
      root,
      client: "dropbox",
      disabled: true,
      env: envFrom({}),
      debug: (m) => lines.push(m),
    });
    assertEquals(store.path, undefined);
    store.set("token", "t");
    store.delete("token");
    assertEquals(store.get("token"), undefined);
    assertEquals(lines.length, 1);
    assert(lines[0].includes("SREGISTRY_DISABLE_CREDENTIAL_CACHE"), lines[0]);
    assertEquals([...Deno.readDirSync(dir)].length, 0);
  }));

// --- issue 10, item 10: the secrets file is a regular private file, symlinks are written through ---

/** Run the CLI, killing it after `ms` so that a hang fails the test instead of stalling the suite. */
async function runBounded(args: string[], env: Record<string, string>, ms = 30_000) {
  const child = spawnCli(args, { env });
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  try {
    const { code, stdout, stderr } = await child.output();
    const dec = new TextDecoder();
    return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("cli secrets: backend add writes through a symlinked secrets file to its target", async () => {
  const home = await tempHome();
  try {
    const link = home.env.SREGISTRY_CLIENT_SECRETS;
    const target = join(home.dir, "dotfiles", "sregistry.json");
    await Deno.mkdir(join(home.dir, "dotfiles"));
    Deno.writeTextFileSync(target, JSON.stringify({ hub: { SREGISTRY_HUB_BASE: "old" } }), {
      mode: 0o600,
    });
    Deno.symlinkSync("dotfiles/sregistry.json", link);
    const r = await runCli(["backend", "add", "oras", "NOHTTPS", "true"], { env: home.env });
    assertEquals(r.code, 0, r.stderr);
    assert(Deno.lstatSync(link).isSymlink, "the link is kept");
    const data = JSON.parse(Deno.readTextFileSync(target));
    assertEquals(data.oras, { SREGISTRY_ORAS_NOHTTPS: "true" });
    assertEquals(data.hub, { SREGISTRY_HUB_BASE: "old" });
    assertEquals(Deno.statSync(target).mode! & 0o777, 0o600);
    assertEquals([...Deno.readDirSync(join(home.dir, "dotfiles"))].length, 1);
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli secrets: a dangling symlink is refused on write, with the target named", async () => {
  const home = await tempHome();
  try {
    const link = home.env.SREGISTRY_CLIENT_SECRETS;
    Deno.symlinkSync(join(home.dir, "nowhere", "s.json"), link);
    const r = await runCli(["backend", "add", "oras", "NOHTTPS", "true"], { env: home.env });
    assertEquals(r.code, 2, r.stderr);
    assertIncludes(r.stderr, "does not exist");
    assertIncludes(r.stderr, join(home.dir, "nowhere", "s.json"));
    assert(Deno.lstatSync(link).isSymlink);
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli secrets: a secrets file others can read warns once with the chmod fix", async () => {
  const home = await tempHome();
  try {
    const path = home.env.SREGISTRY_CLIENT_SECRETS;
    for (const mode of [0o644, 0o666]) {
      Deno.writeTextFileSync(path, JSON.stringify({ SREGISTRY_CLIENT: "oras", oras: {} }));
      Deno.chmodSync(path, mode);
      const r = await runCli(["backend", "ls"], { env: home.env });
      assertEquals(r.code, 0, r.stderr);
      assertEquals(r.stderr.split(`chmod 600 ${path}`).length - 1, 1, r.stderr);
      assertIncludes(r.stderr, `mode 0${mode.toString(8)}`);
    }
    Deno.chmodSync(path, 0o600);
    const quiet = await runCli(["backend", "ls"], { env: home.env });
    assertEquals(quiet.stderr.includes("chmod"), false, quiet.stderr);
  } finally {
    await home.cleanup();
  }
});

Deno.test("cli secrets: a FIFO or a device as the secrets file is refused, not read", async () => {
  const home = await tempHome();
  try {
    const fifo = join(home.dir, "fifo");
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert(mk.success, "mkfifo");
    for (const [path, kind] of [[fifo, "a FIFO"], ["/dev/null", "a character device"]]) {
      const env = { ...home.env, SREGISTRY_CLIENT_SECRETS: path };
      const started = Date.now();
      const r = await runBounded(["backend", "ls"], env);
      assert(Date.now() - started < 25_000, `backend ls hung on ${kind}`);
      assertEquals(r.code, 2, r.stderr);
      assertIncludes(r.stderr, `is ${kind}: it must be a regular file`);
      // A symlink to it is no way around the check.
      const link = join(home.dir, "link");
      await Deno.remove(link).catch(() => {});
      Deno.symlinkSync(path, link);
      const l = await runBounded(["backend", "add", "oras", "NOHTTPS", "1"], {
        ...env,
        SREGISTRY_CLIENT_SECRETS: link,
      });
      assertEquals(l.code, 2, l.stderr);
    }
    assert(Deno.statSync("/dev/null").isCharDevice, "/dev/null is untouched");
  } finally {
    await home.cleanup();
  }
});

Deno.test("credential store: symlinks are written through, FIFOs refused, open modes warned", async () => {
  await withDir(async (dir) => {
    const root = join(dir, ".sregistry");
    await Deno.mkdir(root, { mode: 0o700 });
    const target = join(dir, "elsewhere.json");
    Deno.writeTextFileSync(target, JSON.stringify({ a: 1 }));
    Deno.chmodSync(target, 0o644);
    Deno.symlinkSync(target, join(root, "oras"));
    const warnings: string[] = [];
    const store = openCredentialStore({
      root,
      client: "oras",
      disabled: false,
      env: envFrom({}),
      warn: (m) => warnings.push(m),
    });
    assertEquals(store.get("a"), 1);
    assertEquals(store.get("a"), 1);
    assertEquals(warnings.length, 1, warnings.join("\n"));
    assert(warnings[0].includes(`chmod 600 ${join(root, "oras")}`), warnings[0]);
    store.set("b", 2);
    assert(Deno.lstatSync(join(root, "oras")).isSymlink);
    assertEquals(JSON.parse(Deno.readTextFileSync(target)), { a: 1, b: 2 });
    assertEquals(Deno.statSync(target).mode! & 0o777, 0o600);

    const fifo = join(root, "docker");
    assert((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
    const other = openCredentialStore({
      root,
      client: "docker",
      disabled: false,
      env: envFrom({}),
    });
    for (const op of [() => other.get("x"), () => other.set("x", 1)]) {
      const e = assertThrows(op, ConfigError);
      assert(e.message.includes("is a FIFO"), e.message);
    }
    assert(Deno.lstatSync(fifo).isFifo, "the FIFO is left alone");
  });
});

// --- issue 10, item 18: one variable name per client, its aliases mapping onto it ---

Deno.test("cli backend add: http and https store SREGISTRY_HTTP_* and the client reads it", async () => {
  const home = await tempHome();
  const server = startFaultServer();
  try {
    await server.setFile("/img.sif", makeData(1000));
    const path = home.env.SREGISTRY_CLIENT_SECRETS;
    const add = (...args: string[]) => runCli(["backend", "add", ...args], { env: home.env });
    assertEquals((await add("http", "TOKEN", "tok-one")).code, 0);
    assertEquals(JSON.parse(Deno.readTextFileSync(path)).https, {
      SREGISTRY_HTTP_TOKEN: "tok-one",
    });
    for (const name of ["SREGISTRY_HTTP_TOKEN", "SREGISTRY_HTTPS_TOKEN", "sregistry_http_token"]) {
      const r = await add("--force", "https", name, "tok-two");
      assertEquals(r.code, 0, r.stderr);
      assertEquals(JSON.parse(Deno.readTextFileSync(path)).https, {
        SREGISTRY_HTTP_TOKEN: "tok-two",
      });
    }
    // Without --force the same setting under another spelling is "already set".
    assertEquals((await add("https", "SREGISTRY_HTTPS_TOKEN", "x")).code, 2);
    // A name of another client, or no client's at all, is refused.
    const other = await add("https", "SREGISTRY_DOCKER_USERNAME", "u");
    assertEquals(other.code, 2);
    assertIncludes(other.stderr, "docker");
    assertEquals((await add("http", "SREGISTRY_NOPE_X", "u")).code, 2);
    assertEquals(Object.keys(JSON.parse(Deno.readTextFileSync(path)).https), [
      "SREGISTRY_HTTP_TOKEN",
    ]);
    // A declared name that does not share the client's prefix stays as it is.
    assertEquals((await add("docker", "SREGISTRY_DOCKERHUB_SECRETS", "/x")).code, 0);
    assertEquals(JSON.parse(Deno.readTextFileSync(path)).docker, {
      SREGISTRY_DOCKERHUB_SECRETS: "/x",
    });
    // The http client reads the stored token.
    const pull = await runCli(["pull", "--no-cache", `${server.url}/img.sif`], {
      env: home.env,
      cwd: home.dir,
    });
    assertEquals(pull.code, 0, pull.stderr);
    const sent = server.requests.filter((r) => r.path === "/img.sif").map((r) => r.authorization);
    assert(sent.length > 0 && sent.every((a) => a === "Bearer tok-two"), String(sent));
    // rm takes every spelling too.
    const rm = await runCli(["backend", "rm", "http", "SREGISTRY_HTTPS_TOKEN"], { env: home.env });
    assertEquals(rm.code, 0, rm.stderr);
    assertEquals(JSON.parse(Deno.readTextFileSync(path)).https, {});
  } finally {
    await server.close();
    await home.cleanup();
  }
});

Deno.test("backend variable names: the prefix comes from the declared settings", () => {
  const factory = (scheme: string, names: string[], aliases?: string[]): ClientFactory => ({
    scheme,
    aliases,
    description: scheme,
    settings: names.map((name) => ({ name, description: name })),
    create: () => ({ name: scheme }),
  });
  const factories = [
    factory("https", ["SREGISTRY_HTTP_TOKEN", "SREGISTRY_HTTP_USERNAME"], ["http"]),
    factory("google-build", ["SREGISTRY_GOOGLE_BUILD_CACHE", "SREGISTRY_GOOGLE_PROJECT"]),
    factory("aws", ["SREGISTRY_AWS_ID", "AWS_ACCESS_KEY_ID"]),
    factory("hub", [], ["shub"]),
  ];
  const name = (c: string, v: string) => variableName(c, v, factories);
  assertEquals(name("http", "token"), "SREGISTRY_HTTP_TOKEN");
  assertEquals(name("https", "SREGISTRY_HTTPS_TOKEN"), "SREGISTRY_HTTP_TOKEN");
  assertEquals(name("google-build", "cache"), "SREGISTRY_GOOGLE_BUILD_CACHE");
  assertEquals(name("google-build", "SREGISTRY_GOOGLE_PROJECT"), "SREGISTRY_GOOGLE_PROJECT");
  assertEquals(name("aws", "aws_access_key_id"), "AWS_ACCESS_KEY_ID");
  assertEquals(name("hub", "SREGISTRY_SHUB_BASE"), "SREGISTRY_HUB_BASE");
  assertThrows(() => name("hub", "SREGISTRY_AWS_ID"), UsageError);
  assertThrows(() => name("https", "SREGISTRY_GOOGLE_BUILD_CACHE"), UsageError);
});
