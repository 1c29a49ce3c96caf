import { assert, assertEquals } from "./_assert.ts";
import { envFrom, parseBoolean, readBoolean, readSettings } from "../core/settings.ts";
import { Level, parseLevel } from "../core/log.ts";
import { ConfigError } from "../core/errors.ts";
import { assertThrows } from "./_assert.ts";

Deno.test("settings: defaults follow $HOME, as documented", () => {
  const s = readSettings(envFrom({ HOME: "/h" }));
  assertEquals(s.secretsPath, "/h/.sregistry");
  assertEquals(s.databaseDir, "/h/.singularity");
  assertEquals(s.databasePath, "/h/.singularity/sregistry.db");
  assertEquals(s.storage, "/h/.singularity/shub");
  assertEquals(s.cacheDir, "/h/.singularity");
  assertEquals(s.blobCacheDir, "/h/.singularity/cache/sregistry/blobs");
  assertEquals(s.credentialCacheRoot, "/h/.singularity/.sregistry");
  assertEquals(s.workers, 9);
  assertEquals(s.disableDatabase, false);
  assertEquals(s.httpsNoVerify, false);
  assertEquals(s.messageLevel, Level.INFO);
  assertEquals(s.client, undefined);
  assertEquals(s.warnings, []);
});

Deno.test("settings: every variable is read", () => {
  const s = readSettings(envFrom({
    HOME: "/h",
    SREGISTRY_CLIENT: "docker",
    SREGISTRY_CLIENT_SECRETS: "/x/secrets",
    SREGISTRY_DATABASE: "/db",
    SREGISTRY_STORAGE: "/st",
    SREGISTRY_DISABLE: "yes",
    SREGISTRY_DISABLE_CREDENTIAL_CACHE: "T",
    SREGISTRY_CREDENTIALS_CACHE: "/cc",
    SINGULARITY_CACHEDIR: "/cache",
    SREGISTRY_TMPDIR: "/tmpx",
    SREGISTRY_PYTHON_THREADS: "4",
    SREGISTRY_THUMBNAIL: "/t.png",
    SREGISTRY_HTTPS_NOVERIFY: "1",
    SREGISTRY_CA_FILE: "/ca.pem",
    SREGISTRY_SHELL: "python",
    MESSAGELEVEL: "DEBUG",
    SINGULARITY_COLORIZE: "false",
    SINGULARITY_VERSION: "3.11",
  }));
  assertEquals(s.client, "docker");
  assertEquals(s.secretsPath, "/x/secrets");
  assertEquals(s.databasePath, "/db/sregistry.db");
  assertEquals(s.storage, "/st");
  assertEquals(s.disableDatabase, true);
  assertEquals(s.disableCredentialCache, true);
  assertEquals(s.credentialCacheRoot, "/cc/.sregistry");
  assertEquals(s.cacheDir, "/cache");
  assertEquals(s.blobCacheDir, "/cache/sregistry/blobs");
  assertEquals(s.tmpDir, "/tmpx");
  assertEquals(s.workers, 4);
  assertEquals(s.thumbnail, "/t.png");
  assertEquals(s.httpsNoVerify, true);
  assertEquals(s.caFile, "/ca.pem");
  assertEquals(s.shell, "python");
  assertEquals(s.messageLevel, Level.DEBUG);
  assertEquals(s.colorize, false);
  assertEquals(s.singularityVersion, "3.11");
});

Deno.test("settings: booleans parse as the original's convert2boolean", () => {
  for (const v of ["yes", "true", "t", "1", "y", "TRUE", " Y "]) assert(parseBoolean(v), v);
  for (const v of ["no", "false", "0", "", "2", "on", undefined]) {
    assert(!parseBoolean(v), String(v));
  }
  assertEquals(
    readSettings(envFrom({ HOME: "/h", SINGULARITY_DISABLE_CACHE: "y" })).disableDatabase,
    true,
  );
  assertEquals(
    readSettings(envFrom({ HOME: "/h", SREGISTRY_CA_FILE: "", SSL_CERT_FILE: "/s.pem" })).caFile,
    "/s.pem",
  );
});

Deno.test("settings: invalid values fall back with a warning, never a crash", () => {
  const s = readSettings(
    envFrom({ HOME: "/h", SREGISTRY_PYTHON_THREADS: "abc", MESSAGELEVEL: "LOUD" }),
  );
  assertEquals(s.workers, 9);
  assertEquals(s.messageLevel, Level.INFO);
  assertEquals(s.warnings.length, 2);
  assert(s.warnings[0].includes('SREGISTRY_PYTHON_THREADS="abc"'));
  assert(s.warnings[1].includes('MESSAGELEVEL "LOUD"'));
  assertEquals(
    readSettings(envFrom({ HOME: "/h", SREGISTRY_WORKERS: "3", SREGISTRY_PYTHON_THREADS: "5" }))
      .workers,
    3,
  );
  assertEquals(readSettings(envFrom({ HOME: "/h", SREGISTRY_WORKERS: "0" })).workers, 9);
});

Deno.test("settings: no HOME and no explicit paths is a clear error", () => {
  const e = assertThrows(() => readSettings(envFrom({})), ConfigError);
  assert(e.message.includes("set HOME"));
  const s = readSettings(envFrom({
    SREGISTRY_DATABASE: "/d",
    SREGISTRY_STORAGE: "/s",
    SREGISTRY_CLIENT_SECRETS: "/c",
    SREGISTRY_CREDENTIALS_CACHE: "/cc",
    SINGULARITY_CACHEDIR: "/sc",
  }));
  assertEquals(s.storage, "/s");
});

Deno.test("MESSAGELEVEL: names and numbers (the original crashed on numbers)", () => {
  assertEquals(parseLevel(undefined), Level.INFO);
  assertEquals(parseLevel("debug"), Level.DEBUG);
  assertEquals(parseLevel("QUIET"), Level.QUIET);
  assertEquals(parseLevel("VERBOSE"), Level.VERBOSE3);
  assertEquals(parseLevel("verbose2"), Level.VERBOSE3);
  assertEquals(parseLevel("5"), 5);
  assertEquals(parseLevel("-2"), Level.WARNING);
  assertThrows(() => parseLevel("6"), ConfigError);
  assertThrows(() => parseLevel("LOUD"), ConfigError);
});

Deno.test("settings: a bad boolean is false with one warning naming it and the accepted values", () => {
  const s = readSettings(envFrom({
    HOME: "/h",
    SREGISTRY_DISABLE: "maybe",
    SREGISTRY_HTTPS_NOVERIFY: "on",
    SINGULARITY_DISABLE_CACHE: "No",
  }));
  assertEquals(s.disableDatabase, false);
  assertEquals(s.httpsNoVerify, false);
  assertEquals(s.warnings.length, 2, s.warnings.join("\n"));
  assert(s.warnings[0].startsWith('SREGISTRY_DISABLE="maybe" is not a boolean'), s.warnings[0]);
  assert(s.warnings[0].includes("yes, true, t, 1, y"), s.warnings[0]);
  assert(s.warnings[0].includes("no, false, f, 0, n"), s.warnings[0]);
  assert(s.warnings[1].startsWith('SREGISTRY_HTTPS_NOVERIFY="on"'), s.warnings[1]);
  const warnings: string[] = [];
  for (const v of ["", "0", "f", "N", " false "]) {
    assertEquals(readBoolean(envFrom({ X: v }), "X", warnings), false, v);
  }
  assertEquals(readBoolean(envFrom({ X: "Yes" }), "X", warnings), true);
  assertEquals(readBoolean(envFrom({}), "X", warnings), false);
  assertEquals(warnings, []);
});
