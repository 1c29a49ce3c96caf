/**
 * The dependency rules of DESIGN.md, enforced: `core/` depends on nothing else in the repo, `db/`
 * only on `core/`, a backend only on `core/`, `clients/types.ts`, its own folder and the shared
 * protocol folders, and nothing but `main.ts` and `mod.ts` reaches into `cli/`.
 */

import assert from "./_assert.ts";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** Folders under clients/ that hold protocol code several backends share, not a backend. */
const SHARED_PROTOCOL = ["oci", "gcs"];

/** Every relative import (static, `export from`, and string-literal dynamic) in a source file. */
export function relativeImports(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^;]*?\sfrom\s*["'](\.[^"']+)["']/g,
    /\bimport\s*["'](\.[^"']+)["']/g,
    /\bimport\(\s*["'](\.[^"']+)["']\s*\)/g,
  ];
  for (const p of patterns) for (const m of source.matchAll(p)) found.push(m[1]);
  return found;
}

function* sourceFiles(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* sourceFiles(p);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

/** Why `from` may not import `to` (both repo-relative), or undefined when it may. */
export function violation(from: string, to: string): string | undefined {
  const top = (p: string) => p.split("/")[0];
  if (to === "deno.json") return undefined;
  if (top(from) === "core") {
    return top(to) === "core" ? undefined : "core/ imports nothing outside core/";
  }
  if (top(from) === "db") {
    return ["core", "db"].includes(top(to)) ? undefined : "db/ imports only core/ and db/";
  }
  if (top(from) === "clients") {
    const parts = from.split("/");
    if (parts.length === 2) {
      // clients/mod.ts registers every backend; clients/types.ts is the contract.
      return ["core", "clients", "db"].includes(top(to)) && !to.startsWith("db/catalog")
        ? undefined
        : "clients/ imports core/, db/types.ts and backends only";
    }
    const own = parts[1];
    if (top(to) === "core" || to === "clients/types.ts") return undefined;
    if (to === "db/types.ts") return undefined;
    const toParts = to.split("/");
    if (toParts[0] === "clients" && toParts.length > 2) {
      if (toParts[1] === own || SHARED_PROTOCOL.includes(toParts[1])) return undefined;
      return `a backend never imports another backend (${toParts[1]})`;
    }
    return "a backend imports only core/, clients/types.ts and shared protocol folders";
  }
  if (top(from) === "templates") {
    return top(to) === "cli" || to.startsWith("db/catalog")
      ? "the template is a backend: it imports no cli/ or db/catalog.ts"
      : undefined;
  }
  if (top(to) === "cli" && !["main.ts", "mod.ts"].includes(from) && top(from) !== "cli") {
    if (["tests", "bench"].includes(top(from))) return undefined;
    return "only main.ts and mod.ts reach into cli/";
  }
  return undefined;
}

Deno.test("layout: no file imports across the dependency rules", () => {
  const problems: string[] = [];
  for (const folder of ["core", "db", "clients", "cli", "templates"]) {
    for (const file of sourceFiles(join(ROOT, folder))) {
      const from = relative(ROOT, file);
      for (const spec of relativeImports(Deno.readTextFileSync(file))) {
        const to = relative(ROOT, resolve(dirname(file), spec));
        const why = violation(from, to);
        if (why) problems.push(`${from} -> ${to}: ${why}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("layout: the rules reject what they should", () => {
  assert.ok(violation("core/http.ts", "clients/types.ts"));
  assert.ok(violation("core/app.ts", "db/catalog.ts"));
  assert.ok(violation("db/catalog.ts", "clients/mod.ts"));
  assert.ok(violation("clients/aws/mod.ts", "clients/docker/mod.ts"));
  assert.ok(violation("clients/http/mod.ts", "db/catalog.ts"));
  assert.ok(violation("clients/http/mod.ts", "cli/app.ts"));
  assert.equal(violation("clients/aws/mod.ts", "clients/oci/client.ts"), undefined);
  assert.equal(violation("clients/google-build/mod.ts", "clients/gcs/api.ts"), undefined);
  assert.ok(violation("clients/google-build/mod.ts", "clients/google-storage/mod.ts"));
  assert.equal(violation("clients/aws/mod.ts", "core/auth/sigv4.ts"), undefined);
  assert.equal(violation("db/catalog.ts", "core/names.ts"), undefined);
  assert.deepEqual(
    relativeImports(
      `import { a } from "./a.ts";\nexport * from "../b.ts";\nconst m = await import("./c.ts");\nimport "./d.ts";`,
    ).sort(),
    ["../b.ts", "./a.ts", "./c.ts", "./d.ts"],
  );
});

Deno.test("layout: tests take their assertions from tests/_assert.ts only", () => {
  const direct: string[] = [];
  for (const file of sourceFiles(join(ROOT, "tests"))) {
    const from = relative(ROOT, file);
    if (from === "tests/_assert.ts") continue;
    if (/from\s*["']node:assert/.test(Deno.readTextFileSync(file))) direct.push(from);
  }
  assert.deepEqual(direct, []);
});
