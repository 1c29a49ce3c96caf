/**
 * google-storage:// beyond the conformance suite: token refresh, a bad signature, dropped and
 * failed chunks resumed, pagination, the container filter, the emulator redirect, bucket creation,
 * digest checks and delete. The service account key is generated here (WebCrypto).
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { runCli, tempHome } from "./_cli.ts";
import { FAST_ENV } from "./conformance.ts";
import { CHUNK_QUANTUM, makeTestAccount, startGcsFake } from "./servers/gcs_fake.ts";
import { buildSingularityLike } from "./_sif_writer.ts";
import { createApp } from "../mod.ts";
import { jwtBearerAuth, parseServiceAccount } from "../core/auth/jwt_bearer.ts";
import { ConfigError, NetworkError, UsageError } from "../core/errors.ts";
import { createHttp } from "../core/http.ts";
import { createLogger, Level, memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";
import { storageEndpoint } from "../clients/gcs/endpoint.ts";
import { resumableUpload } from "../clients/gcs/resumable_upload.ts";
import { isPrivate, parseChunkSize } from "../clients/google-storage/mod.ts";
import { pushMetadata } from "../clients/gcs/layout.ts";
import { parseImageName } from "../core/names.ts";

const SCOPE = "https://www.googleapis.com/auth/devstorage.read_write";

async function setup(options: { pageLimit?: number } = {}) {
  const fake = startGcsFake(options);
  const home = await tempHome();
  const account = await makeTestAccount(fake.tokenUri);
  fake.addAccount(account.email, account.publicKey);
  const keyFile = join(home.dir, "key.json");
  await Deno.writeTextFile(keyFile, account.json, { mode: 0o600 });
  const env = {
    ...home.env,
    ...FAST_ENV,
    GOOGLE_APPLICATION_CREDENTIALS: keyFile,
    SREGISTRY_GOOGLE_STORAGE_BUCKET: "test-bucket",
    STORAGE_EMULATOR_HOST: fake.url,
  };
  return {
    fake,
    home,
    account,
    keyFile,
    env,
    async [Symbol.asyncDispose]() {
      await fake.stop();
      await home.cleanup();
    },
  };
}

function sha(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

/** A direct job against the fake (no CLI), with a short stall timeout. */
async function uploadSetup(size: number) {
  const s = await setup();
  s.fake.addBucket("b1");
  const file = join(s.home.dir, "blob.bin");
  const data = randomBytes(size);
  await Deno.writeFile(file, data);
  const log = createLogger({ level: Level.DEBUG, sink: memorySink() });
  const http = createHttp({ log, retries: 3, backoffBaseMs: 1, stallTimeoutMs: 400 });
  const auth = jwtBearerAuth({
    http,
    account: parseServiceAccount(s.account.json, "k"),
    scopes: SCOPE,
  });
  const job = {
    http,
    auth,
    uploadRoot: `${s.fake.url}/upload/storage/v1`,
    bucket: "b1",
    name: "c/i:t@v.sif",
    file,
    chunkSize: CHUNK_QUANTUM,
    metadata: { type: "container" },
  };
  return { ...s, data, job, http, log };
}

Deno.test("gcs upload: a dropped chunk resumes from the 308 Range the session reports", async () => {
  await using s = await uploadSetup(4 * CHUNK_QUANTUM + 1000);
  s.fake.dropChunks(1);
  const o = await resumableUpload(s.job);
  assertEquals(o.name, "c/i:t@v.sif");
  assertEquals(o.size, String(s.data.length));
  const stored = s.fake.buckets.get("b1")!.objects.get("c/i:t@v.sif")!;
  assertEquals(sha(stored.data), sha(s.data), "the object is the file byte for byte");
  assertEquals(stored.metadata, { type: "container" });
  assert(s.fake.stats.statusQueries >= 1, "the session was never asked where it stands");
});

Deno.test("gcs upload: a 503 mid-chunk keeps the persisted part and resumes", async () => {
  await using s = await uploadSetup(3 * CHUNK_QUANTUM);
  s.job.chunkSize = 2 * CHUNK_QUANTUM;
  s.fake.failChunks(2);
  await resumableUpload(s.job);
  const stored = s.fake.buckets.get("b1")!.objects.get("c/i:t@v.sif")!;
  assertEquals(sha(stored.data), sha(s.data));
  assertEquals(s.fake.stats.statusQueries, 2);
});

Deno.test("gcs upload: an interrupted session continues in a later run without resending", async () => {
  await using s = await uploadSetup(4 * CHUNK_QUANTUM);
  s.job.chunkSize = 2 * CHUNK_QUANTUM;
  let session: string | undefined;
  s.fake.failChunks(1);
  const failing = createHttp({ log: s.log, retries: 0, backoffBaseMs: 1 });
  let error: unknown;
  try {
    await resumableUpload({ ...s.job, http: failing, onSession: (u) => session = u });
  } catch (e) {
    error = e;
  }
  assert(error instanceof NetworkError && /run the push again/.test(error.message), String(error));
  assert(session, "no session URI was handed out");
  const chunksBefore = s.fake.stats.chunks;
  await resumableUpload({ ...s.job, session });
  const stored = s.fake.buckets.get("b1")!.objects.get("c/i:t@v.sif")!;
  assertEquals(sha(stored.data), sha(s.data));
  // The failed chunk left 256 KiB persisted: the next run sends [256K, 768K) and [768K, 1M).
  assertEquals(s.fake.stats.chunks - chunksBefore, 2);
});

Deno.test("gcs fake: a chunk that is not a multiple of 256 KiB is refused (400)", async () => {
  await using s = await uploadSetup(CHUNK_QUANTUM * 2);
  let session = "";
  await resumableUpload({
    ...s.job,
    onSession: (u) => session = u,
    name: "other.sif",
  });
  // A new session, then a misaligned first chunk straight to the fake.
  const token = await s.job.auth.token();
  const open = await fetch(`${s.fake.url}/upload/storage/v1/b/b1/o?uploadType=resumable&name=x`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
  });
  session = open.headers.get("location")!;
  const res = await fetch(session, {
    method: "PUT",
    headers: { "content-range": `bytes 0-99999/${CHUNK_QUANTUM * 2}` },
    body: new Uint8Array(100000),
  });
  const body = await res.json();
  assertEquals(res.status, 400);
  assert(/262144/.test(body.error.errors[0].message), JSON.stringify(body));
  // And the client refuses such a chunk size itself.
  let e: unknown;
  try {
    await resumableUpload({ ...s.job, chunkSize: 100000 });
  } catch (x) {
    e = x;
  }
  assert(e instanceof UsageError, String(e));
});

Deno.test("gcs: an expired token is refreshed once, across runs through the credential store", async () => {
  await using s = await setup();
  const fixture = join(s.home.dir, "img.sif");
  await Deno.writeFile(fixture, buildSingularityLike({ labels: { maintainer: "me" } }));
  const push = await runCli(["push", fixture, "--name", "google-storage://team/app:1"], {
    env: s.env,
  });
  assertEquals(push.code, 0, push.stderr);
  assertEquals(s.fake.stats.tokens, 1);
  const search = await runCli(["search", "google-storage://team"], { env: s.env });
  assertEquals(search.code, 0, search.stderr);
  assertEquals(s.fake.stats.tokens, 1, "the kept token was not reused by the next run");
  s.fake.expireTokens();
  const pull = await runCli(["pull", "google-storage://team/app:1"], { env: s.env });
  assertEquals(pull.code, 0, pull.stderr);
  assertEquals(s.fake.stats.tokens, 2, "one refresh");
  assertEquals(s.fake.stats.unauthorized, 1, "one 401");
  // The object carries the original's metadata, our digest, and the label.
  const objects = [...s.fake.buckets.get("test-bucket")!.objects];
  assertEquals(objects.length, 1);
  const [name, o] = objects[0];
  const hex = sha(await Deno.readFile(fixture));
  assertEquals(name, `team/app:1@${hex}.sif`);
  assertEquals(o.metadata?.uri, `team/app:1@${hex}`);
  assertEquals(o.metadata?.type, "container");
  assertEquals(o.metadata?.sha256sum, hex);
  assertEquals(o.metadata?.maintainer, "me");
  assertEquals(o.acl, [{ entity: "allUsers", role: "READER" }], "made public");
});

Deno.test("gcs: a key whose signature does not verify is exit 4 naming the reason", async () => {
  await using s = await setup();
  s.fake.addBucket("test-bucket");
  const other = await makeTestAccount(s.fake.tokenUri, s.account.email);
  const bad = join(s.home.dir, "bad.json");
  await Deno.writeTextFile(bad, other.json);
  const r = await runCli(["search", "google-storage://"], {
    env: { ...s.env, GOOGLE_APPLICATION_CREDENTIALS: bad },
  });
  assertEquals(r.code, 4, r.stderr);
  assert(/Invalid JWT Signature/.test(r.stderr), r.stderr);
  assert(r.stderr.includes("GOOGLE_APPLICATION_CREDENTIALS"), r.stderr);
});

Deno.test("gcs: search pages through the listing and keeps only type container", async () => {
  await using s = await setup({ pageLimit: 3 });
  for (let i = 0; i < 10; i++) {
    s.fake.put("test-bucket", `col/img${i}:v1@abc${i}.sif`, new Uint8Array(10), {
      type: "container",
      uri: `col/img${i}:v1@abc${i}`,
      maintainer: i === 7 ? "Alice" : "bob",
    });
  }
  for (let i = 0; i < 5; i++) {
    s.fake.put("test-bucket", `col/other${i}.sif`, new Uint8Array(10), { type: "notes" });
    s.fake.put("test-bucket", `col/plain${i}.sif`, new Uint8Array(10));
  }
  const r = await runCli(["--json", "search"], {
    env: { ...s.env, SREGISTRY_CLIENT: "google-storage" },
  });
  assertEquals(r.code, 0, r.stderr);
  const hits = (JSON.parse(r.stdout) as { uri: string }[]).map((h) => h.uri).sort();
  assertEquals(hits, [...Array(10).keys()].map((i) => `google-storage://col/img${i}:v1@abc${i}`));
  assert(s.fake.stats.listPages >= 7, `only ${s.fake.stats.listPages} pages were read`);
  // A query matches metadata values too (case-insensitive), as the original's did.
  const q = await runCli(["--json", "search", "google-storage://alice"], { env: s.env });
  assertEquals(q.code, 0, q.stderr);
  assertEquals((JSON.parse(q.stdout) as { uri: string }[]).map((h) => h.uri), [
    "google-storage://col/img7:v1@abc7",
  ]);
});

Deno.test("gcs: STORAGE_EMULATOR_HOST without a scheme sends every call there", async () => {
  await using s = await setup();
  const fixture = join(s.home.dir, "img.sif");
  await Deno.writeFile(fixture, buildSingularityLike({}));
  const env = { ...s.env, STORAGE_EMULATOR_HOST: s.fake.url.replace("http://", "") };
  const push = await runCli(["push", fixture, "--name", "google-storage://e/x:1"], { env });
  assertEquals(push.code, 0, push.stderr);
  const pull = await runCli([
    "pull",
    "--no-cache",
    "--file",
    join(s.home.dir, "o.sif"),
    "google-storage://e/x:1",
  ], { env });
  assertEquals(pull.code, 0, pull.stderr);
  const kinds = s.fake.stats.requests.map((r) =>
    r.split(" ").slice(0, 2).join(" ").replace(/\?.*/, "")
  );
  for (
    const want of [
      "GET /storage/v1/b/test-bucket",
      "POST /storage/v1/b",
      "POST /upload/storage/v1/b/test-bucket/o",
      "PUT /upload/storage/v1/b/test-bucket/o",
      "GET /storage/v1/b/test-bucket/o",
    ]
  ) {
    assert(kinds.includes(want), `${want} did not reach the emulator: ${kinds.join(", ")}`);
  }
  assert(
    kinds.some((k) => k.startsWith("GET /download/storage/v1/b/test-bucket/o/")),
    kinds.join(", "),
  );
  // The missing bucket was created in the key's project.
  assert(s.fake.buckets.has("test-bucket"));
});

Deno.test("gcs: without an emulator every call goes to Google, the token to the key's token_uri", async () => {
  assertEquals(storageEndpoint(undefined).api, "https://storage.googleapis.com/storage/v1");
  assertEquals(storageEndpoint("localhost:9023").origin, "http://localhost:9023");
  assertEquals(storageEndpoint("gcs.example.com:443").origin, "https://gcs.example.com");
  for (const bad of ["http://gcs.example.com", "ftp://x", "http://127.0.0.1:1/path"]) {
    let e: unknown;
    try {
      storageEndpoint(bad);
    } catch (x) {
      e = x;
    }
    assert(e instanceof ConfigError, `${bad}: ${e}`);
  }
  const home = await tempHome();
  try {
    const account = await makeTestAccount("https://oauth2.googleapis.com/token");
    const keyFile = join(home.dir, "key.json");
    await Deno.writeTextFile(keyFile, account.json);
    const seen: string[] = [];
    const fetchStub: typeof fetch = (input) => {
      const url = new Request(input).url;
      seen.push(url);
      if (url.startsWith("https://oauth2.googleapis.com/token")) {
        return Promise.resolve(Response.json({ access_token: "ya29.stub", expires_in: 3600 }));
      }
      return Promise.resolve(Response.json({ kind: "storage#objects" }));
    };
    const app = createApp({
      env: envFrom({ ...home.env, GOOGLE_APPLICATION_CREDENTIALS: keyFile, USER: "Tester" }),
      fetch: fetchStub,
      stderr: memorySink(),
      stdout: memorySink(),
    });
    try {
      const { client } = app.getClient("google-storage://x/y");
      assertEquals(await client.search!(undefined), []);
    } finally {
      app.close();
    }
    assertEquals(seen.map((u) => u.replace(/\?.*/, "")), [
      "https://oauth2.googleapis.com/token",
      "https://storage.googleapis.com/storage/v1/b/sregistry-tester/o",
    ]);
  } finally {
    await home.cleanup();
  }
});

Deno.test("gcs: a pull is verified against sha256sum (exit 6); an object without one by size", async () => {
  await using s = await setup();
  const data = new TextEncoder().encode("some image bytes");
  s.fake.put("test-bucket", "c/bad:1@v1.sif", data, {
    type: "container",
    uri: "c/bad:1@v1",
    sha256sum: "0".repeat(64),
  });
  s.fake.put("test-bucket", "c/old:1@v1.sif", data, { type: "container", uri: "c/old:1@v1" });
  const bad = await runCli(["pull", "google-storage://c/bad:1"], { env: s.env });
  assertEquals(bad.code, 6, bad.stderr);
  const old = await runCli(["--json", "pull", "google-storage://c/old:1"], { env: s.env });
  assertEquals(old.code, 0, old.stderr);
  const out = JSON.parse(old.stdout) as { path: string; uri: string };
  assertEquals(await Deno.readFile(out.path), data);
  assert(out.uri.endsWith("c/old:1@v1"), out.uri);
});

Deno.test("gcs: delete with the URI prefix removes every version after one question", async () => {
  await using s = await setup();
  for (const v of ["v1", "v2"]) {
    s.fake.put("test-bucket", `c/d:1@${v}.sif`, new Uint8Array(4), {
      type: "container",
      uri: `c/d:1@${v}`,
    });
  }
  s.fake.put("test-bucket", "c/d:2@v1.sif", new Uint8Array(4), { type: "container" });
  const no = await runCli(["delete", "google-storage://c/d:1"], { env: s.env, stdin: "y\nn\n" });
  assertEquals(no.code, 0, no.stderr);
  assertEquals(s.fake.buckets.get("test-bucket")!.objects.size, 3, "deleted after a no");
  const yes = await runCli(["--json", "delete", "--force", "google-storage://c/d:1"], {
    env: s.env,
  });
  assertEquals(yes.code, 0, yes.stderr);
  assertEquals(JSON.parse(yes.stdout).deleted.sort(), [
    "google-storage://c/d:1@v1",
    "google-storage://c/d:1@v2",
  ]);
  assertEquals([...s.fake.buckets.get("test-bucket")!.objects.keys()], ["c/d:2@v1.sif"]);
  const missing = await runCli(["delete", "--force", "google-storage://c/none:1"], { env: s.env });
  assertEquals(missing.code, 3, missing.stderr);
});

Deno.test("gcs: a uniform-access bucket keeps the object private with a warning", async () => {
  await using s = await setup();
  s.fake.addBucket("test-bucket", { uniform: true });
  const fixture = join(s.home.dir, "img.sif");
  await Deno.writeFile(fixture, buildSingularityLike({}));
  const r = await runCli(["push", fixture, "--name", "google-storage://u/x:1"], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  assert(/stays private/.test(r.stderr), r.stderr);
  const p = await runCli(["push", fixture, "--name", "google-storage://u/y:1"], {
    env: { ...s.env, SREGISTRY_GOOGLE_STORAGE_PRIVATE: "yes" },
  });
  assertEquals(p.code, 0, p.stderr);
  assert(!/stays private/.test(p.stderr), p.stderr);
});

Deno.test("gcs settings: chunk size, PRIVATE values and the 8 KiB metadata budget", () => {
  assertEquals(parseChunkSize(undefined), 8 * 1024 * 1024);
  assertEquals(parseChunkSize("256K"), CHUNK_QUANTUM);
  assertEquals(parseChunkSize("16MiB"), 16 * 1024 * 1024);
  for (const bad of ["100", "1.5M", "x"]) {
    let e: unknown;
    try {
      parseChunkSize(bad);
    } catch (x) {
      e = x;
    }
    assert(e instanceof ConfigError, bad);
  }
  assert(isPrivate("1") && isPrivate("true") && isPrivate("anything"));
  assert(!isPrivate(undefined) && !isPrivate("false") && !isPrivate("0"));
  const names = parseImageName("a/b:c", { version: "f".repeat(64) });
  const { metadata, dropped } = pushMetadata(names, "f".repeat(64), {
    small: "x",
    huge: "y".repeat(9000),
    sif: { format: "sif" },
    uri: "label cannot override",
  });
  assertEquals(dropped, ["huge"]);
  assertEquals(metadata.small, "x");
  assertEquals(metadata.uri, `a/b:c@${"f".repeat(64)}`);
  assertEquals(metadata.type, "container");
  assert(!("sif" in metadata) && !("registry" in metadata));
});

Deno.test("gcs: a push that failed mid-upload continues from the kept session on the next run", async () => {
  await using s = await setup();
  s.fake.addBucket("test-bucket");
  const file = join(s.home.dir, "big.bin");
  const data = randomBytes(6 * CHUNK_QUANTUM);
  await Deno.writeFile(file, data);
  const env = {
    ...s.env,
    SREGISTRY_GOOGLE_STORAGE_CHUNK_SIZE: "512K",
    SREGISTRY_HTTP_RETRIES: "0",
  };
  s.fake.failChunks(1);
  const first = await runCli(["push", file, "--name", "google-storage://r/big:1"], { env });
  assertEquals(first.code, 5, first.stderr);
  assert(/run the push again to resume/.test(first.stderr), first.stderr);
  assert(!/upload_id=[0-9a-f]{8}/.test(first.stderr), "the session id was printed");
  const chunks = s.fake.stats.chunks;
  const second = await runCli(["push", file, "--name", "google-storage://r/big:1"], { env });
  assertEquals(second.code, 0, second.stderr);
  // 256 KiB of the first 512 KiB chunk was kept: 1.25 MiB remain, in three chunks.
  assertEquals(s.fake.stats.chunks - chunks, 3);
  const [[name, o]] = [...s.fake.buckets.get("test-bucket")!.objects];
  assertEquals(name, `r/big:1@${sha(data)}.sif`);
  assertEquals(sha(o.data), sha(data));
});
