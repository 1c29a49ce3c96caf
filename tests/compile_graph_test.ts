/**
 * `deno compile` embeds the module graph it can see: static imports, string-literal dynamic imports,
 * and the `--include` files of the compile task. These tests check, with `deno info --json main.ts`,
 * that every module a command loads is in that graph, that no dynamic import is computed, that
 * `version` and `images` load only what they need at start-up, that the graph resolves without
 * network, and that the compile tasks (one per target) use the permission set the tests use.
 */

import { assert, assertEquals } from "./_assert.ts";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { CLI_ARGS, permissionFlags, ROOT } from "./_cli.ts";
import { existsSync } from "node:fs";

interface Dep {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface Module {
  specifier: string;
  dependencies?: Dep[];
}

const info = JSON.parse(
  new TextDecoder().decode(
    new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", join(ROOT, "deno.json"), join(ROOT, "main.ts")],
      cwd: ROOT,
      stdout: "piped",
    }).outputSync().stdout,
  ),
) as { modules: Module[] };
const modules = new Map(info.modules.map((m) => [m.specifier, m]));
const url = (path: string) => pathToFileURL(join(ROOT, path)).href;
const rel = (spec: string) =>
  spec.startsWith("file:") ? relative(ROOT, new URL(spec).pathname) : spec;

const tasks = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).tasks as Record<
  string,
  string
>;
const includes = [...tasks.compile.matchAll(/--include[= ](\S+)/g)].map((m) => m[1]);

/** Modules loaded when `roots` load, following static (not dynamic, not type-only) imports. */
function staticClosure(roots: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = roots.map(url);
  while (todo.length) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of modules.get(s)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) todo.push(d.code.specifier);
    }
  }
  return new Set([...seen].map(rel));
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(join(ROOT, dir))) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...sourceFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

Deno.test("compile graph: every command loader's module and every client is embedded", () => {
  const table = Deno.readTextFileSync(join(ROOT, "cli", "command_table.ts"));
  const loaders = [...table.matchAll(/import\("(\.\/commands\/[a-z_]+\.ts)"\)/g)].map((m) =>
    join("cli", m[1])
  );
  assert(loaders.length >= 6, `found loaders ${loaders}`);
  for (const file of new Set(loaders)) {
    assert(modules.has(url(file)), `${file} is not in the graph`);
  }
  // Every backend folder's entry module (the shared protocol folders have none).
  for (const e of Deno.readDirSync(join(ROOT, "clients"))) {
    if (!e.isDirectory || ["oci", "gcs"].includes(e.name)) continue;
    const entry = join("clients", e.name, "mod.ts");
    assert(modules.has(url(entry)), `${entry} is not in the compile graph`);
  }
  for (
    const file of [
      "db/catalog.ts",
      "core/http.ts",
      "cli/app.ts",
      "core/sif.ts",
      // Data a client imports as a JSON module is embedded like code.
      "templates/google-build/build.json",
      "templates/google-build/build_repo.json",
    ]
  ) {
    assert(modules.has(url(file)), `${file} is not in the compile graph`);
  }
});

Deno.test("compile graph: workers are in the compile task's --include list", () => {
  for (const file of sourceFiles("core").concat(sourceFiles("clients"), sourceFiles("db"))) {
    const text = Deno.readTextFileSync(join(ROOT, file));
    for (const m of text.matchAll(/new Worker\(\s*new URL\("([^"]+)"/g)) {
      const target = relative(ROOT, join(ROOT, file, "..", m[1]));
      assert(includes.includes(target), `${file} starts ${target}, missing from --include`);
      assert(Deno.statSync(join(ROOT, target)).isFile, target);
    }
  }
  assert(includes.includes("core/_hash_worker.ts"), tasks.compile);
});

Deno.test("compile graph: dynamic imports use string literals only", () => {
  const bad: string[] = [];
  for (const dir of ["cli", "core", "db", "clients"]) {
    for (const file of sourceFiles(dir)) {
      const text = Deno.readTextFileSync(join(ROOT, file));
      for (const m of text.matchAll(/\bimport\(\s*([^)\s][^)]*)\)/g)) {
        // A JSON module's import attributes are fine: the specifier is still a literal.
        const literal = /^"[^"]+"(\s*,\s*\{\s*with:\s*\{\s*type:\s*"json"\s*\}\s*\})?$/;
        if (!literal.test(m[1].trim())) bad.push(`${file}: import(${m[1]})`);
      }
    }
  }
  assertEquals(bad, []);
});

Deno.test("compile graph: version and images load only what they need", () => {
  const version = staticClosure(["main.ts", "cli/app.ts", "cli/commands/version.ts"]);
  assert(version.has("cli/program.ts") && version.has("core/settings.ts"), [...version].join());
  const forbidden = (set: Set<string>, pattern: RegExp) => [...set].filter((m) => pattern.test(m));
  assertEquals(
    forbidden(
      version,
      /^(db\/|clients\/|core\/sif\.ts|core\/http\.ts|core\/transfer|node:)|zod|commander/,
    ),
    [],
  );
  const images = staticClosure([
    "main.ts",
    "cli/app.ts",
    "cli/commands/local.ts",
    "db/catalog.ts",
  ]);
  assert(images.has("db/catalog.ts"));
  assertEquals(
    forbidden(
      images,
      /^(clients\/|core\/http\.ts|core\/transfer|core\/auth\/|core\/sif\.ts)|node:crypto/,
    ),
    [],
  );
});

Deno.test("compile graph: every module resolves from the local cache, without network", async () => {
  // No remote modules (--no-remote), the lockfile as it is (--frozen), and a proxy that refuses
  // every connection: what resolves here is all `deno compile` needs besides its runtime base.
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "info",
      "--json",
      "--no-remote",
      "--frozen",
      "--config",
      join(ROOT, "deno.json"),
      "main.ts",
    ],
    cwd: ROOT,
    env: {
      HTTP_PROXY: "http://127.0.0.1:9",
      HTTPS_PROXY: "http://127.0.0.1:9",
      NO_PROXY: "",
      DENO_NO_UPDATE_CHECK: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert(out.success, `deno info failed offline: ${stderr}`);
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: (Module & { error?: string; kind?: string })[];
    npmPackages?: Record<string, { localPath?: string }>;
  };
  const lock = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.lock")));
  const bad: string[] = [];
  for (const m of graph.modules) {
    if (m.error) bad.push(`${m.specifier}: ${m.error}`);
    const scheme = m.specifier.split(":")[0];
    if (scheme === "npm") {
      if (!(m.specifier in (lock.specifiers ?? {}))) bad.push(`${m.specifier} is not in deno.lock`);
    } else if (scheme !== "file" && scheme !== "node") {
      bad.push(`${m.specifier}: a remote module (${scheme}:) compile would fetch`);
    }
    for (const d of m.dependencies ?? []) {
      const e = (d as { code?: { error?: string } }).code?.error;
      if (e) bad.push(`${m.specifier} -> ${d.specifier}: ${e}`);
    }
  }
  for (const [name, pkg] of Object.entries(graph.npmPackages ?? {})) {
    if (!(name in (lock.npm ?? {}))) bad.push(`npm package ${name} is not in deno.lock`);
    if (pkg.localPath && !existsSync(pkg.localPath)) bad.push(`npm package ${name} is not cached`);
  }
  assertEquals(bad, []);
  assert(graph.modules.length > 50, `only ${graph.modules.length} modules`);
});

/** A task's words without `--target <t>` and `--output <path>` (what differs between targets). */
function withoutTarget(task: string): string[] {
  const words = task.split(/\s+/);
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    if (words[i] === "--target" || words[i] === "--output") i++;
    else out.push(words[i]);
  }
  return out;
}

Deno.test("compile tasks: the binary, the tests and deno task start share one permission set", () => {
  const compile = tasks.compile.split(/\s+/);
  const flags = permissionFlags(compile);
  assertEquals(flags, ["-P=cli"]);
  const perms = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).permissions;
  assert(perms?.cli, "deno.json has no permission set cli");
  assertEquals(permissionFlags(CLI_ARGS), flags, "tests/_cli.ts CLI_ARGS");
  assertEquals(permissionFlags(tasks.start.split(/\s+/)), flags, "tasks.start");
  const targets = Object.keys(tasks).filter((k) => k.startsWith("compile:"));
  assertEquals(targets.sort(), [
    "compile:aarch64-apple-darwin",
    "compile:aarch64-unknown-linux-gnu",
    "compile:x86_64-apple-darwin",
    "compile:x86_64-unknown-linux-gnu",
  ]);
  for (const t of targets) {
    assert(tasks[t].includes(`--target ${t.slice("compile:".length)}`), `${t}: ${tasks[t]}`);
    assertEquals(
      withoutTarget(tasks[t]),
      withoutTarget(tasks.compile),
      `${t} differs from compile`,
    );
  }
});
