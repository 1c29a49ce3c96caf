import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { join } from "node:path";
import { ConfigError, FormatError } from "../core/errors.ts";
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
