import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { join } from "node:path";
import { ConfigError, FormatError } from "../core/errors.ts";
import {
  authFlow,
  clientSettings,
  credentialCachePath,
  DEFAULT_SECRETS,
  getSettings,
  openSecrets,
  readClientSecrets,
  updateClientSecrets,
} from "../core/secrets.ts";
import { envFrom } from "../core/settings.ts";

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

Deno.test("credential cache: follows the chosen client, can be disabled", () =>
  withDir((dir) => {
    const root = join(dir, ".singularity", ".sregistry");
    assertEquals(
      credentialCachePath({ root, disabled: false, client: "docker", env: envFrom({}) }),
      join(root, "docker"),
    );
    assertEquals(Deno.statSync(root).mode! & 0o777, 0o700);
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
  }));

Deno.test("authFlow prints the URL and returns the pasted code", async () => {
  let shown = "";
  const lines = ["  abc123 \n"];
  const code = await authFlow("https://login.example/x", {
    write: (t) => shown += t,
    readLine: () => Promise.resolve(lines.shift()),
  });
  assertEquals(code, "abc123");
  assert(shown.includes("Please go to this URL and login: https://login.example/x"));
  await assertRejects(
    () => authFlow("u", { write: () => {}, readLine: () => Promise.resolve(undefined) }),
    ConfigError,
  );
});
