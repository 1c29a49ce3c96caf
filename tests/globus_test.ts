/**
 * globus:// beyond the conformance suite, through the CLI against the strict Globus fake: the
 * native-app sign-in with the code on stdin (PKCE checked by the fake), a refresh on expiry, failed
 * and paused tasks, the catalog row of a pull, Ctrl-C while waiting and watching the task again,
 * endpoint search, a push staged from outside the shared folders, and a missing Globus Connect
 * Personal.
 * @module
 */

import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { runCli, spawnCli, tempHome } from "./_cli.ts";
import { FAST_ENV } from "./conformance.ts";
import { startGlobusFake } from "./servers/globus_fake.ts";
import { parseRef } from "../clients/globus/_ref.ts";
import { readLocalGcp } from "../clients/globus/_local.ts";
import { collectionOf, suggestedNameOf } from "../clients/globus/mod.ts";

const LOCAL = "11111111-2222-4333-8444-555555555555";
const REMOTE = "6881ae2e-db26-11e5-9772-22000b9da45e";
const CLIENT = "ae32247c-2c17-4c43-92b5-ba7fe9957dbb";
const ACCESS = "AgExtraAccessToken0001";
const REFRESH = "rt-extra-0001";

function bytes(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

async function setup(options: { tokens?: boolean; expiresAt?: number } = {}) {
  const fake = startGlobusFake();
  const home = await tempHome();
  const dir = await Deno.realPath(home.dir);
  const lta = join(dir, "lta");
  const share = join(dir, "share");
  const remote = join(dir, "remote");
  await Deno.mkdir(lta);
  await Deno.mkdir(share);
  await Deno.mkdir(join(remote, "shub"), { recursive: true });
  await Deno.writeTextFile(join(lta, "client-id.txt"), `${LOCAL}\n`);
  await Deno.writeTextFile(join(lta, "config-paths"), `${share},0,1\n`);
  fake.addEndpoint({
    id: LOCAL,
    display_name: "my laptop",
    root: "/",
    home: share,
    gcp: true,
    allowed: [share],
    scope: "my-endpoints",
  });
  fake.addEndpoint({
    id: REMOTE,
    display_name: "Big Cluster",
    root: remote,
    scope: "shared-with-me",
  });
  fake.addEndpoint({
    id: "99999999-0000-4000-8000-000000000000",
    display_name: "Public Data",
    root: remote,
  });
  fake.addClient(CLIENT);
  fake.addToken(ACCESS);
  fake.addRefreshToken(CLIENT, REFRESH);
  const cache = join(dir, "cc");
  const store = join(cache, ".sregistry", "globus");
  if (options.tokens !== false) {
    await Deno.mkdir(join(cache, ".sregistry"), { recursive: true });
    await Deno.writeTextFile(
      store,
      JSON.stringify({
        transfer: {
          accessToken: ACCESS,
          expiresAt: options.expiresAt ?? Date.now() + 86_400_000,
          refreshToken: REFRESH,
        },
      }),
      { mode: 0o600 },
    );
  }
  const env: Record<string, string> = {
    ...home.env,
    ...FAST_ENV,
    SREGISTRY_GLOBUS_AUTH_BASE: fake.url,
    SREGISTRY_GLOBUS_TRANSFER_BASE: fake.transferBase,
    SREGISTRY_GLOBUS_GCP_DIR: lta,
    SREGISTRY_GLOBUS_POLL_INTERVAL: "0.05",
    SREGISTRY_CREDENTIALS_CACHE: cache,
    SREGISTRY_CLIENT: "globus",
  };
  const put = async (name: string, data: Uint8Array) =>
    await Deno.writeFile(join(remote, "shub", name), data);
  return {
    fake,
    env,
    dir,
    share,
    remote,
    store,
    put,
    uri: (name: string) => `globus://${REMOTE}:/shub/${name}`,
    async [Symbol.asyncDispose]() {
      await fake.stop();
      await home.cleanup();
    },
  };
}

/** Read a child's stderr until `pattern` matches; returns the text so far. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  pattern: RegExp,
  seen: { text: string },
): Promise<RegExpMatchArray> {
  const dec = new TextDecoder();
  for (;;) {
    const m = seen.text.match(pattern);
    if (m) return m;
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${pattern}: ${seen.text}`);
    seen.text += dec.decode(value, { stream: true });
  }
}

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, seen: { text: string }) {
  const dec = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    seen.text += dec.decode(value, { stream: true });
  }
}

Deno.test("globus signs in with the native-app PKCE flow, the code read from stdin", async () => {
  await using s = await setup({ tokens: false });
  await s.put("hello:v1.sif", bytes(5000));
  const child = spawnCli(["--json", "record", s.uri("hello:v1.sif")], {
    env: s.env,
    stdin: "",
  });
  const err = child.stderr.getReader();
  const seen = { text: "" };
  const m = await readUntil(err, /(http:\/\/127\.0\.0\.1:\d+\/v2\/oauth2\/authorize\?\S+)/, seen);
  const authorize = new URL(m[1]);
  assertEquals(authorize.searchParams.get("code_challenge_method"), "S256");
  assertEquals(authorize.searchParams.get("access_type"), "offline");
  assertEquals(authorize.searchParams.get("client_id"), CLIENT);
  // The browser: sign-in, redirect, the page with the code.
  const page = await (await fetch(authorize)).text();
  const code = page.match(/<pre id="code">([^<]+)<\/pre>/)?.[1];
  assert(code, page);
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(`${code}\n`));
  await w.close();
  await drain(err, seen);
  const status = await child.status;
  await child.stdout.cancel();
  assertEquals(status.code, 0, seen.text);
  const kept = JSON.parse(await Deno.readTextFile(s.store));
  assert(kept.transfer.refreshToken.startsWith("rt-transfer-"), JSON.stringify(kept));
  assert(kept.transfer.accessToken.startsWith("Ag"), JSON.stringify(kept));
  assert(!seen.text.includes(kept.transfer.accessToken), "the access token was printed");
  assertEquals(s.fake.calls.filter((c) => c === "POST /v2/oauth2/token").length, 1);
});

Deno.test("globus refuses a wrong code without keeping tokens", async () => {
  await using s = await setup({ tokens: false });
  await s.put("hello:v1.sif", bytes(10));
  const r = await runCli(["record", s.uri("hello:v1.sif")], { env: s.env, stdin: "not-a-code\n" });
  assertEquals(r.code, 4, r.stderr);
  let kept = true;
  try {
    await Deno.stat(s.store);
  } catch {
    kept = false;
  }
  assert(!kept, "tokens were saved");
});

Deno.test("globus refreshes an expired access token and saves the new one", async () => {
  await using s = await setup({ expiresAt: Date.now() - 1000 });
  await s.put("hello:v1.sif", bytes(10));
  const r = await runCli(["--json", "record", s.uri("hello:v1.sif")], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(s.fake.calls.filter((c) => c === "POST /v2/oauth2/token").length, 1);
  const kept = JSON.parse(await Deno.readTextFile(s.store));
  assert(kept.transfer.accessToken !== ACCESS, "the refreshed token was not saved");
  assertEquals(kept.transfer.refreshToken, REFRESH);
  assert(!r.stderr.includes(REFRESH));
});

Deno.test("globus refreshes once when Globus says the token is no longer active", async () => {
  await using s = await setup();
  s.fake.expire(ACCESS);
  await s.put("hello:v1.sif", bytes(10));
  const r = await runCli(["--json", "record", s.uri("hello:v1.sif")], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(s.fake.calls.filter((c) => c === "POST /v2/oauth2/token").length, 1);
});

Deno.test("globus pull is recorded in the catalog and leaves nothing in the shared folder", async () => {
  await using s = await setup();
  const data = bytes(70_000);
  await s.put("hello:v1.sif", data);
  const r = await runCli(["--json", "pull", s.uri("hello:v1.sif")], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { path: string; uri: string };
  assertEquals(await Deno.readFile(out.path), data);
  const images = await runCli(["--json", "images"], { env: s.env });
  const rows = JSON.parse(images.stdout) as { uri: string; client: string; image: string }[];
  assertEquals(rows.length, 1, images.stdout);
  assertEquals(rows[0].client, "globus");
  assert(rows[0].uri.includes("big-cluster/hello:v1"), rows[0].uri);
  const ins = await runCli(["--json", "inspect", out.uri], { env: s.env });
  assert(ins.stdout.includes(REMOTE), ins.stdout);
  const landing = [...Deno.readDirSync(join(s.share, ".sregistry-globus"))];
  assertEquals(landing, [], "the landing folder was not cleaned");
  const transfer = [...s.fake.tasks.values()][0];
  assertEquals(transfer.status, "SUCCEEDED");
  assertEquals(transfer.source, REMOTE);
  assertEquals(transfer.destination, LOCAL);
});

Deno.test("globus pull of a task that fails exits 5 with Globus's reason and no row", async () => {
  await using s = await setup();
  await s.put("bad:v1.sif", bytes(10));
  s.fake.fate("/bad:v1.sif", {
    fail: { code: "PERMISSION_DENIED", description: "Permission denied on the source" },
  });
  const r = await runCli(["pull", s.uri("bad:v1.sif")], { env: s.env });
  assertEquals(r.code, 5, r.stderr);
  assert(/failed \(PERMISSION_DENIED: Permission denied on the source\)/.test(r.stderr), r.stderr);
  const images = await runCli(["--json", "images"], { env: s.env });
  assertEquals(JSON.parse(images.stdout), []);
});

Deno.test("globus reports a paused task with the pause rule's message", async () => {
  await using s = await setup();
  await s.put("held:v1.sif", bytes(10));
  s.fake.fate("/held:v1.sif", { pause: "Maintenance of the cluster storage until Monday" });
  const r = await runCli(["--json", "pull", s.uri("held:v1.sif")], { env: s.env });
  assertEquals(r.code, 5, r.stderr);
  const err = JSON.parse(r.stderr.trim().split("\n").at(-1)!).error;
  assert(
    /is paused \(Maintenance of the cluster storage until Monday\)/.test(err.message),
    err.message,
  );
  const task = [...s.fake.tasks.keys()][0];
  assert(err.message.includes(`sregistry pull globus://task/${task}`), err.message);
});

Deno.test("globus Ctrl-C while waiting exits 130 with the task, and pull globus://task/<id> finishes it", async () => {
  await using s = await setup();
  const data = bytes(3000);
  await s.put("long:v1.sif", data);
  s.fake.fate("/long:v1.sif", { hang: true });
  const child = spawnCli(["pull", s.uri("long:v1.sif")], { env: s.env });
  const deadline = Date.now() + 20_000;
  while (s.fake.pollsFor("/long:v1.sif") < 2 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGINT");
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 130, stderr);
  const task = [...s.fake.tasks.keys()][0];
  assert(stderr.includes(`sregistry pull globus://task/${task}`), stderr);
  s.fake.clearFate("/long:v1.sif");
  const again = await runCli(["--json", "pull", `globus://task/${task}`], { env: s.env });
  assertEquals(again.code, 0, again.stderr);
  const got = JSON.parse(again.stdout) as { path: string; uri: string };
  assertEquals(await Deno.readFile(got.path), data);
  assert(got.uri.includes("big-cluster/long:v1"), got.uri);
});

Deno.test("globus search lists endpoints, and the images of an endpoint's folder", async () => {
  await using s = await setup();
  await s.put("a:v1.sif", bytes(10));
  await s.put("b.simg", bytes(10));
  await s.put("notes.txt", bytes(10));
  const eps = await runCli(["--json", "search", "globus://"], { env: s.env });
  assertEquals(eps.code, 0, eps.stderr);
  const uris = (JSON.parse(eps.stdout) as { uri: string }[]).map((h) => h.uri).sort();
  assertEquals(uris, [`globus://${LOCAL}`, `globus://${REMOTE}`]);
  const words = await runCli(["--json", "search", "globus://public"], { env: s.env });
  assert(words.stdout.includes("Public Data"), words.stdout);
  const ls = await runCli(["--json", "search", "--endpoint", `${REMOTE}:/shub/`], { env: s.env });
  assertEquals(ls.code, 0, ls.stderr);
  const files = (JSON.parse(ls.stdout) as { uri: string }[]).map((h) => h.uri).sort();
  assertEquals(files, [s.uri("a:v1.sif"), s.uri("b.simg")]);
  const bare = await runCli(["--json", "search", `${REMOTE}:/shub/a`], { env: s.env });
  assertEquals((JSON.parse(bare.stdout) as { uri: string }[]).map((h) => h.uri), [
    s.uri("a:v1.sif"),
  ]);
});

Deno.test("globus push stages a file from outside the shared folders and cleans up", async () => {
  await using s = await setup();
  const file = join(s.dir, "outside.sif");
  const data = bytes(4096);
  await Deno.writeFile(file, data);
  const r = await runCli(["--json", "push", file, "--name", `globus://${REMOTE}`], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await Deno.readFile(join(s.remote, ".singularity", "shub", "outside.sif")), data);
  const out = JSON.parse(r.stdout) as { url: string; task: string };
  assertEquals(out.url, `globus://${REMOTE}:~/.singularity/shub/outside.sif`);
  assertEquals([...Deno.readDirSync(join(s.share, ".sregistry-globus", "outbox"))], []);
  // The task again, by id: what it moved.
  const task = [...s.fake.tasks.keys()][0];
  assertEquals(out.task, task);
  const w = await runCli(["--json", "search", `globus://task/${task}`], { env: s.env });
  assertEquals(w.code, 0, w.stderr);
  assert(w.stdout.includes("/.singularity/shub/outside.sif"), w.stdout);
});

Deno.test("globus without Globus Connect Personal is a clear configuration error", async () => {
  await using s = await setup();
  await s.put("hello:v1.sif", bytes(10));
  const r = await runCli(["pull", s.uri("hello:v1.sif")], {
    env: { ...s.env, SREGISTRY_GLOBUS_GCP_DIR: join(s.dir, "nowhere") },
  });
  assertEquals(r.code, 2, r.stderr);
  assert(/No Globus Connect Personal found/.test(r.stderr), r.stderr);
});

Deno.test("globus delete removes the file with a delete task", async () => {
  await using s = await setup();
  await s.put("old:v1.sif", bytes(10));
  const r = await runCli(["delete", "--force", s.uri("old:v1.sif")], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  let gone = false;
  try {
    await Deno.stat(join(s.remote, "shub", "old:v1.sif"));
  } catch {
    gone = true;
  }
  assert(gone, "the file is still there");
  assertEquals([...s.fake.tasks.values()][0].type, "DELETE");
});

Deno.test("globus bases must be https unless loopback", async () => {
  await using s = await setup();
  const r = await runCli(["search", "globus://"], {
    env: { ...s.env, SREGISTRY_GLOBUS_TRANSFER_BASE: "http://transfer.example.org/v0.10" },
  });
  assertEquals(r.code, 2, r.stderr);
});

Deno.test("globus takes the original's bare <endpoint>:<path> form with SREGISTRY_CLIENT", async () => {
  await using s = await setup();
  const data = bytes(1234);
  await s.put("bare:v2.sif", data);
  const r = await runCli(["--json", "pull", `${REMOTE}:/shub/bare:v2.sif`], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await Deno.readFile((JSON.parse(r.stdout) as { path: string }).path), data);
});

Deno.test("globus finds its endpoint by search when client-id.txt is missing", async () => {
  await using s = await setup();
  await Deno.remove(join(s.dir, "lta", "client-id.txt"));
  await s.put("x:v1.sif", bytes(10));
  const r = await runCli(
    ["pull", "--no-cache", "--file", join(s.dir, "x.sif"), s.uri("x:v1.sif")],
    {
      env: s.env,
    },
  );
  assertEquals(r.code, 0, r.stderr);
  assert(s.fake.calls.includes("GET /v0.10/endpoint_search"), s.fake.calls.join("\n"));
});

Deno.test("globus keeps the sign-in sregistry-cli saved in the secrets file", async () => {
  await using s = await setup({ tokens: false });
  await s.put("x:v1.sif", bytes(10));
  await Deno.writeTextFile(
    s.env.SREGISTRY_CLIENT_SECRETS,
    JSON.stringify({
      SREGISTRY_CLIENT: "globus",
      globus: {
        GLOBUS_TRANSFER_RESPONSE: {
          access_token: "AgFromTheOriginal",
          refresh_token: REFRESH,
          expires_at_seconds: Math.floor(Date.now() / 1000) - 60,
          resource_server: "transfer.api.globus.org",
          token_type: "Bearer",
        },
      },
    }),
    { mode: 0o600 },
  );
  const r = await runCli(["--json", "record", s.uri("x:v1.sif")], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(s.fake.calls.filter((c) => c === "POST /v2/oauth2/token").length, 1);
  const kept = JSON.parse(await Deno.readTextFile(s.store));
  assertEquals(kept.transfer.refreshToken, REFRESH);
  assert(!r.stderr.includes("AgFromTheOriginal") && !r.stderr.includes(REFRESH));
});

Deno.test("globus gives up after SREGISTRY_GLOBUS_TIMEOUT with the command to watch again", async () => {
  await using s = await setup();
  await s.put("stuck:v1.sif", bytes(10));
  s.fake.fate("/stuck:v1.sif", { hang: true });
  const r = await runCli(["pull", s.uri("stuck:v1.sif")], {
    env: { ...s.env, SREGISTRY_GLOBUS_TIMEOUT: "0.3" },
  });
  assertEquals(r.code, 5, r.stderr);
  const task = [...s.fake.tasks.keys()][0];
  assert(r.stderr.includes(`sregistry pull globus://task/${task}`), r.stderr);
});

Deno.test("globus refuses to land a pull when no shared folder is writable", async () => {
  await using s = await setup();
  await Deno.writeTextFile(join(s.dir, "lta", "config-paths"), `${s.share},0,0\n`);
  await s.put("x:v1.sif", bytes(10));
  const r = await runCli(["pull", s.uri("x:v1.sif")], { env: s.env });
  assertEquals(r.code, 2, r.stderr);
  assert(/shared writable/.test(r.stderr), r.stderr);
  assertEquals(s.fake.tasks.size, 0);
});

Deno.test("globus says so when Globus Connect Personal is not connected", async () => {
  await using s = await setup();
  s.fake.addEndpoint({
    id: LOCAL,
    display_name: "my laptop",
    root: "/",
    home: s.share,
    gcp: true,
    connected: false,
    allowed: [s.share],
    scope: "my-endpoints",
  });
  await s.put("x:v1.sif", bytes(10));
  const r = await runCli(["pull", s.uri("x:v1.sif")], { env: s.env });
  assertEquals(r.code, 2, r.stderr);
  assert(/not connected; start or resume it/.test(r.stderr), r.stderr);
  assertEquals(s.fake.tasks.size, 0);
});

Deno.test("globus search of an endpoint id lists the images in its home folder", async () => {
  await using s = await setup();
  await Deno.writeFile(join(s.remote, "top:v1.sif"), bytes(10));
  const r = await runCli(["--json", "search", `globus://${REMOTE}`], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals((JSON.parse(r.stdout) as { uri: string }[]).map((h) => h.uri), [
    `globus://${REMOTE}:~/top:v1.sif`,
  ]);
});

Deno.test("globus references: prefixed, bare, relative, tasks; .. refused", () => {
  assertEquals(parseRef(`globus://${REMOTE}:/shub/a.sif`), {
    kind: "path",
    endpoint: REMOTE,
    path: "/shub/a.sif",
  });
  // The original's bare form, relative to the home folder.
  assertEquals(parseRef(`${REMOTE}:.singularity/shub/pancakes.simg`), {
    kind: "path",
    endpoint: REMOTE,
    path: "~/.singularity/shub/pancakes.simg",
  });
  assertEquals(parseRef(`globus://${REMOTE}`), { kind: "path", endpoint: REMOTE });
  assertEquals(parseRef(`globus://task/${REMOTE.toUpperCase()}`), { kind: "task", task: REMOTE });
  let refused = 0;
  for (const bad of [`globus://${REMOTE}:/a/../b.sif`, "globus://:/x.sif", "globus://a b:/x"]) {
    try {
      parseRef(bad);
    } catch {
      refused++;
    }
  }
  assertEquals(refused, 3);
});

Deno.test("globus catalog names come from the file and the endpoint's display name", () => {
  assertEquals(collectionOf("My Big Cluster!", REMOTE), "my-big-cluster");
  assertEquals(suggestedNameOf("pancakes.simg", "my-cluster"), "my-cluster/pancakes:latest");
  assertEquals(suggestedNameOf("hello:v1.sif", "lab"), "lab/hello:v1");
});

Deno.test("globus reads config-paths as Globus Connect Personal writes it", async () => {
  const home = await Deno.realPath(await Deno.makeTempDir());
  try {
    const lta = join(home, ".globusonline", "lta");
    await Deno.mkdir(lta, { recursive: true });
    await Deno.mkdir(join(home, "data,1"));
    await Deno.mkdir(join(home, "ro"));
    await Deno.writeTextFile(join(lta, "client-id.txt"), " abc-123 \n");
    await Deno.writeTextFile(
      join(lta, "config-paths"),
      `${join(home, "missing")},0,1\n${join(home, "ro")},0,0\n${
        join(home, "data,1")
      },1,1\n~/,0,1\n`,
    );
    const g = readLocalGcp(lta, home, "X");
    assertEquals(g.id, "abc-123");
    assertEquals(g.roots, [join(home, "ro"), join(home, "data,1"), home]);
    assertEquals(g.writable, [join(home, "data,1"), home]);
    // No config-paths: the home folder, read-write.
    await Deno.remove(join(lta, "config-paths"));
    assertEquals(readLocalGcp(lta, home, "X").writable, [home]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("globus pulls /~/ paths from the endpoint's home folder", async () => {
  await using s = await setup();
  const data = bytes(321);
  await Deno.mkdir(join(s.remote, "imgs"));
  await Deno.writeFile(join(s.remote, "imgs", "home:v1.sif"), data);
  const r = await runCli(["--json", "pull", `globus://${REMOTE}:/~/imgs/home:v1.sif`], {
    env: s.env,
  });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await Deno.readFile((JSON.parse(r.stdout) as { path: string }).path), data);
});

Deno.test("globus endpoint search follows offset/limit/has_next_page to the end, and to Globus's 1000", async () => {
  await using s = await setup();
  for (let i = 0; i < 250; i++) {
    const n = String(i).padStart(4, "0");
    s.fake.addEndpoint({
      id: `aaaaaaaa-0000-4000-8000-00000000${n}`,
      display_name: `shared ${n}`,
      root: s.remote,
      scope: "shared-with-me",
    });
  }
  const searches = () => s.fake.calls.filter((c) => c === "GET /v0.10/endpoint_search").length;
  const r = await runCli(["--json", "search", "globus://"], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  const hits = JSON.parse(r.stdout) as { uri: string }[];
  assertEquals(hits.length, 252, "yours, and all 250 + 1 shared with you");
  assertEquals(new Set(hits.map((h) => h.uri)).size, 252);
  assertEquals(searches(), 1 + 3, "one page of yours, three of shared-with-me");

  // More than Globus serves: the first 1000, and a warning that says so (no 400, no loop).
  for (let i = 0; i < 1100; i++) {
    s.fake.addEndpoint({
      id: `bbbbbbbb-0000-4000-8000-0000000${String(i).padStart(5, "0")}`,
      display_name: `bulk ${i}`,
      root: s.remote,
    });
  }
  const before = searches();
  const words = await runCli(["--json", "search", "globus://bulk"], { env: s.env });
  assertEquals(words.code, 0, words.stderr);
  assertEquals((JSON.parse(words.stdout) as unknown[]).length, 1000);
  assert(/More than 1000 endpoints match in scope all/.test(words.stderr), words.stderr);
  assertEquals(searches() - before, 1 + 1 + 10, "one page each of yours and shared, ten of all");

  // The fake refuses what Globus refuses.
  const past = await fetch(
    `${s.fake.transferBase}/endpoint_search?filter_scope=all&filter_fulltext=bulk&offset=950&limit=100`,
    { headers: { authorization: `Bearer ${ACCESS}` } },
  );
  assertEquals(past.status, 400);
  assertEquals((await past.json()).code, "ClientError.BadRequest");
  const page = await (await fetch(
    `${s.fake.transferBase}/endpoint_search?filter_scope=shared-with-me&offset=200&limit=100`,
    { headers: { authorization: `Bearer ${ACCESS}` } },
  )).json();
  assertEquals([page.offset, page.limit, page.has_next_page, page.DATA.length], [
    200,
    100,
    false,
    51,
  ]);
});

Deno.test("globus reports an inactive task with its reason and the command to watch it again", async () => {
  await using s = await setup();
  await s.put("stale:v1.sif", bytes(10));
  s.fake.fate("/stale:v1.sif", {
    inactive: { code: "CREDENTIAL_EXPIRED", description: "the endpoint's credentials expired" },
  });
  const r = await runCli(["--json", "pull", s.uri("stale:v1.sif")], { env: s.env });
  assertEquals(r.code, 5, r.stderr);
  const err = JSON.parse(r.stderr.trim().split("\n").at(-1)!).error;
  assert(/is inactive \(the endpoint's credentials expired\)/.test(err.message), err.message);
  const task = [...s.fake.tasks.keys()][0];
  assert(err.message.includes(`sregistry pull globus://task/${task}`), err.message);
  const images = await runCli(["--json", "images"], { env: s.env });
  assertEquals(JSON.parse(images.stdout), []);
});

Deno.test("globus push: Ctrl-C exits 130 with the task, search globus://task/<id> finishes it", async () => {
  await using s = await setup();
  const file = join(s.dir, "pushme.sif");
  const data = bytes(2048);
  await Deno.writeFile(file, data);
  s.fake.fate("/pushme.sif", { hang: true });
  const child = spawnCli(["push", file, "--name", `globus://${REMOTE}:/shub/`], { env: s.env });
  const deadline = Date.now() + 20_000;
  while (s.fake.pollsFor("/pushme.sif") < 2 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGINT");
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 130, stderr);
  const task = [...s.fake.tasks.keys()][0];
  assert(stderr.includes(`sregistry search globus://task/${task}`), stderr);
  const outbox = join(s.share, ".sregistry-globus", "outbox");
  assertEquals([...Deno.readDirSync(outbox)].length, 1, "the staged copy stays for the task");

  s.fake.clearFate("/pushme.sif");
  const w = await runCli(["--json", "search", `globus://task/${task}`], { env: s.env });
  assertEquals(w.code, 0, w.stderr);
  const hits = JSON.parse(w.stdout) as { uri: string; details: { status: string } }[];
  assertEquals(hits.map((h) => [h.uri, h.details.status]), [
    [`globus://${REMOTE}:/shub/pushme.sif`, "SUCCEEDED"],
  ]);
  assertEquals(await Deno.readFile(join(s.remote, "shub", "pushme.sif")), data);
  assertEquals([...Deno.readDirSync(outbox)], [], "the staged copy goes once the task ends");

  // A push that ends in the same run reports the task's final status in --json.
  const again = await runCli(["--json", "push", file, "--name", `globus://${REMOTE}:/shub/b.sif`], {
    env: s.env,
  });
  assertEquals(again.code, 0, again.stderr);
  assertEquals(JSON.parse(again.stdout).status, "SUCCEEDED");
});

Deno.test("globus fake refuses what Globus refuses: bad or expired tokens, malformed tasks", async () => {
  await using s = await setup();
  const base = s.fake.transferBase;
  const get = (path: string, token?: string) =>
    fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  for (const token of [undefined, "Ag-forged"]) {
    const r = await get(`/endpoint/${REMOTE}`, token);
    assertEquals(r.status, 401);
    assertEquals((await r.json()).code, "AuthenticationFailed");
  }
  s.fake.addToken("AgShortLived", 60);
  s.fake.expire("AgShortLived");
  const expired = await get(`/endpoint/${REMOTE}`, "AgShortLived");
  assertEquals(expired.status, 401);
  await expired.body?.cancel();

  const post = (doc: unknown, type = "application/json") =>
    fetch(`${base}/transfer`, {
      method: "POST",
      headers: { authorization: `Bearer ${ACCESS}`, "content-type": type },
      body: JSON.stringify(doc),
    });
  const { value } = await (await get("/submission_id", ACCESS)).json();
  const item = { DATA_TYPE: "transfer_item", source_path: "/shub/a.sif", destination_path: "/b" };
  const good = {
    DATA_TYPE: "transfer",
    submission_id: value,
    source_endpoint: REMOTE,
    destination_endpoint: LOCAL,
    DATA: [item],
  };
  const cases: [unknown, string?][] = [
    [{ ...good, DATA_TYPE: "delete" }],
    [{ ...good, submission_id: "never-issued" }],
    [{ ...good, bogus: 1 }],
    [{ ...good, DATA: [] }],
    [{ ...good, DATA: [{ ...item, DATA_TYPE: "delete_item" }] }],
    [{ ...good, label: "no/slashes" }],
    [good, "text/plain"],
  ];
  for (const [doc, type] of cases) {
    const r = await post(doc, type);
    assertEquals(r.status, 400, JSON.stringify(doc));
    assertEquals((await r.json()).code, "ClientError.BadRequest");
  }
  const missing = await post({ ...good, destination_endpoint: crypto.randomUUID() });
  assertEquals(missing.status, 404);
  assertEquals((await missing.json()).code, "EndpointNotFound");
  assertEquals(s.fake.tasks.size, 0, "nothing refused became a task");
});
