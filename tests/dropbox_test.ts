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

Deno.test("dropbox: a remote http base is refused, for either host", async () => {
  await using s = await setup();
  s.fake.put("/col/x:v1.sif", bytes(10));
  for (const setting of ["SREGISTRY_DROPBOX_API_BASE", "SREGISTRY_DROPBOX_CONTENT_BASE"]) {
    const r = await runCli(["pull", "dropbox://col/x:v1"], {
      env: { ...s.env, [setting]: "http://example.com" },
    });
    assertEquals(r.code, 2, `${setting}: ${r.stderr}`);
    assert(r.stderr.includes(setting) && r.stderr.includes("must be https"), r.stderr);
  }
  // A base with a path prefix (a gateway) and a trailing slash is accepted.
  const gw = await runCli(["--json", "record", "dropbox://col/x:v1"], {
    env: { ...s.env, SREGISTRY_DROPBOX_API_BASE: `${s.fake.url}/gateway/` },
  });
  assertEquals(gw.code, 0, gw.stderr);
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

Deno.test("dropbox push at or below the threshold is one /2/files/upload", async () => {
  await using s = await setup();
  const file = join(s.home.dir, "small.sif");
  const data = bytes(4096);
  await Deno.writeFile(file, data);
  const r = await runCli(["--json", "push", file, "--name", "dropbox://small/one:v1"], {
    env: { ...s.env, SREGISTRY_DROPBOX_UPLOAD_THRESHOLD: "4096" },
  });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).size, 4096);
  assertEquals(s.fake.get("/small/one:v1.sif"), data);
  assertEquals(s.fake.calls.filter((c) => c.includes("/upload")), ["POST /2/files/upload"]);
  // Above Dropbox's 150 MiB single-upload limit the threshold is refused before any call.
  const mark = s.fake.calls.length;
  const big = await runCli(["push", file, "--name", "dropbox://small/two:v1"], {
    env: { ...s.env, SREGISTRY_DROPBOX_UPLOAD_THRESHOLD: "151M" },
  });
  assertEquals(big.code, 2, big.stderr);
  assert(big.stderr.includes("SREGISTRY_DROPBOX_UPLOAD_THRESHOLD"), big.stderr);
  assertEquals(s.fake.calls.length, mark);
});

Deno.test("dropbox delete removes the file; a second delete is exit 3", async () => {
  await using s = await setup();
  s.fake.put("/col/gone:v1.sif", bytes(10));
  const r = await runCli(["--json", "delete", "--force", "dropbox://col/gone:v1"], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.includes("dropbox://col/gone:v1"), r.stdout);
  assertEquals(s.fake.get("/col/gone:v1.sif"), undefined);
  assert(s.fake.calls.includes("POST /2/files/delete_v2"));
  const again = await runCli(["delete", "--force", "dropbox://col/gone:v1"], { env: s.env });
  assertEquals(again.code, 3, again.stderr);
});

Deno.test("dropbox share --json gives the link and records it in the catalog", async () => {
  await using s = await setup();
  s.fake.put("/col/shared:v1.sif", bytes(10));
  const r = await runCli(["--json", "share", "dropbox://col/shared:v1"], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert(String(out.link).startsWith("https://www.dropbox.com/s/"), r.stdout);
  assertEquals(out.client, "dropbox");
  assertEquals(out.recorded, "col/shared:v1");
  const ins = await runCli(["--json", "inspect", "col/shared:v1"], { env: s.env });
  assertEquals(ins.code, 0, ins.stderr);
  const row = JSON.parse(ins.stdout);
  assertEquals(row.image, null);
  assert(JSON.stringify(row).includes(`"shared":"${out.link}"`), ins.stdout);
  // The second share reuses the link (shared_link_already_exists) and keeps the one row.
  const two = await runCli(["--json", "share", "dropbox://col/shared:v1"], { env: s.env });
  assertEquals(JSON.parse(two.stdout).link, out.link);
  const images = await runCli(["--json", "images"], { env: s.env });
  assertEquals(JSON.parse(images.stdout).length, 1);
});

Deno.test("dropbox pull: a dropped download continues with a range", async () => {
  await using s = await setup();
  const data = bytes(300_000);
  s.fake.put("/col/big:v1.sif", data);
  s.fake.dropDownloadOnce(100_000);
  const r = await runCli(["--json", "pull", "--no-cache", "dropbox://col/big:v1"], {
    env: { ...s.env, SREGISTRY_HTTP_RETRIES: "3" },
    cwd: s.home.dir,
  });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await Deno.readFile(JSON.parse(r.stdout).path), data);
  assertEquals(s.fake.ranges[0], null);
  assert(s.fake.ranges.some((x) => x !== null && !x.startsWith("bytes=0-")), String(s.fake.ranges));
});

Deno.test("dropbox: an expired token alone is exit 4 saying how to renew it", async () => {
  await using s = await setup();
  s.fake.put("/col/x:v1.sif", bytes(10));
  s.fake.expire(TOKEN);
  const r = await runCli(["pull", "dropbox://col/x:v1"], { env: s.env });
  assertEquals(r.code, 4, r.stderr);
  assert(r.stderr.includes("expired") && r.stderr.includes("SREGISTRY_DROPBOX_APP_KEY"), r.stderr);
  assert(!r.stderr.includes(TOKEN), r.stderr);
});

Deno.test("dropbox: a refreshed token that is refused again is not refreshed twice", async () => {
  await using s = await setup();
  s.fake.put("/col/x:v1.sif", bytes(10));
  s.fake.addToken("sl.old");
  s.fake.expire("sl.old");
  s.fake.addRefreshToken("app-key", "refresh-1");
  s.fake.expireIssued();
  const cache = join(s.home.dir, "cc");
  await Deno.mkdir(join(cache, ".sregistry"), { recursive: true });
  await Deno.writeTextFile(
    join(cache, ".sregistry", "dropbox"),
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
  const r = await runCli(["record", "dropbox://col/x:v1"], { env });
  assertEquals(r.code, 4, r.stderr);
  assertEquals(s.fake.calls.filter((c) => c === "POST /oauth2/token").length, 1);
  assertEquals(s.fake.calls.filter((c) => c === "POST /2/files/get_metadata").length, 2);
});

Deno.test("dropbox fake: refuses what Dropbox refuses, in Dropbox's shapes", async () => {
  await using s = await setup();
  s.fake.put("/col/x:v1.sif", bytes(10));
  const call = async (route: string, init: RequestInit & { headers?: Record<string, string> }) => {
    const r = await fetch(`${s.fake.url}${route}`, {
      method: "POST",
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, ...init.headers },
    });
    const text = await r.text();
    let body: { error_summary?: string; error?: { ".tag"?: string; correct_offset?: number } } = {};
    try {
      body = JSON.parse(text);
    } catch {
      // plain-text 400
    }
    return { status: r.status, text, body };
  };
  const json = { "content-type": "application/json" };
  const octet = { "content-type": "application/octet-stream" };
  // Bad and expired tokens: 401 with error_summary and the .tag.
  const bad = await call("/2/files/get_metadata", {
    headers: { ...json, authorization: "Bearer nope" },
    body: JSON.stringify({ path: "/col/x:v1.sif" }),
  });
  assertEquals([bad.status, bad.body.error?.[".tag"]], [401, "invalid_access_token"]);
  assert(bad.body.error_summary?.startsWith("invalid_access_token/"));
  s.fake.addToken("sl.dead");
  s.fake.expire("sl.dead");
  const dead = await call("/2/files/get_metadata", {
    headers: { ...json, authorization: "Bearer sl.dead" },
    body: JSON.stringify({ path: "/col/x:v1.sif" }),
  });
  assertEquals([dead.status, dead.body.error?.[".tag"]], [401, "expired_access_token"]);
  // The wrong Content-Type, on an RPC and on a content endpoint.
  const rpcType = await call("/2/files/get_metadata", {
    headers: { "content-type": "text/plain" },
    body: JSON.stringify({ path: "/col/x:v1.sif" }),
  });
  assertEquals(rpcType.status, 400);
  assert(rpcType.text.includes('Bad HTTP "Content-Type" header'), rpcType.text);
  const upType = await call("/2/files/upload", {
    headers: { ...json, "dropbox-api-arg": JSON.stringify({ path: "/a/b:c.sif" }) },
    body: "x",
  });
  assertEquals(upType.status, 400);
  assert(upType.text.includes("application/octet-stream"), upType.text);
  // A malformed Dropbox-API-Arg, and a missing one.
  for (const arg of ["{not json", undefined]) {
    const r = await call("/2/files/upload", {
      headers: { ...octet, ...(arg === undefined ? {} : { "dropbox-api-arg": arg }) },
      body: "x",
    });
    assertEquals(r.status, 400, String(arg));
    assert(r.text.includes('"Dropbox-API-Arg"'), r.text);
  }
  // Non-ASCII in the header must come escaped, as the client's headerJson writes it.
  const { headerJson } = await import("../clients/dropbox/api.ts");
  const arg = headerJson({ path: "/caf\u00e9/x:v1.sif" });
  assertEquals(arg, '{"path":"/caf\\u00e9/x:v1.sif"}');
  const raw = await call("/2/files/upload", {
    headers: { ...octet, "dropbox-api-arg": '{"path":"/caf\u00e9/x:v1.sif"}' },
    body: "x",
  });
  assertEquals(raw.status, 400);
  const escaped = await call("/2/files/upload", {
    headers: { ...octet, "dropbox-api-arg": arg },
    body: "x",
  });
  assertEquals(escaped.status, 200, escaped.text);
  // A missing argument.
  const noPath = await call("/2/files/get_metadata", { headers: json, body: "{}" });
  assertEquals(noPath.status, 400);
  assert(noPath.text.includes("missing required field 'path'"), noPath.text);
  const noUploadPath = await call("/2/files/upload", {
    headers: { ...octet, "dropbox-api-arg": "{}" },
    body: "x",
  });
  assert(noUploadPath.text.includes("missing required field 'path'"), noUploadPath.text);
  // A wrong upload offset: 409 incorrect_offset with the correct one; finish wraps it.
  const start = await call("/2/files/upload_session/start", {
    headers: { ...octet, "dropbox-api-arg": JSON.stringify({ close: false }) },
    body: "abcd",
  });
  const session = JSON.parse(start.text).session_id;
  const wrong = await call("/2/files/upload_session/append_v2", {
    headers: {
      ...octet,
      "dropbox-api-arg": JSON.stringify({ cursor: { session_id: session, offset: 2 } }),
    },
    body: "ef",
  });
  assertEquals([wrong.status, wrong.body.error?.[".tag"]], [409, "incorrect_offset"]);
  assertEquals(wrong.body.error?.correct_offset, 4);
  const finish = await call("/2/files/upload_session/finish", {
    headers: {
      ...octet,
      "dropbox-api-arg": JSON.stringify({
        cursor: { session_id: session, offset: 9 },
        commit: { path: "/a/b:c.sif" },
      }),
    },
    body: "",
  });
  assertEquals([finish.status, finish.body.error?.[".tag"]], [409, "lookup_failed"]);
  assert(finish.body.error_summary?.startsWith("lookup_failed/incorrect_offset/"));
  // The token endpoint wants a form.
  const token = await fetch(`${s.fake.url}/oauth2/token`, {
    method: "POST",
    headers: json,
    body: "{}",
  });
  assertEquals([token.status, (await token.json()).error], [400, "invalid_request"]);
});

Deno.test("dropbox: help and backend ls list every setting", async () => {
  await using s = await setup();
  const { dropboxFactory } = await import("../clients/dropbox/mod.ts");
  for (const args of [["help", "dropbox"], ["backend", "ls", "dropbox"]]) {
    const r = await runCli(args, { env: s.home.env });
    assertEquals(r.code, 0, r.stderr);
    for (const setting of dropboxFactory.settings) {
      assert(r.stdout.includes(setting.name), `${args.join(" ")}: ${setting.name}`);
    }
  }
});

Deno.test("dropbox: a refused refresh token is forgotten, and the next run signs in with PKCE", async () => {
  await using s = await setup();
  s.fake.put("/col/x:v1.sif", bytes(10));
  const cache = join(s.home.dir, "cc");
  const store = join(cache, ".sregistry", "dropbox");
  await Deno.mkdir(join(cache, ".sregistry"), { recursive: true });
  await Deno.writeTextFile(
    store,
    JSON.stringify({ oauth2: { refreshToken: "revoked-refresh" } }),
    { mode: 0o600 },
  );
  const env: Record<string, string> = {
    ...s.env,
    SREGISTRY_CREDENTIALS_CACHE: cache,
    SREGISTRY_DROPBOX_APP_KEY: "app-key",
  };
  delete env.SREGISTRY_DROPBOX_TOKEN;
  const r = await runCli(["record", "dropbox://col/x:v1"], { env });
  assertEquals(r.code, 4, r.stderr);
  assert(r.stderr.includes("run the command again to sign in"), r.stderr);
  assert(!r.stderr.includes("revoked-refresh"), r.stderr);
  assertEquals(JSON.parse(await Deno.readTextFile(store)).oauth2, undefined);
  s.fake.addCode("app-key", "code-2");
  const again = await runCli(["record", "dropbox://col/x:v1"], { env, stdin: "code-2\n" });
  assertEquals(again.code, 0, again.stderr);
  assert(again.stderr.includes("https://www.dropbox.com/oauth2/authorize"), again.stderr);
});

Deno.test("dropbox pull is checked against Dropbox's content_hash (4 MiB blocks)", async () => {
  await using s = await setup();
  // Over one 4 MiB block, so the block structure of the hash matters.
  const data = bytes(4 * 1024 * 1024 + 1000);
  s.fake.put("/col/h:v1.sif", data);
  const { contentHash } = await import("../clients/dropbox/api.ts");
  const { dropboxContentHash } = await import("./servers/dropbox_fake.ts");
  const file = join(s.home.dir, "h.bin");
  await Deno.writeFile(file, data);
  assertEquals(await contentHash(file), dropboxContentHash(data));
  assert(
    await contentHash(file) !== createHash("sha256").update(data).digest("hex"),
    "the block hash is not the plain sha256",
  );
  s.fake.corruptNextDownload();
  const bad = await runCli(["pull", "--no-cache", "dropbox://col/h:v1"], {
    env: s.env,
    cwd: s.home.dir,
  });
  assertEquals(bad.code, 6, bad.stderr);
  assert(bad.stderr.includes("content_hash"), bad.stderr);
  const left = [...Deno.readDirSync(s.home.dir)].map((e) => e.name).filter((n) =>
    n.includes("h_v1")
  );
  assertEquals(left, []);
  const good = await runCli(["--json", "pull", "--no-cache", "dropbox://col/h:v1"], {
    env: s.env,
    cwd: s.home.dir,
  });
  assertEquals(good.code, 0, good.stderr);
  assertEquals(await Deno.readFile(JSON.parse(good.stdout).path), data);
});

Deno.test("dropbox push checks what Dropbox committed against the file's content_hash", async () => {
  await using s = await setup();
  const file = join(s.home.dir, "c.sif");
  await Deno.writeFile(file, bytes(10_000));
  for (const threshold of ["150M", "4096"]) {
    s.fake.corruptNextSave();
    const r = await runCli(["push", file, "--name", "dropbox://c/one:v1"], {
      env: { ...sessionEnv(s), SREGISTRY_DROPBOX_UPLOAD_THRESHOLD: threshold },
    });
    assertEquals(r.code, 6, `${threshold}: ${r.stderr}`);
    assert(r.stderr.includes("push it again"), r.stderr);
  }
  const ok = await runCli(["push", file, "--name", "dropbox://c/one:v1"], { env: sessionEnv(s) });
  assertEquals(ok.code, 0, ok.stderr);
  assertEquals(s.fake.get("/c/one:v1.sif"), bytes(10_000));
});

Deno.test("dropbox PKCE login: a refused code is exit 4 and nothing is kept", async () => {
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
  const r = await runCli(["record", "dropbox://col/x:v1"], { env, stdin: "not-the-code\n" });
  assertEquals(r.code, 4, r.stderr);
  assert(r.stderr.includes("invalid_grant"), r.stderr);
  assert(!r.stderr.includes("not-the-code"), r.stderr);
  const kept = await Deno.readTextFile(join(cache, ".sregistry", "dropbox")).catch(() => "{}");
  assert(!kept.includes("refresh"), kept);
  const none = await runCli(["record", "dropbox://col/x:v1"], { env, stdin: "\n" });
  assertEquals(none.code, 2, none.stderr);
});
