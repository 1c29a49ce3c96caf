/**
 * google-drive:// cases beyond conformance, through the CLI against the strict Drive fake: the
 * folder is created, properties and the thumbnail go up with the file, search uses the properties,
 * share adds a reader permission, an expired token refreshes once, and the OAuth installed-app
 * flow (consent URL, code on stdin, PKCE, refresh token cached) against the fake's consent screen.
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { runCli, spawnCli, tempHome } from "./_cli.ts";
import { FAST_ENV } from "./conformance.ts";
import { pastedCode } from "../clients/google-drive/mod.ts";
import { buildSingularityLike } from "./_sif_writer.ts";
import { makeTestAccount } from "./servers/gcs_fake.ts";
import { startDriveFake } from "./servers/gdrive_fake.ts";

Deno.test("google-drive: push creates the folder, sends properties and thumbnail; search, share, refresh", async () => {
  const fake = startDriveFake({ pageSize: 1 });
  const h = await tempHome();
  try {
    const account = await makeTestAccount(fake.tokenUri);
    fake.addAccount(account.email, account.publicKey);
    const key = join(h.dir, "key.json");
    await Deno.writeTextFile(key, account.json, { mode: 0o600 });
    const sif = join(h.dir, "a.sif");
    await Deno.writeFile(sif, crypto.getRandomValues(new Uint8Array(4096)));
    const env = {
      ...h.env,
      GOOGLE_APPLICATION_CREDENTIALS: key,
      SREGISTRY_GOOGLE_DRIVE_BASE: fake.url,
    };
    for (const tag of ["one", "two"]) {
      const r = await runCli(["push", "--name", `google-drive://demo/img:${tag}`, sif], { env });
      assertEquals(r.code, 0, r.stderr);
    }
    const all = [...fake.files.values()];
    const folders = all.filter((f) => f.mimeType === "application/vnd.google-apps.folder");
    assertEquals(folders.map((f) => f.name), ["sregistry"]);
    const images = all.filter((f) => f.parents.includes(folders[0].id));
    assertEquals(images.length, 2);
    assertEquals(images[0].properties.type, "container");
    assertEquals(images[0].properties.collection, "demo");
    assertEquals(images[0].properties.url, "demo/img");
    assertEquals(images[0].contentHints?.thumbnail?.mimeType, "image/png");
    assert((images[0].contentHints?.thumbnail?.image ?? "").length > 100, "no thumbnail");

    // Search follows pageToken (one file per page here).
    const pagesBefore = fake.stats.pages;
    const s = await runCli(["--json", "search", "google-drive://demo"], { env });
    assertEquals(s.code, 0, s.stderr);
    assert(s.stdout.includes("demo/img:one") && s.stdout.includes("demo/img:two"), s.stdout);
    assert(fake.stats.pages - pagesBefore >= 3, "search did not page");

    // An expired token: one 401, one new token, then success.
    fake.expireTokens();
    const tokens = fake.stats.tokens;
    const sh = await runCli(
      ["share", "google-drive://demo/img:one", "--email", "friend@example.org"],
      { env },
    );
    assertEquals(sh.code, 0, sh.stderr);
    assertEquals(fake.stats.tokens, tokens + 1);
    const shared = images.find((f) => f.properties.tag === "one")!;
    assertEquals(shared.permissions.map((p) => [p.type, p.role, p.emailAddress]), [
      ["user", "reader", "friend@example.org"],
    ]);
    assert(sh.stdout.includes(shared.permissions[0].id), sh.stdout);

    const noEmail = await runCli(["share", "google-drive://demo/img:one"], { env });
    assertEquals(noEmail.code, 2, noEmail.stderr);
  } finally {
    await fake.stop();
    await Deno.remove(h.dir, { recursive: true }).catch(() => {});
  }
});

/** Read a child's stderr until `pattern` matches; the rest keeps draining into `text()`. */
function watchStderr(child: Deno.ChildProcess) {
  let text = "";
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const done = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) {
      text += dec.decode(chunk, { stream: true });
      for (const w of [...waiters]) {
        const m = text.match(w.re);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    }
  })();
  return {
    wait: (re: RegExp) =>
      new Promise<RegExpMatchArray>((resolve) => {
        const m = text.match(re);
        if (m) resolve(m);
        else waiters.push({ re, resolve });
      }),
    text: async () => {
      await done;
      return text;
    },
  };
}

async function oauthSetup() {
  const fake = startDriveFake();
  const h = await tempHome();
  fake.addClient("cid-1.apps.googleusercontent.com", "GOCSPX-fake-secret");
  const secrets = join(h.dir, "client_secret.json");
  await Deno.writeTextFile(
    secrets,
    JSON.stringify({
      installed: {
        client_id: "cid-1.apps.googleusercontent.com",
        client_secret: "GOCSPX-fake-secret",
        auth_uri: fake.authUri,
        token_uri: fake.tokenUri,
        redirect_uris: ["http://localhost"],
      },
    }),
  );
  const cache = join(h.dir, "cc");
  const env: Record<string, string> = {
    ...h.env,
    ...FAST_ENV,
    SREGISTRY_GOOGLE_DRIVE_CREDENTIALS: secrets,
    SREGISTRY_GOOGLE_DRIVE_BASE: fake.url,
    SREGISTRY_CREDENTIALS_CACHE: cache,
  };
  return {
    fake,
    h,
    env,
    store: join(cache, ".sregistry", "google-drive"),
    async [Symbol.asyncDispose]() {
      await fake.stop();
      await h.cleanup();
    },
  };
}

Deno.test("google-drive installed-app flow: consent URL, code on stdin, refresh token cached", async () => {
  await using s = await oauthSetup();
  const sif = join(s.h.dir, "a.sif");
  await Deno.writeFile(sif, crypto.getRandomValues(new Uint8Array(3000)));
  const child = spawnCli(["--json", "push", "--name", "google-drive://demo/oauth:v1", sif], {
    env: s.env,
    stdin: "",
  });
  const err = watchStderr(child);
  const [consent] = await err.wait(/http:\/\/127\.0\.0\.1:\d+\/o\/oauth2\/auth\?\S+/);
  const u = new URL(consent);
  assertEquals(u.searchParams.get("code_challenge_method"), "S256");
  assertEquals(u.searchParams.get("access_type"), "offline");
  // The "browser": the consent screen sends it to the loopback redirect with the code.
  const res = await fetch(consent, { redirect: "manual" });
  await res.body?.cancel();
  assertEquals(res.status, 302);
  const back = res.headers.get("location")!;
  const code = new URL(back).searchParams.get("code")!;
  assert(back.startsWith("http://127.0.0.1") && code.startsWith("4/"), back);
  // Pasted as the whole address of the page, as users copy it.
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(`${back}\n`));
  await w.close();
  const [stdout, status] = await Promise.all([new Response(child.stdout).text(), child.status]);
  const stderr = await err.text();
  assertEquals(status.code, 0, stderr);
  assertEquals(s.fake.stats.codeGrants, 1);
  const kept = JSON.parse(await Deno.readTextFile(s.store));
  const entry = kept["oauth:cid-1.apps.googleusercontent.com"];
  assert(String(entry?.refreshToken).startsWith("1//0fake"), JSON.stringify(kept));
  for (const secret of [entry.refreshToken, entry.accessToken, code]) {
    assert(!stderr.includes(secret) && !stdout.includes(secret), "a token was printed");
  }

  // The next run needs no prompt (no stdin at all): the cached tokens serve it.
  const again = await runCli(["--json", "search", "google-drive://demo"], { env: s.env });
  assertEquals(again.code, 0, again.stderr);
  assert(again.stdout.includes("demo/oauth:v1"), again.stdout);
  assertEquals(s.fake.stats.codeGrants, 1);

  // An expired access token: the refresh token gets a new one.
  s.fake.expireTokens();
  const refreshed = await runCli(["--json", "search", "google-drive://demo"], { env: s.env });
  assertEquals(refreshed.code, 0, refreshed.stderr);
  assertEquals(s.fake.stats.refreshGrants, 1);

  // A revoked refresh token: exit 4, saying to sign in again.
  s.fake.expireTokens();
  s.fake.revokeRefreshTokens();
  const revoked = await runCli(["search", "google-drive://demo"], { env: s.env });
  assertEquals(revoked.code, 4, revoked.stderr);
  assert(revoked.stderr.includes("run the command again to sign in"), revoked.stderr);
  // The refused sign-in is forgotten: the next run asks for a code instead of failing the same way.
  const forgotten = JSON.parse(await Deno.readTextFile(s.store));
  assertEquals(forgotten["oauth:cid-1.apps.googleusercontent.com"], undefined);
});

Deno.test("google-drive installed-app flow: a wrong code is exit 4 and nothing is cached", async () => {
  await using s = await oauthSetup();
  const r = await runCli(["search", "google-drive://demo"], {
    env: s.env,
    stdin: "4/0Anot-a-code\n",
  });
  assertEquals(r.code, 4, r.stderr);
  assert(r.stderr.includes("Malformed auth code"), r.stderr);
  assert(!r.stderr.includes("4/0Anot-a-code"), r.stderr);
  assertEquals(s.fake.stats.codeGrants, 0);
  const kept = await Deno.readTextFile(s.store).catch(() => "{}");
  assert(!kept.includes("refreshToken"), kept);
  const none = await runCli(["search", "google-drive://demo"], { env: s.env, stdin: "\n" });
  assertEquals(none.code, 2, none.stderr);
});

Deno.test("google-drive fake: the code grant wants the same redirect_uri and the PKCE verifier", async () => {
  await using s = await oauthSetup();
  const verifier = "v".repeat(50);
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const consent = new URL(s.fake.authUri);
  for (
    const [k, v] of Object.entries({
      client_id: "cid-1.apps.googleusercontent.com",
      redirect_uri: "http://127.0.0.1",
      response_type: "code",
      scope: "https://www.googleapis.com/auth/drive",
      code_challenge: challenge,
      code_challenge_method: "S256",
    })
  ) consent.searchParams.set(k, v);
  const res = await fetch(consent, { redirect: "manual" });
  await res.body?.cancel();
  const code = new URL(res.headers.get("location")!).searchParams.get("code")!;
  const grant = async (extra: Record<string, string>) => {
    const r = await fetch(s.fake.tokenUri, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        client_id: "cid-1.apps.googleusercontent.com",
        client_secret: "GOCSPX-fake-secret",
        redirect_uri: "http://127.0.0.1",
        ...extra,
      }),
    });
    return { status: r.status, body: await r.json() };
  };
  const wrongRedirect = await grant({
    redirect_uri: "http://127.0.0.1:9",
    code_verifier: verifier,
  });
  assertEquals([wrongRedirect.status, wrongRedirect.body.error], [400, "redirect_uri_mismatch"]);
  const noVerifier = await grant({});
  assertEquals(noVerifier.body.error_description, "Missing code verifier.");
  const badVerifier = await grant({ code_verifier: "w".repeat(50) });
  assertEquals(badVerifier.body.error_description, "Invalid code verifier.");
  const badSecret = await grant({ code_verifier: verifier, client_secret: "nope" });
  assertEquals([badSecret.status, badSecret.body.error], [401, "invalid_client"]);
  const ok = await grant({ code_verifier: verifier });
  assertEquals(ok.status, 200, JSON.stringify(ok.body));
  assert(typeof ok.body.refresh_token === "string");
  const reused = await grant({ code_verifier: verifier });
  assertEquals(reused.body.error_description, "Malformed auth code.");
  // A redirect that is not loopback is refused on the consent screen itself.
  consent.searchParams.set("redirect_uri", "https://evil.example/cb");
  const evil = await fetch(consent, { redirect: "manual" });
  assertEquals(evil.status, 400);
  assert((await evil.text()).includes("redirect_uri_mismatch"));
});

Deno.test("pastedCode takes the code, or the code of a pasted address", () => {
  assertEquals(pastedCode(" 4/0Abc-d_e "), "4/0Abc-d_e");
  assertEquals(pastedCode("4%2F0Abc"), "4/0Abc");
  assertEquals(pastedCode("code=4/0Abc&scope=x"), "4/0Abc");
  assertEquals(
    pastedCode("http://127.0.0.1/?code=4%2F0Abc&scope=https://www.googleapis.com/auth/drive"),
    "4/0Abc",
  );
  assertEquals(pastedCode("http://127.0.0.1/?error=access_denied"), "");
});

async function accountSetup() {
  const fake = startDriveFake();
  const h = await tempHome();
  const account = await makeTestAccount(fake.tokenUri);
  fake.addAccount(account.email, account.publicKey);
  const key = join(h.dir, "key.json");
  await Deno.writeTextFile(key, account.json, { mode: 0o600 });
  const cache = join(h.dir, "cc");
  const env: Record<string, string> = {
    ...h.env,
    ...FAST_ENV,
    GOOGLE_APPLICATION_CREDENTIALS: key,
    SREGISTRY_GOOGLE_DRIVE_BASE: fake.url,
    SREGISTRY_CREDENTIALS_CACHE: cache,
    SREGISTRY_GOOGLE_DRIVE_CHUNK_SIZE: "256K",
  };
  const file = join(h.dir, "big.sif");
  const data = new Uint8Array(5 * 256 * 1024 + 1234);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + (i >> 11)) & 0xff;
  await Deno.writeFile(file, data);
  return {
    fake,
    env,
    file,
    data,
    store: join(cache, ".sregistry", "google-drive"),
    uploaded: () => [...fake.files.values()].find((f) => f.name.startsWith("demo/big:v1@"))?.bytes,
    async [Symbol.asyncDispose]() {
      await fake.stop();
      await h.cleanup();
    },
  };
}

Deno.test("google-drive push: a failed chunk resumes from what the session reports", async () => {
  await using s = await accountSetup();
  // The second 512K chunk fails after Drive kept its first half.
  s.fake.failChunks({ after: 1, count: 1, persist: "half" });
  const r = await runCli(["push", "--name", "google-drive://demo/big:v1", s.file], {
    env: { ...s.env, SREGISTRY_GOOGLE_DRIVE_CHUNK_SIZE: "512K" },
  });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(s.uploaded(), s.data);
  assertEquals(s.fake.stats.sessions, 1);
  assert(s.fake.stats.statusQueries >= 1, "the session was not queried");
  // Only the lost half of one chunk went twice.
  assertEquals(s.fake.stats.chunkBytes, s.data.length + 256 * 1024);
});

Deno.test("google-drive push: an interrupted upload continues in the next run", async () => {
  await using s = await accountSetup();
  s.fake.failChunks({ after: 2, count: 100 });
  const first = await runCli(["push", "--name", "google-drive://demo/big:v1", s.file], {
    env: s.env,
  });
  assertEquals(first.code, 5, first.stderr);
  assert(first.stderr.includes("run the push again"), first.stderr);
  assertEquals(s.uploaded(), undefined);
  const kept = JSON.parse(await Deno.readTextFile(s.store));
  const entry = Object.entries(kept).find(([k]) => k.startsWith("upload:sregistry/demo/big:v1@"));
  assert(entry, JSON.stringify(Object.keys(kept)));
  assert(
    !first.stderr.includes(
      new URL((entry[1] as { session: string }).session).searchParams.get("upload_id")!,
    ),
  );

  s.fake.failChunks({ count: 0 });
  const before = s.fake.stats.chunkBytes;
  const second = await runCli(["push", "--name", "google-drive://demo/big:v1", s.file], {
    env: s.env,
  });
  assertEquals(second.code, 0, second.stderr);
  assertEquals(s.uploaded(), s.data);
  assertEquals(s.fake.stats.sessions, 1);
  // The second run sent only what the session lacked (two 256K chunks were kept).
  assertEquals(s.fake.stats.chunkBytes - before, s.data.length - 2 * 256 * 1024);
  const after = JSON.parse(await Deno.readTextFile(s.store));
  assert(!Object.keys(after).some((k) => k.startsWith("upload:")), JSON.stringify(after));
});

Deno.test("google-drive push: a misaligned chunk size is a usage error before any upload", async () => {
  await using s = await accountSetup();
  const r = await runCli(["push", "--name", "google-drive://demo/big:v1", s.file], {
    env: { ...s.env, SREGISTRY_GOOGLE_DRIVE_CHUNK_SIZE: "300000" },
  });
  assertEquals(r.code, 2, r.stderr);
  assertEquals(s.fake.stats.sessions, 0);
});

Deno.test("google-drive fake: misaligned chunks, gaps and wrong lengths are refused", async () => {
  await using s = await oauthSetup();
  // A token through the consent screen and the code grant (no PKCE here).
  const consent = new URL(s.fake.authUri);
  consent.search = new URLSearchParams({
    client_id: "cid-1.apps.googleusercontent.com",
    redirect_uri: "http://127.0.0.1",
    response_type: "code",
    scope: "https://www.googleapis.com/auth/drive",
  }).toString();
  const back = await fetch(consent, { redirect: "manual" });
  await back.body?.cancel();
  const t = await (await fetch(s.fake.tokenUri, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: new URL(back.headers.get("location")!).searchParams.get("code")!,
      client_id: "cid-1.apps.googleusercontent.com",
      client_secret: "GOCSPX-fake-secret",
      redirect_uri: "http://127.0.0.1",
    }),
  })).json();
  const auth = { authorization: `Bearer ${t.access_token}` };
  const size = 3 * 256 * 1024;
  const open = await fetch(`${s.fake.url}/upload/drive/v3/files?uploadType=resumable`, {
    method: "POST",
    headers: {
      ...auth,
      "content-type": "application/json; charset=UTF-8",
      "x-upload-content-length": String(size),
    },
    body: JSON.stringify({ name: "x.sif" }),
  });
  await open.body?.cancel();
  const session = open.headers.get("location")!;
  const put = async (range: string, body: Uint8Array<ArrayBuffer>) => {
    const r = await fetch(session, {
      method: "PUT",
      headers: { ...auth, "content-range": range },
      body,
    });
    const text = await r.text();
    return { status: r.status, range: r.headers.get("range"), text };
  };
  const q = await put(`bytes */${size}`, new Uint8Array());
  assertEquals([q.status, q.range], [308, null]);
  const misaligned = await put(`bytes 0-99999/${size}`, new Uint8Array(100_000));
  assertEquals(misaligned.status, 400);
  assert(misaligned.text.includes("multiple of 256 KiB"), misaligned.text);
  const gap = await put(`bytes 262144-524287/${size}`, new Uint8Array(262144));
  assertEquals(gap.status, 400);
  const short = await put(`bytes 0-262143/${size}`, new Uint8Array(1000));
  assertEquals(short.status, 400);
  const wrongTotal = await put(`bytes 0-262143/${size + 1}`, new Uint8Array(262144));
  assertEquals(wrongTotal.status, 400);
  const ok = await put(`bytes 0-262143/${size}`, new Uint8Array(262144));
  assertEquals([ok.status, ok.range], [308, "bytes=0-262143"]);
  // Bytes already kept may come again; the last chunk may be of any length.
  const rest = await put(`bytes 0-${size - 1}/${size}`, new Uint8Array(size));
  assertEquals(rest.status, 200, rest.text);
  const again = await put(`bytes */${size}`, new Uint8Array());
  assertEquals(again.status, 200);
  const noToken = await fetch(session, {
    method: "PUT",
    headers: { "content-range": `bytes */${size}` },
  });
  await noToken.body?.cancel();
  assertEquals(noToken.status, 401);
});

/** A service-account home against a fresh fake (no chunk setting). */
async function plainSetup() {
  const fake = startDriveFake();
  const h = await tempHome();
  const account = await makeTestAccount(fake.tokenUri);
  fake.addAccount(account.email, account.publicKey);
  const key = join(h.dir, "key.json");
  await Deno.writeTextFile(key, account.json, { mode: 0o600 });
  const env: Record<string, string> = {
    ...h.env,
    ...FAST_ENV,
    GOOGLE_APPLICATION_CREDENTIALS: key,
    SREGISTRY_GOOGLE_DRIVE_BASE: fake.url,
  };
  return {
    fake,
    h,
    env,
    images: () =>
      [...fake.files.values()].filter((f) => f.mimeType !== "application/vnd.google-apps.folder"),
    async [Symbol.asyncDispose]() {
      await fake.stop();
      await h.cleanup();
    },
  };
}

Deno.test("google-drive push: the image's labels become properties; one too long for Drive is left out", async () => {
  await using s = await plainSetup();
  const sif = join(s.h.dir, "l.sif");
  await Deno.writeFile(
    sif,
    buildSingularityLike(
      {
        labels: { "org.test.short": "yes", "org.test.long": "x".repeat(200) },
      } as Parameters<typeof buildSingularityLike>[0],
    ),
  );
  const r = await runCli(["--json", "push", "--name", "google-drive://lab/el:v1", sif], {
    env: s.env,
  });
  assertEquals(r.code, 0, r.stderr);
  const [f] = s.images();
  assertEquals(f.properties["org.test.short"], "yes");
  assertEquals(f.properties["org.test.long"], undefined);
  assertEquals(f.properties.type, "container");
  assertEquals(f.properties.uri, `lab/el:v1@${f.properties.sha256sum}`);
  assert(r.stderr.includes("org.test.long"), r.stderr);
  const out = JSON.parse(r.stdout);
  assertEquals(out.size, (await Deno.stat(sif)).size);
  // search matches a property value, as the original's search did.
  const hit = await runCli(["--json", "search", "yes"], {
    env: { ...s.env, SREGISTRY_CLIENT: "google-drive" },
  });
  assertEquals(hit.code, 0, hit.stderr);
  assert(hit.stdout.includes("lab/el:v1"), hit.stdout);
});

Deno.test("google-drive push: SREGISTRY_THUMBNAIL is sent; one over 2 MB is left out with a warning", async () => {
  await using s = await plainSetup();
  const sif = join(s.h.dir, "a.sif");
  await Deno.writeFile(sif, crypto.getRandomValues(new Uint8Array(1000)));
  const png = join(s.h.dir, "mine.png");
  const mine = new Uint8Array(5000).map((_, i) => i & 0xff);
  await Deno.writeFile(png, mine);
  const r = await runCli(["push", "--name", "google-drive://th/one:v1", sif], {
    env: { ...s.env, SREGISTRY_THUMBNAIL: png },
  });
  assertEquals(r.code, 0, r.stderr);
  const t = s.images()[0].contentHints?.thumbnail;
  assertEquals(t?.mimeType, "image/png");
  const sent = Uint8Array.from(
    atob(t!.image!.replaceAll("-", "+").replaceAll("_", "/")),
    (c) => c.charCodeAt(0),
  );
  assertEquals(sent, mine);
  // The built-in robot is within Drive's limits.
  const robot = await Deno.readFile(new URL("../core/data/robot.png", import.meta.url));
  assert(robot.length <= 2 * 1024 * 1024);

  const big = join(s.h.dir, "big.png");
  await Deno.writeFile(big, new Uint8Array(2 * 1024 * 1024 + 1));
  const r2 = await runCli(["push", "--name", "google-drive://th/two:v1", sif], {
    env: { ...s.env, SREGISTRY_THUMBNAIL: big },
  });
  assertEquals(r2.code, 0, r2.stderr);
  assert(r2.stderr.includes("without a thumbnail"), r2.stderr);
  const two = s.images().find((f) => f.properties.tag === "v1" && f.properties.image === "two");
  assertEquals(two?.contentHints, undefined);
});

Deno.test("google-drive delete removes the file; share --json is recorded with the email", async () => {
  await using s = await plainSetup();
  const sif = join(s.h.dir, "a.sif");
  await Deno.writeFile(sif, crypto.getRandomValues(new Uint8Array(1000)));
  const p = await runCli(["push", "--name", "google-drive://del/one:v1", sif], { env: s.env });
  assertEquals(p.code, 0, p.stderr);
  const sh = await runCli(
    ["--json", "share", "google-drive://del/one:v1", "--email", "friend@example.org"],
    { env: s.env },
  );
  assertEquals(sh.code, 0, sh.stderr);
  const out = JSON.parse(sh.stdout);
  const [f] = s.images();
  assert(String(out.link).includes(f.permissions[0].id), sh.stdout);
  assertEquals(out.recorded, `del/one:v1@${f.properties.version}`);
  const ins = await runCli(["--json", "inspect", out.recorded], { env: s.env });
  assertEquals(ins.code, 0, ins.stderr);
  const row = JSON.parse(ins.stdout);
  assertEquals(row.metrics.shared_with, "friend@example.org");
  assertEquals(row.metrics.shared, out.link);

  const d = await runCli(["--json", "delete", "--force", "google-drive://del/one:v1"], {
    env: s.env,
  });
  assertEquals(d.code, 0, d.stderr);
  assertEquals(s.images(), []);
  const again = await runCli(["delete", "--force", "google-drive://del/one:v1"], { env: s.env });
  assertEquals(again.code, 3, again.stderr);
});

Deno.test("google-drive base: plain http only for loopback; help and backend ls list every setting", async () => {
  await using s = await plainSetup();
  const r = await runCli(["search", "google-drive://"], {
    env: { ...s.env, SREGISTRY_GOOGLE_DRIVE_BASE: "http://drive.example.org" },
  });
  assertEquals(r.code, 2, r.stderr);
  assert(r.stderr.includes("must be https"), r.stderr);
  const { googleDriveFactory } = await import("../clients/google-drive/mod.ts");
  for (const args of [["help", "google-drive"], ["backend", "ls", "google-drive"]]) {
    const h = await runCli(args, { env: s.h.env });
    assertEquals(h.code, 0, h.stderr);
    for (const setting of googleDriveFactory.settings) {
      assert(h.stdout.includes(setting.name), `${args.join(" ")}: ${setting.name}`);
    }
  }
});

Deno.test("google-drive fake: refuses what Drive refuses, with error.errors[]", async () => {
  await using s = await plainSetup();
  const call = async (path: string, init: RequestInit) => {
    const r = await fetch(`${s.fake.url}${path}`, init);
    const body = await r.json().catch(() => ({}));
    return { status: r.status, reason: body?.error?.errors?.[0]?.reason, code: body?.error?.code };
  };
  const noToken = await call("/drive/v3/files?q=trashed%3Dfalse", {});
  assertEquals([noToken.status, noToken.reason, noToken.code], [401, "authError", 401]);
  // A real token, through the JWT-bearer grant the client uses: a push makes one.
  const sif = join(s.h.dir, "a.sif");
  await Deno.writeFile(sif, new Uint8Array(10));
  const r = await runCli(["push", "--name", "google-drive://f/x:v1", sif], {
    env: s.env,
  });
  assertEquals(r.code, 0, r.stderr);
  s.fake.expireTokens();
  const expired = await call("/drive/v3/files?q=trashed%3Dfalse", {
    headers: { authorization: "Bearer ya29.fake-expired" },
  });
  assertEquals(expired.status, 401);
  const token = await s.fake.issueToken();
  const auth = { authorization: `Bearer ${token}` };
  const open = (body: unknown, type = "application/json; charset=UTF-8") =>
    call("/upload/drive/v3/files?uploadType=resumable", {
      method: "POST",
      headers: { ...auth, "content-type": type, "x-upload-content-length": "10" },
      body: JSON.stringify(body),
    });
  assertEquals((await open({ name: "a" }, "text/plain")).reason, "badContent");
  assertEquals((await open({})).reason, "required");
  assertEquals(
    (await open({ name: "a", properties: { k: "v".repeat(124) } })).reason,
    "invalidProperty",
  );
  assertEquals(
    (await open({ name: "a", contentHints: { thumbnail: { image: "AAAA" } } })).reason,
    "required",
  );
  assertEquals(
    (await open({
      name: "a",
      contentHints: { thumbnail: { image: "no+pad/", mimeType: "image/png" } },
    }))
      .reason,
    "invalid",
  );
  const badQ = await call(`/drive/v3/files?q=${encodeURIComponent("fullText contains 'x'")}`, {
    headers: auth,
  });
  assertEquals([badQ.status, badQ.reason], [400, "invalid"]);
  const wrongType = await call("/upload/drive/v3/files?uploadType=media", {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: "{}",
  });
  assertEquals(wrongType.reason, "invalidParameter");
});

Deno.test("google-drive push of the same name again replaces the file (no duplicate, the original's bug)", async () => {
  await using s = await plainSetup();
  const sif = join(s.h.dir, "a.sif");
  await Deno.writeFile(sif, new Uint8Array(1000).fill(7));
  for (let i = 0; i < 2; i++) {
    const r = await runCli(["push", "--name", "google-drive://dup/one:v1", sif], { env: s.env });
    assertEquals(r.code, 0, r.stderr);
  }
  assertEquals(s.images().length, 1);
  // Another version of the name is another file.
  await Deno.writeFile(sif, new Uint8Array(1000).fill(8));
  const r = await runCli(["push", "--name", "google-drive://dup/one:v1", sif], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(s.images().length, 2);
});

Deno.test("google-drive: the folder is the one at the top of My Drive, not a trashed or nested one", async () => {
  await using s = await plainSetup();
  const FOLDER = "application/vnd.google-apps.folder";
  const other = s.fake.put({ name: "elsewhere", mimeType: FOLDER });
  s.fake.put({ name: "sregistry", mimeType: FOLDER, parents: [other.id] });
  s.fake.put({ name: "sregistry", mimeType: FOLDER, trashed: true });
  const sif = join(s.h.dir, "a.sif");
  await Deno.writeFile(sif, new Uint8Array(100));
  const r = await runCli(["push", "--name", "google-drive://top/one:v1", sif], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  const folders = [...s.fake.files.values()].filter((f) =>
    f.mimeType === FOLDER && f.name === "sregistry"
  );
  assertEquals(folders.length, 3);
  const made = folders.find((f) => f.parents.length === 0 && !f.trashed)!;
  assertEquals(s.images().map((f) => f.parents), [[made.id]]);
});

Deno.test("google-drive push checks Drive's sha256Checksum; the fake refuses unknown fields", async () => {
  await using s = await plainSetup();
  const sif = join(s.h.dir, "a.sif");
  await Deno.writeFile(sif, new Uint8Array(3000).fill(3));
  s.fake.corruptNextUpload();
  const bad = await runCli(["push", "--name", "google-drive://sum/one:v1", sif], { env: s.env });
  assertEquals(bad.code, 6, bad.stderr);
  assert(bad.stderr.includes("push it again"), bad.stderr);
  assertEquals(s.images(), []);
  const ok = await runCli(["push", "--name", "google-drive://sum/one:v1", sif], { env: s.env });
  assertEquals(ok.code, 0, ok.stderr);
  assertEquals(s.images().length, 1);
  const token = await s.fake.issueToken();
  const r = await fetch(`${s.fake.url}/drive/v3/files?fields=files(id,nosuch)`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const body = await r.json();
  assertEquals([r.status, body.error.errors[0].reason], [400, "invalidParameter"]);
});

Deno.test("google-drive installed-app flow: a token_uri in clear text to another host is refused", async () => {
  await using s = await oauthSetup();
  const secrets = s.env.SREGISTRY_GOOGLE_DRIVE_CREDENTIALS;
  const json = JSON.parse(await Deno.readTextFile(secrets));
  json.installed.token_uri = "http://oauth.example.org/token";
  await Deno.writeTextFile(secrets, JSON.stringify(json));
  const r = await runCli(["search", "google-drive://"], { env: s.env, stdin: "4/0Acode\n" });
  assertEquals(r.code, 2, r.stderr);
  assert(r.stderr.includes("token_uri"), r.stderr);
  assert(!r.stderr.includes("/o/oauth2/auth?"), "the consent URL was shown");
});
