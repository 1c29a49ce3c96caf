/**
 * dropbox:// beyond the conformance suite, through the CLI against the strict fake: upload
 * sessions resuming on `incorrect_offset`, search following the cursor, shared-link reuse, and an
 * expired access token refreshed with the refresh token from the credential store.
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { runCli, tempHome } from "./_cli.ts";
import { FAST_ENV } from "./conformance.ts";
import { startDropboxFake } from "./servers/dropbox_fake.ts";

const TOKEN = "sl.extra-token";

async function setup() {
  const fake = startDropboxFake();
  fake.addToken(TOKEN);
  const home = await tempHome();
  const env = {
    ...home.env,
    ...FAST_ENV,
    SREGISTRY_DROPBOX_API_BASE: fake.url,
    SREGISTRY_DROPBOX_CONTENT_BASE: fake.url,
    SREGISTRY_DROPBOX_TOKEN: TOKEN,
  };
  return {
    fake,
    home,
    env,
    async [Symbol.asyncDispose]() {
      await fake.stop();
      await home.cleanup();
    },
  };
}

function bytes(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

Deno.test("dropbox push above the threshold uses a session and resumes on incorrect_offset", async () => {
  await using s = await setup();
  const file = join(s.home.dir, "big.sif");
  const data = bytes(10_000);
  await Deno.writeFile(file, data);
  s.fake.skewNextOffset();
  const r = await runCli(["push", file, "--name", "dropbox://big/one:v1"], {
    env: {
      ...s.env,
      SREGISTRY_DROPBOX_UPLOAD_THRESHOLD: "4096",
      SREGISTRY_DROPBOX_CHUNK_SIZE: "3000",
    },
  });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(s.fake.get("/big/one:v1.sif"), data);
  assert(s.fake.calls.includes("POST /2/files/upload_session/start"));
  assert(s.fake.calls.filter((c) => c.endsWith("append_v2")).length >= 2);
  assert(!s.fake.calls.includes("POST /2/files/upload"));
});

Deno.test("dropbox search follows the list_folder cursor", async () => {
  await using s = await setup();
  for (const n of ["a", "b", "c", "d", "e"]) s.fake.put(`/col/${n}:v1.sif`, bytes(10));
  const r = await runCli(["--json", "search", "dropbox://col"], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  for (const n of ["a", "b", "c", "d", "e"]) assert(r.stdout.includes(`col/${n}:v1`), r.stdout);
  assert(s.fake.calls.filter((c) => c.endsWith("/list_folder/continue")).length >= 2);
});

Deno.test("dropbox share reuses an existing shared link", async () => {
  await using s = await setup();
  s.fake.put("/col/shared:v1.sif", bytes(10));
  const one = await runCli(["share", "dropbox://col/shared:v1"], { env: s.env });
  const two = await runCli(["share", "dropbox://col/shared:v1"], { env: s.env });
  assertEquals(one.code, 0, one.stderr);
  assertEquals(two.code, 0, two.stderr);
  assert(one.stdout.includes("https://www.dropbox.com/s/"), one.stdout);
  assertEquals(two.stdout, one.stdout);
});

Deno.test("dropbox share of a missing file is exit 3", async () => {
  await using s = await setup();
  const r = await runCli(["share", "dropbox://col/none:v1"], { env: s.env });
  assertEquals(r.code, 3, r.stderr);
});

Deno.test("dropbox push to a remote http base is refused", async () => {
  await using s = await setup();
  s.fake.put("/col/x:v1.sif", bytes(10));
  const r = await runCli(["record", "dropbox://col/x:v1"], {
    env: { ...s.env, SREGISTRY_DROPBOX_API_BASE: "http://example.com" },
  });
  assertEquals(r.code, 2, r.stderr);
});

Deno.test("dropbox refreshes an expired access token once and keeps the new one", async () => {
  await using s = await setup();
  s.fake.put("/col/x:v1.sif", bytes(10));
  s.fake.addToken("sl.old");
  s.fake.expire("sl.old");
  s.fake.addRefreshToken("app-key", "refresh-1");
  const cache = join(s.home.dir, "cc");
  await Deno.mkdir(join(cache, ".sregistry"), { recursive: true });
  const store = join(cache, ".sregistry", "dropbox");
  await Deno.writeTextFile(
    store,
    JSON.stringify({
      oauth2: {
        accessToken: "sl.old",
        expiresAt: Date.now() + 3_600_000,
        refreshToken: "refresh-1",
      },
    }),
    { mode: 0o600 },
  );
  const env: Record<string, string> = {
    ...s.env,
    SREGISTRY_CREDENTIALS_CACHE: cache,
    SREGISTRY_DROPBOX_APP_KEY: "app-key",
  };
  delete env.SREGISTRY_DROPBOX_TOKEN;
  const r = await runCli(["--json", "record", "dropbox://col/x:v1"], { env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(s.fake.calls.filter((c) => c === "POST /oauth2/token").length, 1);
  const kept = JSON.parse(await Deno.readTextFile(store));
  assert(kept.oauth2.accessToken.startsWith("sl.fake-"), JSON.stringify(kept));
  assert(!r.stderr.includes("refresh-1") && !r.stdout.includes("refresh-1"));
});

Deno.test("dropbox first use with only the app key logs in with PKCE through stdin", async () => {
  await using s = await setup();
  s.fake.put("/col/x:v1.sif", bytes(10));
  s.fake.addCode("app-key", "the-code");
  const cache = join(s.home.dir, "cc");
  const env: Record<string, string> = {
    ...s.env,
    SREGISTRY_CREDENTIALS_CACHE: cache,
    SREGISTRY_DROPBOX_APP_KEY: "app-key",
  };
  delete env.SREGISTRY_DROPBOX_TOKEN;
  const r = await runCli(["--json", "record", "dropbox://col/x:v1"], { env, stdin: "the-code\n" });
  assertEquals(r.code, 0, r.stderr);
  const challenge = r.stderr.match(/code_challenge=([A-Za-z0-9_-]+)/)?.[1];
  assert(challenge, r.stderr);
  const sent = createHash("sha256").update(s.fake.verifiers[0]).digest("base64url");
  assertEquals(sent, challenge);
  const kept = JSON.parse(await Deno.readTextFile(join(cache, ".sregistry", "dropbox")));
  assert(kept.oauth2.refreshToken.startsWith("refresh-"), JSON.stringify(kept));
});

/** A push in upload-session chunks of 3000 bytes, with the credential store in the home. */
function sessionEnv(s: Awaited<ReturnType<typeof setup>>) {
  return {
    ...s.env,
    SREGISTRY_CREDENTIALS_CACHE: join(s.home.dir, "cc"),
    SREGISTRY_DROPBOX_UPLOAD_THRESHOLD: "4096",
    SREGISTRY_DROPBOX_CHUNK_SIZE: "3000",
  };
}

Deno.test("dropbox push: a session interrupted in one run continues in the next from the server's offset", async () => {
  await using s = await setup();
  const file = join(s.home.dir, "big.sif");
  const data = bytes(10_000);
  await Deno.writeFile(file, data);
  const env = sessionEnv(s);
  // start (0-3000) and the first append (3000-6000) work; the next append reaches the server
  // but its answer is lost, and every call after it fails: the run gives up.
  s.fake.failAppends({ after: 1, count: 100, keep: true });
  const first = await runCli(["push", file, "--name", "dropbox://big/two:v1"], { env });
  assertEquals(first.code, 5, first.stderr);
  assertEquals(s.fake.get("/big/two:v1.sif"), undefined);
  const store = join(s.home.dir, "cc", ".sregistry", "dropbox");
  const kept = JSON.parse(await Deno.readTextFile(store))["upload:/big/two:v1.sif"];
  assertEquals([kept?.session, kept?.offset], ["session-1", 6000]);

  s.fake.failAppends({ count: 0 });
  const mark = s.fake.calls.length;
  const second = await runCli(["push", file, "--name", "dropbox://big/two:v1"], { env });
  assertEquals(second.code, 0, second.stderr);
  assertEquals(s.fake.get("/big/two:v1.sif"), data);
  const calls = s.fake.calls.slice(mark);
  // No new session: the kept one, told by the server that it holds 9000 bytes, is finished.
  assert(!calls.includes("POST /2/files/upload_session/start"), calls.join("\n"));
  assertEquals(calls.filter((c) => c.endsWith("/upload_session/finish")).length, 1);
  const after = JSON.parse(await Deno.readTextFile(store));
  assertEquals(after["upload:/big/two:v1.sif"], undefined);
});

Deno.test("dropbox push: an expired kept session starts a new one", async () => {
  await using s = await setup();
  const file = join(s.home.dir, "big.sif");
  const data = bytes(10_000);
  await Deno.writeFile(file, data);
  const env = sessionEnv(s);
  s.fake.failAppends({ after: 1, count: 100 });
  const first = await runCli(["push", file, "--name", "dropbox://big/three:v1"], { env });
  assertEquals(first.code, 5, first.stderr);
  s.fake.failAppends({ count: 0 });
  s.fake.expireSessions();
  const mark = s.fake.calls.length;
  const second = await runCli(["push", file, "--name", "dropbox://big/three:v1"], { env });
  assertEquals(second.code, 0, second.stderr);
  assertEquals(s.fake.get("/big/three:v1.sif"), data);
  assertEquals(
    s.fake.calls.slice(mark).filter((c) => c.endsWith("/upload_session/start")).length,
    1,
  );
});

Deno.test("dropbox push: a changed file does not continue the old session", async () => {
  await using s = await setup();
  const file = join(s.home.dir, "big.sif");
  await Deno.writeFile(file, bytes(10_000));
  const env = sessionEnv(s);
  s.fake.failAppends({ after: 1, count: 100 });
  const first = await runCli(["push", file, "--name", "dropbox://big/four:v1"], { env });
  assertEquals(first.code, 5, first.stderr);
  s.fake.failAppends({ count: 0 });
  const changed = bytes(10_000).map((b) => b ^ 0xff);
  await Deno.writeFile(file, changed);
  const second = await runCli(["push", file, "--name", "dropbox://big/four:v1"], { env });
  assertEquals(second.code, 0, second.stderr);
  assertEquals(s.fake.get("/big/four:v1.sif"), changed);
});

Deno.test("dropbox push: a finish the server applied but never answered is completed next run", async () => {
  await using s = await setup();
  const file = join(s.home.dir, "big.sif");
  const data = bytes(10_000);
  await Deno.writeFile(file, data);
  const env = sessionEnv(s);
  // Two appends work; the finish (9000-10000) reaches the server, its answer is lost.
  s.fake.failAppends({ after: 2, count: 100, keep: true });
  const first = await runCli(["push", file, "--name", "dropbox://big/five:v1"], { env });
  assertEquals(first.code, 5, first.stderr);
  s.fake.failAppends({ count: 0 });
  // finish answers lookup_failed/incorrect_offset (10000): the client finishes there.
  const second = await runCli(["push", file, "--name", "dropbox://big/five:v1"], { env });
  assertEquals(second.code, 0, second.stderr);
  assertEquals(s.fake.get("/big/five:v1.sif"), data);
});
