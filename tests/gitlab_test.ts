/**
 * gitlab:// beyond the conformance suite: identifier forms (the original's, with and without the
 * prefix, `|`, the readable forms, subgroups), the `.sif` then `.simg` probe, tags and the folder
 * setting, the redirect to object storage without the token, search across pages, record's job
 * metadata, and the base URL rules. Through the CLI against the strict fake, plus unit vectors.
 * @module
 */

import { createHash } from "node:crypto";
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { runCli, tempHome } from "./_cli.ts";
import { FAST_ENV } from "./conformance.ts";
import { buildSingularityLike } from "./_sif_writer.ts";
import { startGitlabFake } from "./servers/gitlab_fake.ts";
import { artifactNames, parseJobRef, parseProjectQuery } from "../clients/gitlab/ref.ts";
import { catalogName, nextPage } from "../clients/gitlab/mod.ts";
import { UsageError } from "../core/errors.ts";

const TOKEN = "glpat-extra-token";

function sif(label: string): Uint8Array {
  return buildSingularityLike(
    { labels: { "org.test": label } } as Parameters<typeof buildSingularityLike>[0],
  );
}

const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function setup() {
  const fake = startGitlabFake();
  fake.addToken(TOKEN);
  const home = await tempHome();
  const env: Record<string, string> = {
    ...home.env,
    ...FAST_ENV,
    SREGISTRY_GITLAB_BASE: fake.url,
    SREGISTRY_GITLAB_TOKEN: TOKEN,
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

Deno.test("parseJobRef reads the original's forms and the readable ones", () => {
  const want = { project: "singularityhub/gitlab-ci", jobId: "122059246", tag: "latest" };
  assertEquals(parseJobRef("122059246,singularityhub/gitlab-ci"), want);
  assertEquals(parseJobRef("gitlab://122059246,singularityhub/gitlab-ci"), want);
  assertEquals(parseJobRef("122059246|singularityhub/gitlab-ci"), want);
  assertEquals(parseJobRef("gitlab://singularityhub/gitlab-ci@122059246"), want);
  assertEquals(parseJobRef("singularityhub/gitlab-ci/-/jobs/122059246"), want);
  assertEquals(parseJobRef("122059246,singularityhub/gitlab-ci,build"), {
    ...want,
    jobName: "build",
  });
  assertEquals(parseJobRef("7,a/b/c:V2"), { project: "a/b/c", jobId: "7", tag: "v2" });
  assertEquals(parseJobRef("gitlab://a/b/c:v2@7"), { project: "a/b/c", jobId: "7", tag: "v2" });
  for (
    const bad of [
      "gitlab://",
      "x,a/b",
      "7,a",
      "7,a/b,",
      "7,a/../b",
      "a/b",
      "7,a/b,c,d",
      "a/b@x",
      "7,a b/c",
    ]
  ) {
    assertThrows(() => parseJobRef(bad), UsageError);
  }
});

Deno.test("catalog names: the job id is the version, subgroups are collection levels", () => {
  assertEquals(
    catalogName(parseJobRef("122059246,singularityhub/gitlab-ci")),
    "singularityhub/gitlab-ci:latest@122059246",
  );
  assertEquals(catalogName(parseJobRef("gitlab://a/b/c:v2@7")), "a/b/c:v2@7");
  assertEquals(artifactNames("latest"), ["Singularity.sif", "Singularity.simg"]);
  assertEquals(artifactNames("v2"), ["Singularity.v2.sif", "Singularity.v2.simg"]);
});

Deno.test("search queries need a project; a job name may follow", () => {
  assertThrows(() => parseProjectQuery(undefined), UsageError);
  assertThrows(() => parseProjectQuery("gitlab://"), UsageError);
  assertEquals(parseProjectQuery("a/b"), { project: "a/b" });
  assertEquals(parseProjectQuery("gitlab://a/b/c,build"), { project: "a/b/c", jobName: "build" });
});

Deno.test("nextPage follows X-Next-Page, else Link rel=next on the configured host", () => {
  const cur = new URL("https://gw.example/gitlab/api/v4/projects/1/jobs?per_page=100");
  const a = nextPage(new Response(null, { headers: { "x-next-page": "3" } }), cur);
  assertEquals(a?.searchParams.get("page"), "3");
  assertEquals(a?.searchParams.get("per_page"), "100");
  assertEquals(nextPage(new Response(null, { headers: { "x-next-page": "" } }), cur), undefined);
  const b = nextPage(
    new Response(null, {
      headers: {
        link:
          '<https://gitlab.com/api/v4/projects/1/jobs?page=1>; rel="first", <https://gitlab.com/api/v4/projects/1/jobs?page=2&per_page=100>; rel="next"',
      },
    }),
    cur,
  );
  assertEquals(b?.origin, "https://gw.example");
  assertEquals(b?.pathname, "/gitlab/api/v4/projects/1/jobs");
  assertEquals(b?.searchParams.get("page"), "2");
});

Deno.test("gitlab pull goes through the API route and object storage gets no token", async () => {
  await using s = await setup();
  const image = sif("one");
  s.fake.addProject("singularityhub/gitlab-ci");
  s.fake.addJob("singularityhub/gitlab-ci", {
    id: 122059246,
    files: { "build/Singularity.sif": image },
  });
  // The original's form, with the prefix it broke on.
  const r = await runCli(["--json", "pull", "gitlab://122059246,singularityhub/gitlab-ci"], {
    env: s.env,
  });
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert(JSON.stringify(out).includes("singularityhub/gitlab-ci:latest@122059246"), r.stdout);
  assert(
    s.fake.calls.includes(
      "GET /projects/singularityhub%2Fgitlab-ci/jobs/122059246/artifacts/build/Singularity.sif",
    ),
    s.fake.calls.join("\n"),
  );
  assert(s.fake.storageCalls.length >= 1);
  for (const c of s.fake.storageCalls) {
    assertEquals(c.privateToken, null);
    assertEquals(c.authorization, null);
  }
  const get = await runCli(
    ["--json", "inspect", "singularityhub/gitlab-ci:latest@122059246"],
    { env: s.env },
  );
  assertEquals(get.code, 0, get.stderr);
  const row = JSON.stringify(JSON.parse(get.stdout));
  assert(row.includes('"job_id":122059246'), row);
  assert(row.includes("build/Singularity.sif"), row);
  assert(row.includes(sha(image).slice(7)), row);
});

Deno.test("gitlab pull falls back to .simg, honours a tag and the folder setting", async () => {
  await using s = await setup();
  s.fake.addProject("grp/sub/proj");
  const simg = sif("simg");
  const tagged = sif("tagged");
  s.fake.addJob("grp/sub/proj", { id: 5, files: { "out/img/Singularity.simg": simg } });
  s.fake.addJob("grp/sub/proj", { id: 6, files: { "out/img/Singularity.v2.sif": tagged } });
  const env = { ...s.env, SREGISTRY_GITLAB_FOLDER: "out/img/" };
  const a = await runCli(["--json", "pull", "gitlab://grp/sub/proj@5"], { env });
  assertEquals(a.code, 0, a.stderr);
  const sifAt = s.fake.calls.findIndex((c) =>
    c.endsWith("/jobs/5/artifacts/out/img/Singularity.sif")
  );
  const simgAt = s.fake.calls.findIndex((c) =>
    c.endsWith("/jobs/5/artifacts/out/img/Singularity.simg")
  );
  assert(sifAt >= 0 && simgAt > sifAt, s.fake.calls.join("\n"));
  const b = await runCli(["--json", "pull", "6|grp/sub/proj:v2"], {
    env: { ...env, SREGISTRY_CLIENT: "gitlab" },
  });
  assertEquals(b.code, 0, b.stderr);
  const imgs = await runCli(["--json", "images"], { env });
  assert(imgs.stdout.includes("grp/sub/proj:latest@5"), imgs.stdout);
  assert(imgs.stdout.includes("grp/sub/proj:v2@6"), imgs.stdout);
  // Neither file: exit 3 naming both names and the setting.
  s.fake.addJob("grp/sub/proj", { id: 7, files: { "elsewhere/Singularity.sif": simg } });
  const c = await runCli(["pull", "gitlab://grp/sub/proj@7"], { env });
  assertEquals(c.code, 3, c.stderr);
  assert(c.stderr.includes("Singularity.simg") && c.stderr.includes("SREGISTRY_GITLAB_FOLDER"));
});

Deno.test("gitlab pull checks the job name and refuses jobs without artifacts", async () => {
  await using s = await setup();
  s.fake.addProject("g/p");
  s.fake.addJob("g/p", { id: 1, name: "test", files: { "build/Singularity.sif": sif("x") } });
  s.fake.addJob("g/p", { id: 2, name: "build" });
  const wrong = await runCli(["pull", "1,g/p,build"], {
    env: { ...s.env, SREGISTRY_CLIENT: "gitlab" },
  });
  assertEquals(wrong.code, 3, wrong.stderr);
  assert(wrong.stderr.includes('"test"'), wrong.stderr);
  const none = await runCli(["pull", "gitlab://g/p@2"], { env: s.env });
  assertEquals(none.code, 3, none.stderr);
  assert(none.stderr.includes("no artifacts"), none.stderr);
});

Deno.test("gitlab search follows pagination and keeps successful jobs with artifacts", async () => {
  await using s = await setup();
  s.fake.addProject("big/proj");
  const f = { "build/Singularity.sif": new Uint8Array(10) };
  for (let i = 1; i <= 230; i++) {
    s.fake.addJob("big/proj", { id: i, name: i % 2 ? "build" : "test", files: f });
  }
  s.fake.addJob("big/proj", { id: 500, status: "failed", files: f });
  s.fake.addJob("big/proj", { id: 501 }); // no artifacts
  const r = await runCli(["--json", "search", "gitlab://big/proj"], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  const hits = JSON.parse(r.stdout) as { uri: string; details: Record<string, unknown> }[];
  assertEquals(hits.length, 230);
  assert(hits.some((h) => h.uri === "gitlab://big/proj@1"));
  assert(!hits.some((h) => h.uri.endsWith("@500") || h.uri.endsWith("@501")));
  const lists = s.fake.calls.filter((c) => c.startsWith("GET /projects/big%2Fproj/jobs?"));
  assertEquals(lists.length, 3, lists.join("\n"));
  assert(lists.every((c) => c.includes("scope%5B%5D=success")), lists.join("\n"));
  const named = await runCli(["--json", "search", "gitlab://big/proj,test"], { env: s.env });
  assertEquals(JSON.parse(named.stdout).length, 115);
  const bySetting = await runCli(["--json", "search", "gitlab://big/proj"], {
    env: { ...s.env, SREGISTRY_GITLAB_JOB: "build" },
  });
  assertEquals(JSON.parse(bySetting.stdout).length, 115);
});

Deno.test("gitlab search without a project is a usage error", async () => {
  await using s = await setup();
  const r = await runCli(["search", "gitlab://"], { env: s.env });
  assertEquals(r.code, 2, r.stderr);
  assert(r.stderr.includes("needs a project"), r.stderr);
  assertEquals(s.fake.calls.length, 0);
});

Deno.test("gitlab record keeps the job's metadata", async () => {
  await using s = await setup();
  s.fake.addProject("g/p");
  s.fake.addJob("g/p", { id: 42, ref: "v1.0", files: { "build/Singularity.sif": sif("r") } });
  const r = await runCli(["--json", "record", "gitlab://g/p@42"], { env: s.env });
  assertEquals(r.code, 0, r.stderr);
  const get = await runCli(["--json", "inspect", "g/p:latest@42"], { env: s.env });
  assertEquals(get.code, 0, get.stderr);
  const row = JSON.stringify(JSON.parse(get.stdout));
  for (
    const want of [
      '"job_id":42',
      '"job_name":"build"',
      '"ref":"v1.0"',
      '"pipeline_id":50042',
      '"finished_at":"2026-01-01T00:05:00.000Z"',
      "/g/p/-/jobs/42",
      '"file_type":"archive"',
    ]
  ) {
    assert(row.includes(want), `${want} in ${row}`);
  }
  assert(row.includes((42 * 7919).toString(16)), row);
  assertEquals(s.fake.storageCalls.length, 0);
});

Deno.test("gitlab: anonymous access sees public projects only, with a hint for private ones", async () => {
  await using s = await setup();
  s.fake.addProject("open/proj", { public: true });
  s.fake.addProject("closed/proj");
  s.fake.addJob("open/proj", { id: 1, files: { "build/Singularity.sif": sif("o") } });
  s.fake.addJob("closed/proj", { id: 1, files: { "build/Singularity.sif": sif("c") } });
  const env = { ...s.env };
  delete env.SREGISTRY_GITLAB_TOKEN;
  const open = await runCli(["pull", "gitlab://open/proj@1"], { env });
  assertEquals(open.code, 0, open.stderr);
  const closed = await runCli(["pull", "gitlab://closed/proj@1"], { env });
  assertEquals(closed.code, 3, closed.stderr);
  assert(closed.stderr.includes("SREGISTRY_GITLAB_TOKEN"), closed.stderr);
  const bad = await runCli(["pull", "gitlab://closed/proj@1"], {
    env: { ...s.env, SREGISTRY_GITLAB_TOKEN: "glpat-nope" },
  });
  assertEquals(bad.code, 4, bad.stderr);
  assert(bad.stderr.includes("SREGISTRY_GITLAB_TOKEN") && !bad.stderr.includes("glpat-nope"));
});

Deno.test("gitlab base: a trailing slash is dropped, plain http only for loopback", async () => {
  await using s = await setup();
  s.fake.addProject("g/p");
  s.fake.addJob("g/p", { id: 3, files: { "build/Singularity.sif": sif("b") } });
  const r = await runCli(["--json", "record", "gitlab://g/p@3"], {
    env: { ...s.env, SREGISTRY_GITLAB_BASE: `${s.fake.url}/` },
  });
  assertEquals(r.code, 0, r.stderr);
  assert(s.fake.calls.every((c) => !c.includes("//")), s.fake.calls.join("\n"));
  const remote = await runCli(["record", "gitlab://g/p@3"], {
    env: { ...s.env, SREGISTRY_GITLAB_BASE: "http://gitlab.example.org" },
  });
  assertEquals(remote.code, 2, remote.stderr);
  assert(remote.stderr.includes("must be https"), remote.stderr);
});

Deno.test("gitlab pull: a body dropped by object storage resumes with a range, through a new redirect", async () => {
  await using s = await setup();
  const image = new Uint8Array(300_000);
  image.set(sif("big"));
  for (let i = 4096; i < image.length; i++) image[i] = (i * 7) & 0xff;
  s.fake.addProject("g/p");
  s.fake.addJob("g/p", { id: 9, files: { "build/Singularity.sif": image } });
  s.fake.dropStorageOnce(100_000);
  const r = await runCli(["--json", "pull", "--no-cache", "gitlab://g/p@9"], {
    env: { ...s.env, SREGISTRY_HTTP_RETRIES: "3" },
    cwd: s.home.dir,
  });
  assertEquals(r.code, 0, r.stderr);
  const ranged = s.fake.storageCalls.filter((c) => c.range !== null);
  assert(
    ranged.some((c) => /^bytes=\d+-/.test(c.range!) && !c.range!.startsWith("bytes=0-")),
    JSON.stringify(s.fake.storageCalls),
  );
  assert(s.fake.storageCalls.every((c) => c.privateToken === null && c.authorization === null));
  const artifactCalls = s.fake.calls.filter((c) => c.includes("/jobs/9/artifacts/"));
  assert(artifactCalls.length >= 2, artifactCalls.join("\n"));
  const out = JSON.parse(r.stdout);
  const path = String(out.path ?? out.file ?? "");
  assert(path !== "", r.stdout);
  assertEquals(sha(await Deno.readFile(path)), sha(image));
});

Deno.test("gitlab fake: refuses what GitLab refuses, in GitLab's shapes", async () => {
  await using s = await setup();
  s.fake.addProject("g/p");
  s.fake.addJob("g/p", { id: 1, files: { "build/Singularity.sif": sif("f") } });
  const get = async (
    path: string,
    headers: Record<string, string> = { "private-token": TOKEN },
  ) => {
    const r = await fetch(`${s.fake.url}/api/v4${path}`, { headers, redirect: "manual" });
    const text = await r.text();
    let body: { message?: string; error?: string } = {};
    try {
      body = JSON.parse(text);
    } catch {
      // object storage answers XML
    }
    return { status: r.status, body, location: r.headers.get("location"), text };
  };
  const bad = await get("/projects/g%2Fp/jobs", { "private-token": "glpat-nope" });
  assertEquals([bad.status, bad.body.message], [401, "401 Unauthorized"]);
  const anon = await get("/projects/g%2Fp/jobs", {});
  assertEquals([anon.status, anon.body.message], [404, "404 Project Not Found"]);
  const unencoded = await get("/projects/g/p/jobs");
  assertEquals([unencoded.status, unencoded.body.error], [404, "404 Not Found"]);
  const scope = await get("/projects/g%2Fp/jobs?scope[]=done");
  assertEquals([scope.status, scope.body.error], [400, "scope does not have a valid value"]);
  const page = await get("/projects/g%2Fp/jobs?per_page=many");
  assertEquals(page.status, 400);
  const noJob = await get("/projects/g%2Fp/jobs/999");
  assertEquals([noJob.status, noJob.body.message], [404, "404 Not found"]);
  const noFile = await get("/projects/g%2Fp/jobs/1/artifacts/build/other.sif");
  assertEquals(noFile.status, 404);
  // The artifact is a redirect to object storage, which refuses a request that carries a token.
  const art = await get("/projects/g%2Fp/jobs/1/artifacts/build/Singularity.sif");
  assertEquals(art.status, 302);
  const withToken = await fetch(art.location!, { headers: { "private-token": TOKEN } });
  assertEquals(withToken.status, 400);
  assert((await withToken.text()).includes("InvalidArgument"));
  const plain = await fetch(art.location!);
  assertEquals(plain.status, 200);
  await plain.body?.cancel();
});

Deno.test("gitlab: help and backend ls list every setting", async () => {
  await using s = await setup();
  const { gitlabFactory } = await import("../clients/gitlab/mod.ts");
  for (const args of [["help", "gitlab"], ["backend", "ls", "gitlab"]]) {
    const r = await runCli(args, { env: s.home.env });
    assertEquals(r.code, 0, r.stderr);
    for (const setting of gitlabFactory.settings) {
      assert(r.stdout.includes(setting.name), `${args.join(" ")}: ${setting.name}`);
    }
  }
});

Deno.test("gitlab pull: an empty SREGISTRY_GITLAB_FOLDER means the top of the archive", async () => {
  await using s = await setup();
  s.fake.addProject("g/p");
  s.fake.addJob("g/p", { id: 4, files: { "Singularity.sif": sif("top") } });
  const r = await runCli(["--json", "pull", "gitlab://g/p@4"], {
    env: { ...s.env, SREGISTRY_GITLAB_FOLDER: "" },
  });
  assertEquals(r.code, 0, r.stderr);
  assert(s.fake.calls.includes("GET /projects/g%2Fp/jobs/4/artifacts/Singularity.sif"));
});
