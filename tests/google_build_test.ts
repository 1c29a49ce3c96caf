/**
 * google-build:// beyond the conformance suite, against the strict Cloud Build and GCS fakes: a
 * build from a local recipe and context (tarball uploaded, configuration from the template, log
 * followed, image metadata written, catalog row), a repository build, --preview, failures and
 * timeouts (exit 5 with statusDetail and logUrl), Ctrl-C (exit 130 with the id) and --watch, a
 * custom template, malformed configurations, bad tokens, and the tar writer.
 * @module
 */

import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { assert, assertEquals, assertIncludes, assertThrows } from "./_assert.ts";
import { runCli, spawnCli, tempHome } from "./_cli.ts";
import { FAST_ENV } from "./conformance.ts";
import { makeTestAccount, startGcsFake } from "./servers/gcs_fake.ts";
import { startCloudBuildFake } from "./servers/cloudbuild_fake.ts";
import { startFaultProxy } from "./servers/fault_proxy.ts";
import { collectEntries, writeTarGz } from "../clients/google-build/_tar.ts";
import { cloudBuildOrigin, fillTemplate } from "../clients/google-build/_cloudbuild.ts";
import { storageEndpoint } from "../clients/gcs/endpoint.ts";
import { ConfigError } from "../core/errors.ts";
import { parseRepo } from "../clients/google-build/mod.ts";

const BUCKET = "gb-images";

async function setup() {
  const gcs = startGcsFake();
  const cb = startCloudBuildFake(gcs);
  const home = await tempHome();
  const account = await makeTestAccount(gcs.tokenUri);
  gcs.addAccount(account.email, account.publicKey);
  const keyFile = join(home.dir, "key.json");
  await Deno.writeTextFile(keyFile, account.json, { mode: 0o600 });
  const work = join(home.dir, "work");
  await Deno.mkdir(join(work, "files"), { recursive: true });
  await Deno.writeTextFile(join(work, "Singularity"), "Bootstrap: docker\nFrom: alpine\n");
  await Deno.writeTextFile(join(work, "files", "hello.txt"), "hello\n");
  const env = {
    ...home.env,
    ...FAST_ENV,
    GOOGLE_APPLICATION_CREDENTIALS: keyFile,
    SREGISTRY_GOOGLE_STORAGE_BUCKET: BUCKET,
    STORAGE_EMULATOR_HOST: gcs.url,
    SREGISTRY_GOOGLE_BUILD_BASE: cb.url,
    SREGISTRY_GOOGLE_BUILD_INTERVAL: "0.02",
  };
  return {
    gcs,
    cb,
    home,
    work,
    env,
    run: (args: string[], extra: Record<string, string> = {}) =>
      runCli(args, { env: { ...env, ...extra }, cwd: work }),
    async [Symbol.asyncDispose]() {
      await cb.stop();
      await gcs.stop();
      await home.cleanup();
    },
  };
}

Deno.test("google-build: a local recipe builds, its log is followed, the image is recorded", async () => {
  await using s = await setup();
  const image = new TextEncoder().encode("SIF built remotely\n".repeat(100));
  s.cb.plan({ image, workingPolls: 3 });
  const r = await s.run([
    "--json",
    "build",
    "Singularity",
    "files",
    "--name",
    "google-build://demo/hello:1.0",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assertEquals(out.status, "SUCCESS");
  assertEquals(out.object, "demo/hello:1.0.sif");
  const sha = createHash("sha256").update(image).digest("hex");
  assertEquals(out.digest, `sha256:${sha}`);
  assertEquals(out.size, image.length);
  assert(s.cb.builds.has(out.id), "the result names the build");
  assertEquals(out.recorded, "demo/hello:1.0");

  // The configuration: the original's four steps, from the template.
  const config = s.cb.submitted[0] as {
    steps: { name: string; args: string[] }[];
    source: { storageSource: { bucket: string; object: string } };
    timeout: string;
  };
  assertEquals(config.steps.map((x) => x.name), [
    "singularityware/singularity:v3.2.1-slim",
    "ubuntu",
    "gcr.io/cloud-builders/gsutil",
    "gcr.io/cloud-builders/gsutil",
  ]);
  assertEquals(config.steps[0].args, ["build", "hello:1.0.sif", "Singularity"]);
  assertEquals(config.steps[2].args, ["cp", "hello:1.0.sif", `gs://${BUCKET}/demo/hello:1.0.sif`]);
  assertEquals(config.timeout, "10800s");
  assertEquals(config.source.storageSource.bucket, `${BUCKET}_cloudbuild`);
  assert(/^source\/[0-9a-f]{64}\.tar\.gz$/.test(config.source.storageSource.object));
  // The context was deleted after the build (SREGISTRY_GOOGLE_BUILD_CACHE unset).
  assertEquals(s.gcs.buckets.get(`${BUCKET}_cloudbuild`)?.objects.size, 0);

  // The log lines reached stderr.
  assertIncludes(r.stderr, "[build] Step #");
  assertIncludes(r.stderr, "[build] DONE");

  // The object's metadata: the original's keys, plus the name fields.
  const o = s.gcs.buckets.get(BUCKET)!.objects.get("demo/hello:1.0.sif")!;
  assertEquals(o.metadata?.type, "container");
  assertEquals(o.metadata?.sha256sum, sha);
  assertEquals(o.metadata?.uri, "demo/hello:1.0");
  assertEquals(o.metadata?.buildId, out.id);
  assertEquals(o.metadata?.builder, "singularityware/singularity:v3.2.1-slim");
  assertEquals(o.metadata?.buildCommand, "build hello:1.0.sif Singularity");
  assert(o.metadata?.md5sum, "md5sum is written");
  assertEquals(o.acl.map((a) => a.entity), ["allUsers"], "made public by default");

  // The catalog row.
  const images = await s.run(["--json", "images"]);
  const rows = JSON.parse(images.stdout) as {
    uri: string;
    client: string;
    url: string;
    digest: string;
    metadata: Record<string, unknown>;
  }[];
  assertEquals(rows.length, 1);
  assertEquals(rows[0].client, "google-build");
  assertIncludes(rows[0].url, "/download/storage/v1/b/gb-images/o/");
  const inspected = await s.run(["--json", "inspect", "demo/hello:1.0"]);
  assertEquals(inspected.code, 0, inspected.stderr);
  const text = inspected.stdout;
  assertIncludes(text, `sha256:${sha}`);
  assertIncludes(text, out.id);
  assertIncludes(text, "https://console.cloud.google.com/cloud-build/builds/");

  // search, pull and delete of the built image.
  const found = await s.run(["--json", "search", "google-build://demo"]);
  assertEquals(found.code, 0, found.stderr);
  assertEquals(JSON.parse(found.stdout)[0].uri, "google-build://demo/hello:1.0");
  const pulled = await s.run(["--json", "pull", "--force", "google-build://demo/hello:1.0"]);
  assertEquals(pulled.code, 0, pulled.stderr);
  const path = JSON.parse(pulled.stdout).path ?? JSON.parse(pulled.stdout).image;
  assertEquals(createHash("sha256").update(await Deno.readFile(path)).digest("hex"), sha);
  const del = await s.run(["--json", "delete", "--force", "google-build://demo/hello:1.0"]);
  assertEquals(del.code, 0, del.stderr);
  assertEquals(JSON.parse(del.stdout).deleted.length, 1, del.stdout);
  assert(!s.gcs.buckets.get(BUCKET)!.objects.has("demo/hello:1.0.sif"), "deleted");
});

Deno.test("google-build: the uploaded context is a tarball of the recipe and the context", async () => {
  await using s = await setup();
  const r = await s.run(
    ["build", "Singularity", "files", "--name", "google-build://demo/ctx"],
    { SREGISTRY_GOOGLE_BUILD_CACHE: "yes" },
  );
  assertEquals(r.code, 0, r.stderr);
  // Without --json the result is one `field: value` line each.
  assert(/^status: SUCCESS$/m.test(r.stdout), r.stdout);
  assert(/^recorded: demo\/ctx/m.test(r.stdout), r.stdout);
  const objects = s.gcs.buckets.get(`${BUCKET}_cloudbuild`)!.objects;
  assertEquals(objects.size, 1, "SREGISTRY_GOOGLE_BUILD_CACHE keeps the context");
  const [name, o] = [...objects][0];
  assertEquals(name, `source/${createHash("sha256").update(o.data).digest("hex")}.tar.gz`);
  const tar = gunzipSync(o.data);
  const names: string[] = [];
  for (let off = 0; off + 512 <= tar.length;) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const n = new TextDecoder().decode(h.subarray(0, 100)).replace(/\0.*$/s, "");
    const size = parseInt(new TextDecoder().decode(h.subarray(124, 136)).replace(/\0.*$/s, ""), 8);
    names.push(n);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  assertEquals(names, ["Singularity", "files/hello.txt"]);
  // The same context is not uploaded again.
  const uploads = s.gcs.stats.requests.filter((l) => l.startsWith("POST /upload")).length;
  const again = await s.run(
    ["build", "Singularity", "files", "--name", "google-build://demo/ctx"],
    { SREGISTRY_GOOGLE_BUILD_CACHE: "yes" },
  );
  assertEquals(again.code, 0, again.stderr);
  assertEquals(s.gcs.stats.requests.filter((l) => l.startsWith("POST /upload")).length, uploads);
});

Deno.test("google-build: a failed build exits 5 with its statusDetail and logUrl", async () => {
  await using s = await setup();
  s.cb.plan({ status: "FAILURE", statusDetail: "step 0 failed: no such recipe section %post" });
  const r = await s.run(["build", "Singularity", "--name", "google-build://demo/broken"]);
  assertEquals(r.code, 5, r.stderr);
  const id = [...s.cb.builds.keys()][0];
  assertIncludes(r.stderr, `Build ${id} of demo/broken:latest ended FAILURE`);
  assertIncludes(r.stderr, "step 0 failed: no such recipe section %post");
  assertIncludes(r.stderr, `https://console.cloud.google.com/cloud-build/builds/${id}`);
  const images = await s.run(["--json", "images"]);
  assertEquals(JSON.parse(images.stdout), [], "nothing recorded");

  const json = await s.run(["--json", "build", "Singularity", "--name", "google-build://demo/x"]);
  assertEquals(json.code, 0, "the next build succeeds (one plan per build)");
});

Deno.test("google-build: TIMEOUT, CANCELLED, INTERNAL_ERROR and EXPIRED end the watch (they never loop)", async () => {
  await using s = await setup();
  const ends = ["TIMEOUT", "CANCELLED", "INTERNAL_ERROR", "EXPIRED"] as const;
  s.cb.plan(...ends.map((status) => ({ status })));
  for (const status of ends) {
    const r = await s.run(["--json", "build", "Singularity", "--name", "google-build://demo/t"]);
    assertEquals(r.code, 5, r.stderr);
    const e = JSON.parse(r.stderr.trim().split("\n").at(-1)!).error;
    assertIncludes(e.message, `ended ${status}`);
    if (status === "EXPIRED") assertIncludes(e.message, "queueTtl");
    assertIncludes(e.message, "logs: https://console.cloud.google.com/cloud-build/builds/");
  }
  const expired = [...s.cb.builds.values()].at(-1)!;
  assertEquals(expired.resource.startTime, undefined, "EXPIRED never left the queue");
  const images = await s.run(["--json", "images"]);
  assertEquals(JSON.parse(images.stdout), [], "nothing recorded");
});

Deno.test("google-build: the client's own timeout gives up with exit 5", async () => {
  await using s = await setup();
  s.cb.plan({ endless: true });
  const r = await s.run(
    ["build", "Singularity", "--name", "google-build://demo/slow"],
    { SREGISTRY_GOOGLE_BUILD_TIMEOUT: "1", SREGISTRY_GOOGLE_BUILD_WAIT: "0.5" },
  );
  assertEquals(r.code, 5, r.stderr);
  assertIncludes(r.stderr, "Gave up waiting for build");
  assertIncludes(r.stderr, "sregistry build --watch ");
  assertEquals(s.cb.submitted[0].timeout, "1s", "the timeout is the build's too");
});

Deno.test("google-build: --preview prints the configuration and submits nothing", async () => {
  await using s = await setup();
  const r = await s.run(
    ["--json", "build", "--preview", "Singularity", "--name", "google-build://demo/p:2"],
    { SREGISTRY_GOOGLE_BUILD_SINGULARITY_VERSION: "v3.8.0" },
  );
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assertEquals(out.preview, true);
  assertEquals(out.config.steps[0].name, "singularityware/singularity:v3.8.0");
  assertEquals(out.config.steps[2].args.at(-1), `gs://${BUCKET}/demo/p:2.sif`);
  assert(!("_about" in out.config), "template comments are dropped");
  assertEquals(s.cb.submitted.length, 0);
  assertEquals(s.gcs.stats.requests.filter((l) => !l.startsWith("POST /token")), []);
});

Deno.test("google-build: a git repository builds with the repo template (build_repo)", async () => {
  await using s = await setup();
  const pre = await s.run([
    "--json",
    "build",
    "--preview",
    "https://github.com/vsoch/singularity-images.git#abc123",
    "Singularity.tensorflow",
    "--name",
    "google-build://vsoch/images:tf",
  ]);
  assertEquals(pre.code, 0, pre.stderr);
  const config = JSON.parse(pre.stdout).config;
  assertEquals(config.steps[0].args, [
    "clone",
    "https://github.com/vsoch/singularity-images.git",
    ".",
  ]);
  assertEquals(config.steps[1].args, ["checkout", "abc123"]);
  assertEquals(config.steps[2].args, ["build", "images:tf.sif", "Singularity.tensorflow"]);
  assertEquals(config.source, undefined, "no source: the build clones");
  const r = await s.run([
    "--json",
    "build",
    "github.com/vsoch/singularity-images",
    "--name",
    "google-build://vsoch/images:tf",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const sent = s.cb.submitted[0] as { steps: { args: string[] }[] };
  assertEquals(sent.steps.length, 5, "no checkout step without a ref");
  assert(s.gcs.buckets.get(BUCKET)!.objects.has("vsoch/images:tf.sif"));
  assertEquals(parseRepo("github.com/u/tigit.git")?.url, "https://github.com/u/tigit.git");
  assertEquals(parseRepo("https://gitlab.com/g/r/")?.path, "g/r");
  assertEquals(parseRepo("Singularity"), undefined);
});

Deno.test("google-build: Ctrl-C exits 130 with the build id, and --watch resumes", async () => {
  await using s = await setup();
  s.cb.plan({ endless: true });
  const child = spawnCli(["build", "Singularity", "--name", "google-build://demo/long"], {
    env: { ...s.env, SREGISTRY_GOOGLE_BUILD_INTERVAL: "0.05" },
    cwd: s.work,
  });
  const deadline = Date.now() + 20_000;
  while (![...s.cb.builds.values()].some((b) => b.polls >= 3) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGINT");
  const { code, stderr } = await child.output();
  const err = new TextDecoder().decode(stderr);
  assertEquals(code, 130, err);
  const [id, build] = [...s.cb.builds][0];
  assertIncludes(err, `sregistry build --watch ${id} --name google-build://demo/long:latest`);

  build.plan.endless = false;
  build.plan.workingPolls = 0;
  const r = await s.run(["--json", "build", "--watch", id, "--name", "google-build://demo/long"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).id, id);
  assertEquals(JSON.parse(r.stdout).recorded, "demo/long:latest");

  const missing = await s.run([
    "build",
    "--watch",
    crypto.randomUUID(),
    "--name",
    "google-build://demo/long",
  ]);
  assertEquals(missing.code, 3, missing.stderr);
});

Deno.test("google-build: a custom template, and what Cloud Build refuses", async () => {
  await using s = await setup();
  const tpl = join(s.home.dir, "custom.json");
  await Deno.writeTextFile(
    tpl,
    JSON.stringify({
      steps: [
        { name: "my/builder:{{TAG}}", args: ["build", "{{CONTAINER_NAME}}", "{{RECIPE}}"] },
        {
          name: "gcr.io/cloud-builders/gsutil",
          args: ["cp", "{{CONTAINER_NAME}}", "gs://{{BUCKET}}/{{OBJECT}}"],
        },
      ],
      source: { storageSource: { bucket: "{{SOURCE_BUCKET}}", object: "{{SOURCE_OBJECT}}" } },
    }),
  );
  const r = await s.run(
    ["--json", "build", "Singularity", "--name", "google-build://demo/custom:9"],
    { SREGISTRY_GOOGLE_BUILD_TEMPLATE: tpl },
  );
  assertEquals(r.code, 0, r.stderr);
  assertEquals((s.cb.submitted[0].steps as { name: string }[])[0].name, "my/builder:9");

  // An unknown field is Cloud Build's 400 INVALID_ARGUMENT: exit 2 with Google's message.
  await Deno.writeTextFile(tpl, JSON.stringify({ steps: [{ name: "x" }], bogus: 1 }));
  const bad = await s.run(["build", "Singularity", "--name", "google-build://demo/bad"], {
    SREGISTRY_GOOGLE_BUILD_TEMPLATE: tpl,
  });
  assertEquals(bad.code, 2, bad.stderr);
  assertIncludes(bad.stderr, 'Unknown name "bogus"');

  // An unknown placeholder is caught before anything is sent.
  await Deno.writeTextFile(tpl, JSON.stringify({ steps: [{ name: "{{NOPE}}" }] }));
  const ph = await s.run(["build", "Singularity", "--name", "google-build://demo/bad"], {
    SREGISTRY_GOOGLE_BUILD_TEMPLATE: tpl,
  });
  assertEquals(ph.code, 2, ph.stderr);
  assertIncludes(ph.stderr, "{{NOPE}}");
});

Deno.test("google-build: a bad or expired token is exit 4", async () => {
  await using s = await setup();
  const other = await makeTestAccount(
    s.gcs.tokenUri,
    "nobody@fake-project.iam.gserviceaccount.com",
  );
  const wrong = join(s.home.dir, "wrong.json");
  await Deno.writeTextFile(wrong, other.json, { mode: 0o600 });
  const r = await s.run(["build", "Singularity", "--name", "google-build://demo/a"], {
    GOOGLE_APPLICATION_CREDENTIALS: wrong,
  });
  assertEquals(r.code, 4, r.stderr);

  // A kept token that the service no longer accepts is refreshed once.
  const ok = await s.run(["build", "Singularity", "--name", "google-build://demo/a"]);
  assertEquals(ok.code, 0, ok.stderr);
  s.gcs.expireTokens();
  const again = await s.run(["build", "Singularity", "--name", "google-build://demo/a"]);
  assertEquals(again.code, 0, again.stderr);

  // The fake itself refuses a token it never issued, in Google's shape.
  const res = await fetch(`${s.cb.url}/v1/projects/fake-project/builds/x`, {
    headers: { authorization: "Bearer ya29.forged" },
  });
  assertEquals(res.status, 401);
  const body = await res.json();
  assertEquals(body.error.status, "UNAUTHENTICATED");
  assertEquals(body.error.errors[0].reason, "authError");
});

Deno.test("google-build: the tar writer keeps long names, modes and bytes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const long = `${"d".repeat(60)}/${"e".repeat(70)}/file.txt`;
    await Deno.mkdir(join(dir, long, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, long), "long\n");
    await Deno.writeTextFile(join(dir, "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
    const entries = await collectEntries(dir, ["."]);
    assertEquals(entries.map((e) => e.name), [long, "run.sh"].sort());
    const out = join(dir, "..", `${crypto.randomUUID()}.tar.gz`);
    const a = await writeTarGz(entries, out);
    const b = await writeTarGz(entries, out);
    assertEquals(a.sha256, b.sha256, "the same files give the same bytes");
    const tar = gunzipSync(await Deno.readFile(out));
    await Deno.remove(out);
    const text = new TextDecoder().decode(tar);
    assertIncludes(text, `path=${long}\n`);
    assertIncludes(text, "long\n");
    let threw = false;
    try {
      await collectEntries(join(dir, "run.sh", ".."), ["../.."]);
    } catch {
      threw = true;
    }
    assert(threw, "a path outside the working folder is refused");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("google-build: template placeholders and _when steps", () => {
  const t = {
    _about: "x",
    steps: [{ name: "a:{{V}}" }, { _when: "REF", name: "b", args: ["{{REF}}"] }],
  };
  assertEquals(fillTemplate(t, { V: "1" }, "t"), { steps: [{ name: "a:1" }] });
  assertEquals(fillTemplate(t, { V: "1", REF: "main" }, "t"), {
    steps: [{ name: "a:1" }, { name: "b", args: ["main"] }],
  });
});

Deno.test("google-build: endpoints are https except on loopback", () => {
  assertEquals(cloudBuildOrigin(undefined, "B"), "https://cloudbuild.googleapis.com");
  assertEquals(cloudBuildOrigin("http://127.0.0.1:8080", "B"), "http://127.0.0.1:8080");
  assertThrows(() => cloudBuildOrigin("http://cloudbuild.example.org", "B"), ConfigError);
  assertThrows(() => cloudBuildOrigin("https://h.example.org/v1", "B"), ConfigError);
  assertEquals(storageEndpoint("").origin, "https://storage.googleapis.com");
  assertEquals(storageEndpoint("localhost:4443").origin, "http://localhost:4443");
  assertEquals(storageEndpoint("gcs.example.org").origin, "https://gcs.example.org");
  assertThrows(() => storageEndpoint("http://gcs.example.org"), ConfigError);
});

Deno.test("google-build: private images get no public ACL; another project is exit 4", async () => {
  await using s = await setup();
  const r = await s.run(["build", "Singularity", "--name", "google-build://demo/priv"], {
    SREGISTRY_GOOGLE_STORAGE_PRIVATE: "true",
  });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(s.gcs.buckets.get(BUCKET)!.objects.get("demo/priv:latest.sif")!.acl, []);
  const other = await s.run(["build", "Singularity", "--name", "google-build://demo/priv"], {
    SREGISTRY_GOOGLE_PROJECT: "someone-else",
  });
  assertEquals(other.code, 4, other.stderr);
  assertEquals(s.cb.submitted.length, 1, "nothing submitted to the other project");
});

Deno.test("google-build: the bucket defaults to sregistry-gcloud-build-$USER, as the original's", async () => {
  await using s = await setup();
  const env = { ...s.env, USER: "Vanessa" } as Record<string, string>;
  delete env.SREGISTRY_GOOGLE_STORAGE_BUCKET;
  const r = await runCli(
    ["--json", "build", "--preview", "Singularity", "--name", "google-build://demo/d"],
    { env, cwd: s.work },
  );
  assertEquals(r.code, 0, r.stderr);
  const config = JSON.parse(r.stdout).config;
  assertEquals(
    config.steps[2].args.at(-1),
    "gs://sregistry-gcloud-build-vanessa/demo/d:latest.sif",
  );
  assertEquals(config.source.storageSource.bucket, "sregistry-gcloud-build-vanessa_cloudbuild");
});

Deno.test("google-build: a log it may not read is pointed to, and the build still finishes", async () => {
  await using s = await setup();
  const proxy = startFaultProxy(s.gcs.url, [{
    path: /\/o\/log-[^/]+\.txt$/,
    fault: { status: 403 },
  }]);
  try {
    const r = await s.run(
      ["--json", "build", "Singularity", "--name", "google-build://demo/nolog"],
      {
        STORAGE_EMULATOR_HOST: proxy.url,
      },
    );
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assertEquals(out.status, "SUCCESS");
    assertIncludes(r.stderr, "Cannot follow the build's log");
    assertIncludes(r.stderr, `https://console.cloud.google.com/cloud-build/builds/${out.id}`);
    assert(!r.stderr.includes("[build] Step #"), "no log line was read");
    assertEquals(r.stderr.split("Cannot follow").length, 2, "warned once, not at every poll");
  } finally {
    await proxy.stop();
  }
});

Deno.test("google-build: SREGISTRY_GOOGLE_BUILD_REPO_TEMPLATE replaces the repository template", async () => {
  await using s = await setup();
  const tpl = join(s.home.dir, "repo.json");
  await Deno.writeTextFile(
    tpl,
    JSON.stringify({
      steps: [
        { name: "gcr.io/cloud-builders/git", args: ["clone", "--depth=1", "{{REPO_URL}}", "."] },
        { name: "my/apptainer", args: ["build", "{{CONTAINER_NAME}}", "{{RECIPE}}"] },
        {
          name: "gcr.io/cloud-builders/gsutil",
          args: ["cp", "{{CONTAINER_NAME}}", "gs://{{BUCKET}}/{{OBJECT}}"],
        },
      ],
    }),
  );
  const args = ["--json", "build", "--preview", "github.com/u/r", "--name", "google-build://u/r"];
  const r = await s.run(args, { SREGISTRY_GOOGLE_BUILD_REPO_TEMPLATE: tpl });
  assertEquals(r.code, 0, r.stderr);
  const config = JSON.parse(r.stdout).config;
  assertEquals(config.steps[0].args, ["clone", "--depth=1", "https://github.com/u/r.git", "."]);
  assertEquals(config.steps[1].name, "my/apptainer");
  // A template that is not there says which setting points at it, and what to copy.
  const gone = await s.run(args, {
    SREGISTRY_GOOGLE_BUILD_REPO_TEMPLATE: join(s.home.dir, "missing.json"),
  });
  assertEquals(gone.code, 2, gone.stderr);
  assertIncludes(gone.stderr, "SREGISTRY_GOOGLE_BUILD_REPO_TEMPLATE");
  assertIncludes(gone.stderr, "templates/google-build/build_repo.json");
});
