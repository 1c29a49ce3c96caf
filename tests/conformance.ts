/**
 * The conformance suite every backend runs: `runClientConformance(spec)` registers one Deno.test
 * per backend that starts its real server or strict fake once, then drives the CLI as users do
 * (`deno run -P=cli`, a fresh HOME per check) through checks that run in parallel:
 *
 * - `create()` does no I/O;
 * - every missing capability is exit 7 with a one-line message;
 * - push, search, pull, `images`, `get` and `inspect` form a byte-exact round trip;
 * - `record <uri>` stores a row without a file;
 * - `--no-cache`, `--file` and `--force` behave the same for every client;
 * - an interrupted pull (SIGINT, or a connection dropped mid-body) leaves no final file and no row;
 * - 401, 404 and 5xx are exits 4, 3 and 5;
 * - `--debug` prints no secret;
 * - every `--json` output parses, errors included;
 * - `docs/clients/<scheme>.md` exists and documents every setting, and every setting carries the
 *   client's `SREGISTRY_<SCHEME>_` prefix unless the spec lists it as the original's name.
 *
 * See tests/clients/template_test.ts for the smallest complete spec.
 * @module
 */

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { CLI_ARGS, type CliResult, DENO_DIR, ROOT, type TempHome, tempHome } from "./_cli.ts";
import { buildSingularityLike } from "./_sif_writer.ts";
import { createApp } from "../mod.ts";
import { FACTORIES, findFactory } from "../clients/mod.ts";
import {
  CAPABILITIES as ALL_CAPABILITIES,
  type Capability as AnyCapability,
  type ClientFactory,
} from "../clients/types.ts";
import { memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";

/** A capability the suite checks: every one but `labels` (which falls back to the local catalog). */
export type Capability = Exclude<AnyCapability, "labels">;

/** Every capability the suite checks, in the order it reports them. */
export const CAPABILITIES: readonly Capability[] = ALL_CAPABILITIES.filter(
  (c): c is Capability => c !== "labels",
);

/**
 * The one documented exit code for "already exists: use --force" (DESIGN.md, exit codes: a usage
 * problem the user fixes with a flag). Every client's store step ends with it.
 */
export const ALREADY_EXISTS_EXIT = 2;

/** Environment for fast failures: short backoff and stall timeout, few retries. */
export const FAST_ENV: Readonly<Record<string, string>> = {
  SREGISTRY_BACKOFF_MS: "10",
  SREGISTRY_STALL_TIMEOUT: "2",
  SREGISTRY_HTTP_RETRIES: "1",
};

/** The longest one CLI run may take before its check fails. */
export const RUN_TIMEOUT_MS = 30_000;

/** One pull the suite runs: a URI and environment over the backend's. */
export interface PullCase {
  /** The image URI, with its scheme. */
  uri: string;
  /** Variables replacing the backend's (wrong credentials, another base...). */
  env?: Record<string, string>;
}

/** The image the suite pushes (or the spec seeds) and expects back. */
export interface Fixture {
  /** Where it is on disk (read it, do not move it). */
  path: string;
  /** Its bytes. */
  bytes: Uint8Array;
  /** sha256 hex. */
  sha256: string;
}

/** A started backend, as the checks use it. */
export interface Backend {
  /** Environment for the CLI: the client's settings and credentials (no HOME; the suite adds it). */
  env: Record<string, string>;
  /** An image that already holds the fixture (seeded by `start`, independently of the client). */
  uri: string;
  /** With push: a fresh name the round trip pushes the fixture to, then pulls back. */
  pushUri?: string;
  /** With search: what to search for, and a string one hit's `uri` must contain. */
  search?: { query: string; expect: string };
  /** Credentials refused: exit 4. */
  unauthorized: PullCase;
  /** A name the remote does not have: exit 3. */
  notFound: PullCase;
  /** The remote answers 5xx: exit 5. */
  serverError: PullCase;
  /** The connection drops mid-body and the server offers no resume. */
  dropped: PullCase;
  /** A pull slow enough to interrupt, and how many body bytes it has sent so far. */
  slow: PullCase & { sent(): number };
  /** Secret strings besides the env's secret settings (tokens the server hands out, headers). */
  secretValues?: string[];
  /** Stop the server(s). */
  stop(): Promise<void>;
}

/** What a backend's test file gives the suite. */
export interface ConformanceSpec {
  /** The URI scheme (`docker`, `http`); the factory is found by it. */
  scheme: string;
  /** The factory, when it is not in clients/mod.ts (the template's copy). */
  factory?: ClientFactory;
  /**
   * A module exporting `factory`, run through createApp's `factories` option
   * (tests/_factory_main.ts) instead of clients/mod.ts. Needed with {@link factory}.
   */
  factoryModule?: string;
  /** Where `<scheme>.md` lives (default docs/clients/). */
  docsDir?: string;
  /** The client's capabilities: exactly the methods it has. */
  capabilities: Capability[];
  /** How a pull relates to the fixture: the same bytes, or an archive the client builds. */
  pulled?: "fixture" | "archive";
  /** Setting names kept from the original without the client prefix (AWS_*, DOCKER_CONFIG...). */
  settingExceptions?: string[];
  /** Extra env names whose values are secret (besides the factory's `secret` settings). */
  secretEnv?: string[];
  /** Use this SIF instead of a generated one (e.g. a file under ../shared/fixtures/sif). */
  fixture?: string;
  /** Start the server or fake (once per file) and put the fixture there when push is missing. */
  start(fixture: Fixture): Promise<Backend>;
  /** Skip the whole suite (a missing server outside CI). */
  ignore?: boolean;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function fileSha(path: string): Promise<string> {
  return sha256(await Deno.readFile(path));
}

/** Files under `dir`, relative, sorted; missing folders are empty. */
export async function listTree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(join(dir, prefix))) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory) out.push(...await listTree(dir, rel));
      else out.push(rel);
    }
  } catch {
    // missing: empty
  }
  return out.sort();
}

/** Files that are final names: not in a dot-folder (staging, blob cache) and not partial. */
function finalFiles(files: string[]): string[] {
  return files.filter((f) =>
    !f.split("/").some((p) => p.startsWith(".")) && !/\.partial(\.json)?$/.test(f)
  );
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1) ?? "";
}

/** Check a `--json` run: stdout is JSON on success; the last stderr line is `{"error": ...}` on failure. */
export function checkJsonOutput(args: string[], r: CliResult): void {
  const what = `sregistry ${args.join(" ")}`;
  if (r.code === 0) {
    try {
      JSON.parse(r.stdout);
    } catch {
      throw new Error(
        `${what}: --json stdout is not JSON: ${JSON.stringify(r.stdout.slice(0, 300))}`,
      );
    }
    return;
  }
  let parsed: { error?: { message?: unknown; exitCode?: unknown } };
  try {
    parsed = JSON.parse(lastLine(r.stderr));
  } catch {
    throw new Error(
      `${what}: --json error is not JSON (exit ${r.code}): ${JSON.stringify(r.stderr.slice(-300))}`,
    );
  }
  assert(typeof parsed.error?.message === "string", `${what}: no error.message in ${r.stderr}`);
  assertEquals(parsed.error?.exitCode, r.code, `${what}: error.exitCode is not the exit code`);
}

/** Runs the CLI for one spec: the real entry point, or tests/_factory_main.ts with a factory. */
interface Runner {
  run(args: string[], opts: { env: Record<string, string>; cwd?: string }): Promise<CliResult>;
  spawn(args: string[], opts: { env: Record<string, string>; cwd?: string }): Deno.ChildProcess;
}

function makeRunner(spec: ConformanceSpec): Runner {
  const entry = spec.factoryModule
    ? [...CLI_ARGS.slice(0, -1), join(ROOT, "tests", "_factory_main.ts"), spec.factoryModule]
    : [...CLI_ARGS];
  const command = (args: string[], opts: { env: Record<string, string>; cwd?: string }) =>
    new Deno.Command(Deno.execPath(), {
      args: [...entry, ...args],
      cwd: opts.cwd,
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1", DENO_DIR, ...opts.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
  return {
    async run(args, opts) {
      const child = command(args, opts).spawn();
      // A CLI run that hangs (a retry loop that never ends) fails its check instead of the file.
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }, RUN_TIMEOUT_MS);
      const out = await child.output();
      clearTimeout(timer);
      const dec = new TextDecoder();
      const r = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
      if (timedOut) {
        throw new Error(
          `sregistry ${args.join(" ")} did not end within ${RUN_TIMEOUT_MS / 1000} s: ${
            r.stderr.slice(-300)
          }`,
        );
      }
      if (args.includes("--json")) checkJsonOutput(args, r);
      return r;
    },
    spawn: (args, opts) => command(args, opts).spawn(),
  };
}

type Step = { name: string; fn: () => Promise<void> };

/** Register the suite for one backend. */
export function runClientConformance(spec: ConformanceSpec): void {
  Deno.test({
    name: `conformance: ${spec.scheme}`,
    ignore: spec.ignore,
    sanitizeOps: false,
    sanitizeResources: false,
    sanitizeExit: false,
    async fn(t) {
      const factory = spec.factory ?? findFactory(spec.scheme, FACTORIES);
      const fixture = await makeFixture(spec);
      const backend = await spec.start(fixture.fixture);
      const runner = makeRunner(spec);
      const homes: TempHome[] = [];
      const home = async () => {
        const h = await tempHome();
        homes.push(h);
        return h;
      };
      const ctx: CheckContext = { spec, factory, fixture: fixture.fixture, backend, runner, home };
      try {
        const steps = checks(ctx);
        // Independent checks run together; each has its own HOME.
        const ok = await Promise.all(steps.map((s) =>
          t.step({
            name: s.name,
            fn: s.fn,
            sanitizeOps: false,
            sanitizeResources: false,
            sanitizeExit: false,
          })
        ));
        assert(ok.every(Boolean), "some conformance checks failed (see the steps above)");
      } finally {
        await backend.stop();
        await Promise.all(homes.map((h) => h.cleanup()));
        await fixture.cleanup();
      }
    },
  });
}

async function makeFixture(spec: ConformanceSpec) {
  if (spec.fixture) {
    const bytes = await Deno.readFile(spec.fixture);
    return {
      fixture: { path: spec.fixture, bytes, sha256: sha256(bytes) },
      cleanup: () => Promise.resolve(),
    };
  }
  const dir = await Deno.makeTempDir({ prefix: "sregistry-fixture-" });
  // Labels make `inspect` show the SIF's own metadata; the padding makes a pull slow to interrupt.
  const base = buildSingularityLike(
    {
      labels: { "org.sregistry.conformance": spec.scheme },
    } as Parameters<typeof buildSingularityLike>[0],
  );
  const bytes = new Uint8Array(base.length + 384 * 1024);
  bytes.set(base);
  crypto.getRandomValues(bytes.subarray(base.length, base.length + 65536));
  const path = join(dir, "conformance.sif");
  await Deno.writeFile(path, bytes);
  return {
    fixture: { path, bytes, sha256: sha256(bytes) },
    cleanup: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}

interface CheckContext {
  spec: ConformanceSpec;
  factory: ClientFactory;
  fixture: Fixture;
  backend: Backend;
  runner: Runner;
  home(): Promise<TempHome>;
}

const has = (spec: ConformanceSpec, c: Capability) => spec.capabilities.includes(c);

function checks(c: CheckContext): Step[] {
  const steps: Step[] = [
    { name: "create() does no I/O", fn: () => checkNoEagerIo(c) },
    { name: "missing capabilities are exit 7 with one line", fn: () => checkMissing(c) },
    { name: "401, 404 and 5xx are exits 4, 3 and 5", fn: () => checkErrorCodes(c) },
    { name: "--debug prints no secret", fn: () => checkNoSecrets(c) },
    { name: "--json output parses, errors included", fn: () => checkJson(c) },
    { name: "docs page and setting prefixes", fn: () => checkDocs(c) },
  ];
  if (has(c.spec, "pull")) {
    steps.push(
      { name: "round trip: push, search, pull, images, get, inspect", fn: () => checkRoundTrip(c) },
      { name: "--no-cache, --file and --force", fn: () => checkNoCache(c) },
      { name: "a dropped pull leaves no final file and no row", fn: () => checkDropped(c) },
      {
        name: "an interrupted pull (SIGINT) leaves no final file and no row",
        fn: () => checkSigint(c),
      },
    );
  }
  if (has(c.spec, "record")) {
    steps.push({ name: "record stores a row without a file", fn: () => checkRecord(c) });
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------

async function checkNoEagerIo(c: CheckContext): Promise<void> {
  const h = await c.home();
  const calls: string[] = [];
  const recordingFetch = ((input: RequestInfo | URL) => {
    calls.push(String(input instanceof Request ? input.url : input));
    return Promise.reject(new Error("create() must not touch the network"));
  }) as typeof fetch;
  const before = await listTree(h.dir);
  const app = createApp({
    env: envFrom({ ...c.backend.env, ...h.env }),
    fetch: recordingFetch,
    factories: c.spec.factory ? [...FACTORIES, c.spec.factory] : FACTORIES,
    stdout: memorySink(),
    stderr: memorySink(),
  });
  try {
    // getClient may be sync or async.
    const { client } = await app.getClient(c.backend.uri);
    assertEquals(client.name.length > 0, true);
    assertEquals(calls, [], "create() fetched");
    assertEquals(await listTree(h.dir), before, "create() wrote files");
    const methods = CAPABILITIES.filter((k) =>
      typeof (client as unknown as Record<string, unknown>)[k] === "function"
    );
    assertEquals(methods, CAPABILITIES.filter((k) => has(c.spec, k)), "spec.capabilities");
  } finally {
    app.close();
  }
}

function missingArgs(c: CheckContext, cap: Capability): string[] {
  const uri = c.backend.uri;
  switch (cap) {
    case "pull":
      return ["pull", uri];
    case "push":
      return ["push", c.fixture.path, "--name", uri];
    case "search":
      return ["search", uri];
    case "record":
      return ["record", uri];
    case "delete":
      return ["delete", "--force", uri];
    case "share":
      return ["share", uri];
    case "build":
      return ["build", "--name", uri, c.fixture.path];
  }
}

async function checkMissing(c: CheckContext): Promise<void> {
  const h = await c.home();
  const env = { ...c.backend.env, ...h.env };
  const missing = CAPABILITIES.filter((k) => !has(c.spec, k));
  const failures: string[] = [];
  await Promise.all(missing.map(async (cap) => {
    const args = missingArgs(c, cap);
    try {
      const r = await c.runner.run(args, { env });
      const lines = r.stderr.trim().split("\n");
      if (r.code !== 7) failures.push(`${cap}: exit ${r.code}, not 7: ${r.stderr.trim()}`);
      else if (lines.length !== 1 || !/^ERROR .*cannot/.test(lines[0]) || r.stdout !== "") {
        failures.push(`${cap}: not one "ERROR ... cannot ..." line: ${r.stderr}`);
      }
      const j = await c.runner.run(["--json", ...args], { env });
      if (j.code !== 7) failures.push(`--json ${cap}: exit ${j.code}, not 7`);
    } catch (e) {
      failures.push(`${cap}: ${(e as Error).message}`);
    }
  }));
  assertEquals(failures, [], "missing capabilities");
}

/** Run `pull` of a case with --no-cache --file into a scratch folder; returns the result and dest. */
async function pullCase(c: CheckContext, h: TempHome, pc: PullCase, extra: string[] = []) {
  const env = { ...c.backend.env, ...FAST_ENV, ...pc.env, ...h.env };
  return await c.runner.run([...extra, "pull", pc.uri], { env });
}

async function noRows(c: CheckContext, h: TempHome, why: string): Promise<void> {
  const images = await c.runner.run(["--json", "images"], { env: h.env });
  assertEquals(images.code, 0, images.stderr);
  assertEquals(JSON.parse(images.stdout), [], `${why}: the catalog has rows`);
  assertEquals(finalFiles(await listTree(h.env.SREGISTRY_STORAGE)), [], `${why}: final files`);
}

async function checkErrorCodes(c: CheckContext): Promise<void> {
  const cases: [string, PullCase, number][] = [
    ["401", c.backend.unauthorized, 4],
    ["404", c.backend.notFound, 3],
    ["5xx", c.backend.serverError, 5],
  ];
  await Promise.all(cases.map(async ([what, pc, code]) => {
    const h = await c.home();
    const r = await pullCase(c, h, pc);
    assertEquals(r.code, code, `${what} (${pc.uri}): ${r.stderr}`);
    const errors = r.stderr.trim().split("\n").filter((l) => l.startsWith("ERROR "));
    assertEquals(errors.length, 1, `${what}: one ERROR line: ${r.stderr}`);
    const j = await pullCase(c, h, pc, ["--json"]);
    assertEquals(j.code, code, j.stderr);
    await noRows(c, h, what);
  }));
}

function secrets(c: CheckContext): string[] {
  const names = new Set([
    ...c.factory.settings.filter((s) => s.secret).map((s) => s.name),
    ...(c.spec.secretEnv ?? []),
  ]);
  const values = Object.entries(c.backend.env).filter(([k]) => names.has(k)).map(([, v]) => v);
  return [...values, ...(c.backend.secretValues ?? [])].filter((v) => v.length >= 4);
}

async function checkNoSecrets(c: CheckContext): Promise<void> {
  const h = await c.home();
  const env = { ...c.backend.env, ...FAST_ENV, ...h.env };
  const runs: string[][] = [];
  if (has(c.spec, "push")) {
    runs.push(["--debug", "push", c.fixture.path, "--name", c.backend.pushUri ?? c.backend.uri]);
  }
  if (has(c.spec, "search") && c.backend.search) {
    runs.push(["--debug", "search", c.backend.search.query]);
  }
  if (has(c.spec, "pull")) {
    runs.push(["--debug", "pull", c.backend.uri], ["--debug", "pull", c.backend.notFound.uri]);
  }
  const all = secrets(c);
  assert(all.length > 0 || c.factory.settings.every((s) => !s.secret), "no secret to look for");
  for (const args of runs) {
    const r = await c.runner.run(args, { env });
    const text = r.stdout + r.stderr;
    for (const s of all) {
      assert(!text.includes(s), `${args.join(" ")} printed a secret (${s.slice(0, 2)}...)`);
    }
  }
}

async function checkJson(c: CheckContext): Promise<void> {
  const h = await c.home();
  const env = { ...c.backend.env, ...FAST_ENV, ...h.env };
  // [args, expected exit code]; run() itself checks that the output is JSON.
  const runs: [string[], number][] = [
    [["--json", "images"], 0],
    [["--json", "pull"], 2], // usage: missing argument
    [["--json", "pull", "--no-such-flag", c.backend.uri], 2], // usage: unknown flag
    [["--json", "no-such-command"], 2],
    [["--json", "get", "no/such:image"], 3],
  ];
  if (has(c.spec, "pull")) runs.push([["--json", "pull", c.backend.notFound.uri], 3]);
  if (has(c.spec, "search") && c.backend.search) {
    runs.push([["--json", "search", c.backend.search.query], 0]);
  }
  const failures: string[] = [];
  const ls = await c.runner.run(["--json", "backend", "ls"], { env });
  if (!ls.stdout.includes(`"${c.factory.scheme}"`)) {
    failures.push(
      `backend ls --json does not list ${c.factory.scheme}: ${ls.stdout.slice(0, 200)}`,
    );
  }
  for (const [args, code] of runs) {
    try {
      const r = await c.runner.run(args, { env });
      if (r.code !== code) failures.push(`${args.join(" ")}: exit ${r.code}, not ${code}`);
    } catch (e) {
      failures.push((e as Error).message);
    }
  }
  assertEquals(failures, []);
}

async function checkDocs(c: CheckContext): Promise<void> {
  const dir = c.spec.docsDir ?? join(ROOT, "docs", "clients");
  const names = [c.factory.scheme, ...(c.factory.aliases ?? [])];
  const page = names.map((n) => join(dir, `${n}.md`)).find((p) => existsSync(p));
  assert(page, `no docs page: write ${join(dir, `${c.factory.scheme}.md`)}`);
  const text = await Deno.readTextFile(page);
  const prefixes = names.map((n) => `SREGISTRY_${n.toUpperCase().replaceAll("-", "_")}_`);
  const exceptions = new Set(c.spec.settingExceptions ?? []);
  for (const s of c.factory.settings) {
    assert(
      prefixes.some((p) => s.name.startsWith(p)) || exceptions.has(s.name),
      `${s.name} lacks the prefix ${prefixes.join(" or ")} and is not a listed exception`,
    );
    assert(text.includes(s.name), `${relative(ROOT, page)} does not document ${s.name}`);
  }
  for (const e of exceptions) {
    assert(c.factory.settings.some((s) => s.name === e), `exception ${e} is not a setting`);
  }
}

// ---------------------------------------------------------------------------------------------

async function expectPulled(c: CheckContext, file: string, reference?: string): Promise<string> {
  const got = await fileSha(file);
  if ((c.spec.pulled ?? "fixture") === "fixture") {
    assertEquals(got, c.fixture.sha256, `${file} is not the fixture byte for byte`);
  } else if (reference) {
    assertEquals(got, reference, `${file} differs from an earlier pull of the same image`);
  }
  return got;
}

async function checkRoundTrip(c: CheckContext): Promise<void> {
  const h = await c.home();
  const env = { ...c.backend.env, ...FAST_ENV, ...h.env };
  let uri = c.backend.uri;
  if (has(c.spec, "push")) {
    uri = c.backend.pushUri ?? uri;
    const p = await c.runner.run(["--json", "push", c.fixture.path, "--name", uri], { env });
    assertEquals(p.code, 0, p.stderr);
  }
  if (has(c.spec, "search") && c.backend.search) {
    const s = await c.runner.run(["--json", "search", c.backend.search.query], { env });
    assertEquals(s.code, 0, s.stderr);
    const hits = JSON.parse(s.stdout) as { uri: string }[];
    assert(
      hits.some((x) => x.uri.includes(c.backend.search!.expect)),
      `search ${c.backend.search.query} does not list ${c.backend.search.expect}: ${s.stdout}`,
    );
  }
  const r = await c.runner.run(["--json", "pull", uri], { env });
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { path: string; uri: string };
  const sha = await expectPulled(c, out.path);
  // (pull --json's `digest` is the remote's: an OCI manifest digest; the row's is the file's.)
  assert(out.uri, `pull --json has no uri: ${r.stdout}`);
  assert(out.path.startsWith(h.env.SREGISTRY_STORAGE), `${out.path} is not in storage`);

  const images = await c.runner.run(["--json", "images"], { env: h.env });
  const rows = JSON.parse(images.stdout) as { uri: string; image: string }[];
  assertEquals(rows.map((x) => x.image), [out.path], "images");
  const get = await c.runner.run(["get", out.uri], { env: h.env });
  assertEquals(get.code, 0, get.stderr);
  assertEquals(get.stdout.trim(), out.path, "get");
  const ins = await c.runner.run(["--json", "inspect", out.uri], { env: h.env });
  assertEquals(ins.code, 0, ins.stderr);
  const row = JSON.parse(ins.stdout) as { image: string; digest: string; client: string };
  assertEquals(row.image, out.path, "inspect image");
  assertEquals(row.digest, `sha256:${sha}`, "inspect digest");
  assertEquals(row.client, c.factory.scheme, "inspect client");
  if (has(c.spec, "push")) {
    // What another tool pushed is what we pull: the pushed bytes, once more from a clean home.
    const h2 = await c.home();
    const again = await c.runner.run([
      "pull",
      "--no-cache",
      "--file",
      join(h2.dir, "x.img"),
      uri,
    ], {
      env: { ...env, ...h2.env },
    });
    assertEquals(again.code, 0, again.stderr);
    assertEquals(await fileSha(join(h2.dir, "x.img")), sha);
  }
}

async function checkNoCache(c: CheckContext): Promise<void> {
  const h = await c.home();
  const env = { ...c.backend.env, ...FAST_ENV, ...h.env };
  const cwd = join(h.dir, "work");
  await Deno.mkdir(cwd);
  const first = await c.runner.run(["--json", "pull", "--no-cache", c.backend.uri], { env, cwd });
  assertEquals(first.code, 0, first.stderr);
  const path = (JSON.parse(first.stdout) as { path: string }).path;
  assertEquals(dirname(path), await Deno.realPath(cwd), "--no-cache writes to the current folder");
  assertEquals(await listTree(cwd), [basename(path)], "--no-cache leaves one file in cwd");
  const reference = await expectPulled(c, path);
  await noRows(c, h, "--no-cache");

  // A file already there (the user's own): kept, with the one documented exit code.
  const mine = new TextEncoder().encode("not an image, the user's own file\n");
  await Deno.writeFile(path, mine);
  const again = await c.runner.run(["pull", "--no-cache", c.backend.uri], { env, cwd });
  assertEquals(again.code, ALREADY_EXISTS_EXIT, `second pull: ${again.stderr}`);
  assert(/already exists/.test(again.stderr), again.stderr);
  assertEquals(await Deno.readFile(path), mine, "the existing file was changed");
  const forced = await c.runner.run(["pull", "--no-cache", "--force", c.backend.uri], { env, cwd });
  assertEquals(forced.code, 0, forced.stderr);
  await expectPulled(c, path, reference);
  assertEquals(await listTree(cwd), [basename(path)], "--force leaves one file in cwd");

  // --file names the file; nothing lands in cwd.
  const dest = join(h.dir, "out", "named.img");
  await Deno.mkdir(dirname(dest));
  const file = await c.runner.run(["--json", "pull", "--no-cache", "--file", dest, c.backend.uri], {
    env,
    cwd,
  });
  assertEquals(file.code, 0, file.stderr);
  assertEquals((JSON.parse(file.stdout) as { path: string }).path, dest);
  await expectPulled(c, dest, reference);
  assertEquals(await listTree(cwd), [basename(path)], "--file wrote into cwd");
  const fileAgain = await c.runner.run(["pull", "--no-cache", "--file", dest, c.backend.uri], {
    env,
    cwd,
  });
  assertEquals(fileAgain.code, ALREADY_EXISTS_EXIT, fileAgain.stderr);
  await noRows(c, h, "--file");

  // --file without --no-cache: honoured or a usage error, never silently ignored.
  const other = join(h.dir, "out", "cached.img");
  const cached = await c.runner.run(["pull", "--file", other, c.backend.uri], { env, cwd });
  if (cached.code === 0) {
    assert(existsSync(other), "--file without --no-cache was silently ignored");
    await expectPulled(c, other, reference);
  } else {
    assertEquals(cached.code, 2, cached.stderr);
    assert(!existsSync(other), "--file was refused but written");
  }
}

async function checkDropped(c: CheckContext): Promise<void> {
  const h = await c.home();
  const r = await pullCase(c, h, c.backend.dropped);
  assertEquals(r.code, 5, `dropped pull: ${r.stderr}`);
  await noRows(c, h, "dropped pull");
  const dest = join(h.dir, "dropped.img");
  const nc = await pullCase(c, h, c.backend.dropped, ["--json"]);
  assertEquals(nc.code, 5, nc.stderr);
  const file = await c.runner.run(["pull", "--no-cache", "--file", dest, c.backend.dropped.uri], {
    env: { ...c.backend.env, ...FAST_ENV, ...c.backend.dropped.env, ...h.env },
  });
  assertEquals(file.code, 5, file.stderr);
  assert(!existsSync(dest), "a dropped --file pull left the final file");
}

async function checkSigint(c: CheckContext): Promise<void> {
  const h = await c.home();
  const slow = c.backend.slow;
  const env = { ...c.backend.env, ...FAST_ENV, ...slow.env, ...h.env };
  const before = slow.sent();
  const child = c.runner.spawn(["pull", slow.uri], { env });
  const deadline = Date.now() + 20_000;
  while (slow.sent() === before && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const started = slow.sent() > before;
  try {
    child.kill("SIGINT");
  } catch {
    // ended on its own: the assertions say why
  }
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert(started, `the slow pull never started: ${stderr}`);
  assertEquals(out.code, 130, `SIGINT: ${stderr}`);
  await noRows(c, h, "SIGINT");
}

async function checkRecord(c: CheckContext): Promise<void> {
  const h = await c.home();
  const env = { ...c.backend.env, ...FAST_ENV, ...h.env };
  if (has(c.spec, "push")) {
    const p = await c.runner.run(["push", c.fixture.path, "--name", c.backend.uri], { env });
    assertEquals(p.code, 0, p.stderr);
  }
  const r = await c.runner.run(["--json", "record", c.backend.uri], { env });
  assertEquals(r.code, 0, r.stderr);
  const row = JSON.parse(r.stdout) as { uri: string; image: string | null; client: string };
  assertEquals(row.image, null, "record stored a file");
  assertEquals(row.client, c.factory.scheme);
  const images = await c.runner.run(["--json", "images"], { env: h.env });
  assertEquals((JSON.parse(images.stdout) as unknown[]).length, 1, "record: one row");
  assertEquals(finalFiles(await listTree(h.env.SREGISTRY_STORAGE)), [], "record wrote a file");
  const get = await c.runner.run(["get", row.uri], { env: h.env });
  assertEquals(get.code, 3, `get of a record without a file: ${get.stderr}`);
}
