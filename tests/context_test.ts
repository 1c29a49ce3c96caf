import { assert, assertEquals, assertIncludes, assertRejects } from "./_assert.ts";
import { join } from "node:path";
import { createApp } from "../mod.ts";
import { main } from "../main.ts";
import type { ClientFactory, Context } from "../clients/types.ts";
import { ConfigError, InterruptedError, NetworkError } from "../core/errors.ts";
import { createExec } from "../core/exec.ts";
import { memorySink } from "../core/log.ts";
import { poll } from "../core/poll.ts";
import { envFrom } from "../core/settings.ts";
import { tempHome } from "./_cli.ts";

/** A factory that hands its Context out, with one secret and one plain setting. */
function probe(seen: { ctx?: Context }, onCreate?: (ctx: Context) => void): ClientFactory {
  return {
    scheme: "acme",
    description: "test",
    settings: [
      { name: "SREGISTRY_ACME_TOKEN", description: "token", secret: true },
      { name: "SREGISTRY_ACME_BASE", description: "base" },
    ],
    create(ctx) {
      seen.ctx = ctx;
      onCreate?.(ctx);
      return {
        name: "acme",
        search: () => {
          ctx.log.debug(
            `searching ${ctx.settings.get("SREGISTRY_ACME_BASE")} with token ${
              ctx.settings.get("SREGISTRY_ACME_TOKEN")
            } and Bearer-less header ${ctx.env.get("SREGISTRY_ACME_TOKEN")}`,
          );
          return Promise.resolve([{ uri: "acme://demo/x:1" }]);
        },
      };
    },
  };
}

Deno.test("context: the services are there, out and secrets are not", async () => {
  const home = await tempHome();
  try {
    const seen: { ctx?: Context } = {};
    const app = createApp({
      env: envFrom({ ...home.env, SREGISTRY_CREDENTIALS_CACHE: home.dir }),
      factories: [probe(seen)],
      stderr: memorySink(),
      stdout: memorySink(),
      readMetadata: (file) => Promise.resolve({ file }),
    });
    const { ctx } = app.getClient("acme://demo/x:1");
    for (const gone of ["out", "secrets"]) assert(!(gone in ctx), `ctx.${gone} is gone`);
    assertEquals(ctx.settings, ctx.clientSettings);
    assertEquals(ctx.settings.prefix, "SREGISTRY_ACME_");
    assertEquals(ctx.globals.storage, home.env.SREGISTRY_STORAGE);
    assertEquals(ctx.credentials.path, join(home.dir, ".sregistry", "acme"));
    ctx.credentials.set("refresh", "r1");
    assertEquals(ctx.credentials.get("refresh"), "r1");
    assertEquals(Deno.statSync(ctx.credentials.path!).mode! & 0o777, 0o600);
    assertEquals(await ctx.metadata("/x.sif"), { file: "/x.sif" });
    const thumb = await ctx.thumbnail();
    assertEquals(thumb.name, "robot.png");
    assertEquals(thumb.mediaType, "image/png");
    assertEquals([...thumb.bytes.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    // Small enough for every remote that takes one (Drive: 2 MB), and cheap to embed.
    assert(thumb.bytes.length < 4096, "the built-in thumbnail stays small");
    assertEquals(typeof ctx.prompt.confirm, "function");
    app.close();
  } finally {
    await home.cleanup();
  }
});

Deno.test("context: SREGISTRY_THUMBNAIL is used, and a bad one names the variable", async () => {
  const home = await tempHome();
  try {
    const png = join(home.dir, "me.jpg");
    await Deno.writeFile(png, new Uint8Array([1, 2, 3]));
    for (const [path, ok] of [[png, true], [join(home.dir, "none.png"), false]] as const) {
      const seen: { ctx?: Context } = {};
      const app = createApp({
        env: envFrom({ ...home.env, SREGISTRY_THUMBNAIL: path }),
        factories: [probe(seen)],
        stderr: memorySink(),
      });
      const { ctx } = app.getClient("acme://x");
      if (ok) {
        const t = await ctx.thumbnail();
        assertEquals([t.name, t.mediaType, [...t.bytes]], ["me.jpg", "image/jpeg", [1, 2, 3]]);
      } else {
        const e = await assertRejects(() => ctx.thumbnail(), ConfigError);
        assertIncludes(e.message, "SREGISTRY_THUMBNAIL");
      }
    }
  } finally {
    await home.cleanup();
  }
});

Deno.test("context: secret settings are redacted without the client registering them", async () => {
  const home = await tempHome();
  try {
    const secrets = join(home.dir, "secrets.json");
    await Deno.writeTextFile(
      secrets,
      JSON.stringify({ acme: { SREGISTRY_ACME_TOKEN: "file-token-xyz" } }),
    );
    for (
      const [extra, token] of [
        [{}, "file-token-xyz"],
        [{ SREGISTRY_ACME_TOKEN: "env-token-abc" }, "env-token-abc"],
      ] as const
    ) {
      const stderr = memorySink();
      const code = await main(["--debug", "search", "acme://demo"], {
        env: envFrom({ ...home.env, SREGISTRY_ACME_BASE: "http://base.example", ...extra }),
        factories: [probe({})],
        stdout: memorySink(),
        stderr,
      });
      assertEquals(code, 0, stderr.text());
      assertIncludes(stderr.text(), "searching http://base.example with token ***");
      assert(!stderr.text().includes(token), stderr.text());
    }
    // registered as soon as the client is built: even a message before any read is clean
    const stderr = memorySink();
    const app = createApp({
      env: envFrom({ ...home.env, SREGISTRY_ACME_TOKEN: "early-token-123" }),
      factories: [probe({}, (ctx) => ctx.log.warning("saw early-token-123"))],
      stderr,
    });
    app.getClient("acme://x");
    assertEquals(stderr.text(), "WARNING saw ***\n");
  } finally {
    await home.cleanup();
  }
});

Deno.test("context: the credential cache can be turned off, with one debug line", async () => {
  const home = await tempHome();
  try {
    const stderr = memorySink();
    const app = createApp({
      env: envFrom({
        ...home.env,
        SREGISTRY_CREDENTIALS_CACHE: home.dir,
        SREGISTRY_DISABLE_CREDENTIAL_CACHE: "yes",
      }),
      factories: [probe({})],
      stderr,
      debug: true,
    });
    const { ctx } = app.getClient("acme://x");
    ctx.credentials.set("token", "t");
    assertEquals(ctx.credentials.get("token"), undefined);
    assertEquals(ctx.credentials.path, undefined);
    assertEquals((stderr.text().match(/credential cache is disabled/g) ?? []).length, 1);
    assertEquals([...Deno.readDirSync(home.dir)].some((e) => e.name === ".sregistry"), false);
  } finally {
    await home.cleanup();
  }
});

Deno.test("exec: runs with stdin, finds programs on PATH, stops with the command", async () => {
  const controller = new AbortController();
  const exec = createExec({ path: Deno.env.get("PATH"), signal: controller.signal });
  assertEquals(exec.which(["no-such-program-x", "sh"]), "sh");
  assertEquals(exec.which("no-such-program-x"), undefined);
  const r = await exec.run("sh", ["-c", "read x; echo got $x; echo err >&2; exit 3"], {
    stdin: "hello\n",
  });
  assertEquals([r.code, r.success, r.stdout, r.stderr], [3, false, "got hello\n", "err\n"]);
  await assertRejects(() => exec.run("no-such-program-x", []), Deno.errors.NotFound);
  const started = Date.now();
  const slow = exec.run("sleep", ["10"]);
  setTimeout(() => controller.abort(), 50);
  await slow.catch(() => {});
  assert(Date.now() - started < 5000, "aborted, not waited for");
  // an aborted command starts nothing more
  await assertRejects(() => exec.run("sh", ["-c", "exit 0"]), Error);
  const timed = Date.now();
  await createExec().run("sleep", ["10"], { timeout: 50 }).catch(() => {});
  assert(Date.now() - timed < 5000, "timed out");
});

Deno.test("poll: backs off to a ceiling, returns the value, reports every step", async () => {
  let t = 0;
  const pauses: number[] = [];
  const events: string[] = [];
  let calls = 0;
  const value = await poll({
    label: "build",
    interval: 1000,
    maxInterval: 2500,
    now: () => t,
    sleep: (ms) => {
      pauses.push(ms);
      t += ms;
      return Promise.resolve();
    },
    check: () => {
      calls++;
      return Promise.resolve(
        calls < 5 ? { done: false, status: `step ${calls}` } : { done: true, value: "ok" },
      );
    },
    onEvent: (e) => events.push(`${e.attempt}:${e.status}:${e.done}`),
  });
  assertEquals(value, "ok");
  assertEquals(pauses, [1000, 1500, 2250, 2500]);
  assertEquals(events.at(-1), "5:step 4:true");
  assertEquals(events.length, 5);
});

Deno.test("poll: a clear timeout error, and an abort is an interruption", async () => {
  let t = 0;
  const e = await assertRejects(
    () =>
      poll({
        label: "the build of demo/x",
        timeout: 120_000,
        now: () => t,
        sleep: (ms) => {
          t += ms;
          return Promise.resolve();
        },
        check: () => Promise.resolve({ done: false, status: "QUEUED" }),
      }),
    NetworkError,
  );
  assertIncludes(e.message, "Gave up waiting for the build of demo/x after 2 min");
  assertIncludes(e.message, "last status: QUEUED");
  const controller = new AbortController();
  const waiting = poll({
    label: "x",
    interval: 60_000,
    signal: controller.signal,
    check: () => Promise.resolve({ done: false }),
  });
  setTimeout(() => controller.abort(), 10);
  await assertRejects(() => waiting, InterruptedError);
});

Deno.test("ctx.poll draws a spinner on a terminal and clears it at the end", async () => {
  const home = await tempHome();
  try {
    const stderr = memorySink(true);
    const app = createApp({ env: envFrom(home.env), factories: [probe({})], stderr });
    const { ctx } = app.getClient("acme://x");
    let n = 0;
    const v = await ctx.poll({
      label: "build",
      interval: 1,
      check: () =>
        Promise.resolve(++n < 3 ? { done: false, status: "RUNNING" } : { done: true, value: 7 }),
    });
    assertEquals(v, 7);
    assertIncludes(stderr.text(), "| build: RUNNING (0 s)");
    assertIncludes(stderr.text(), "/ build: RUNNING");
    assert(stderr.text().endsWith("\r\x1b[2K"), JSON.stringify(stderr.text()));
    // without a terminal: one line per new status
    const plain = memorySink();
    const app2 = createApp({ env: envFrom(home.env), factories: [probe({})], stderr: plain });
    n = 0;
    await app2.getClient("acme://x").ctx.poll({
      label: "build",
      interval: 1,
      check: () => Promise.resolve(++n < 3 ? { done: false, status: "RUNNING" } : { done: true }),
    });
    assertEquals(plain.text(), "build: RUNNING\n");
  } finally {
    await home.cleanup();
  }
});

Deno.test("the built-in thumbnail is embedded by the compile task", async () => {
  const { ROBOT_PNG } = await import("../core/thumbnail.ts");
  const root = new URL("../", import.meta.url);
  const rel = ROBOT_PNG.href.slice(root.href.length);
  assertEquals(rel, "core/data/robot.png");
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  assertIncludes(config.tasks.compile, `--include ${rel}`);
});
