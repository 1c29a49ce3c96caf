/**
 * The JSR package stays publishable: `deno publish --dry-run` (offline: it needs no registry for a
 * dry run; a proxy that refuses every connection proves it) passes its slow-type check and ships the
 * library and the CLI but not tests, benchmarks or builds; `deno doc --lint mod.ts` is clean; and
 * deno.json names the package and its two exports.
 * @module
 */

import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { ROOT, tempHome } from "./_cli.ts";
import { VERSION } from "../core/version.ts";

const OFFLINE = {
  HTTP_PROXY: "http://127.0.0.1:9",
  HTTPS_PROXY: "http://127.0.0.1:9",
  NO_PROXY: "",
  DENO_NO_UPDATE_CHECK: "1",
};

async function deno(args: string[]): Promise<{ ok: boolean; text: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { ...OFFLINE, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { ok: out.success, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("jsr: deno.json names the package, its version and its two exports", () => {
  const config = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));
  assertEquals(config.name, "@sregistry/cli");
  assert(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(config.version), config.version);
  assertEquals(config.exports, { ".": "./mod.ts", "./cli": "./main.ts" });
  for (const dir of ["tests/", "bench/", "dist/"]) {
    assert(config.publish?.exclude?.includes(dir), `publish.exclude lacks ${dir}`);
  }
});

Deno.test("jsr: deno publish --dry-run succeeds offline and ships the right files", async () => {
  const { ok, text } = await deno(["publish", "--dry-run", "--allow-dirty"]);
  assert(ok, `deno publish --dry-run failed:\n${text}`);
  assert(text.includes("Dry run complete"), text);
  const files = [...text.matchAll(/file:\/\/(\S+)/g)].map((m) => m[1].slice(ROOT.length));
  for (const f of ["mod.ts", "main.ts", "deno.json", "README.md", "clients/mod.ts"]) {
    assert(files.includes(f), `${f} is not published: ${files.join(", ")}`);
  }
  const shipped = files.filter((f) => /^(tests|bench|dist|\.ci)\//.test(f));
  assertEquals(shipped, [], "these must not be published");
});

Deno.test("jsr: deno doc --lint mod.ts is clean", async () => {
  const { ok, text } = await deno(["doc", "--lint", "mod.ts"]);
  assert(ok, `deno doc --lint mod.ts:\n${text}`);
});

Deno.test("jsr: `deno run jsr:@sregistry/cli <command>` runs the CLI, as `.../cli` does", async () => {
  // The package's exports, mapped to this checkout as JSR would serve them.
  const home = await tempHome();
  try {
    const map = join(home.dir, "import_map.json");
    await Deno.writeTextFile(
      map,
      JSON.stringify({
        imports: {
          "jsr:@sregistry/cli": new URL("../mod.ts", import.meta.url).href,
          "jsr:@sregistry/cli/cli": new URL("../main.ts", import.meta.url).href,
        },
      }),
    );
    for (const spec of ["jsr:@sregistry/cli", "jsr:@sregistry/cli/cli"]) {
      const run = (args: string[]) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-q", "-A", "--no-config", "--no-lock", "--import-map", map, spec, ...args],
          cwd: home.dir,
          clearEnv: true,
          env: { ...OFFLINE, ...home.env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
          stdout: "piped",
          stderr: "piped",
        }).output();
      const version = await run(["version", "--json"]);
      const dec = new TextDecoder();
      assertEquals(version.code, 0, `${spec}: ${dec.decode(version.stderr)}`);
      assertEquals(JSON.parse(dec.decode(version.stdout)).version, VERSION, spec);
      // The exit code is the command's: a usage error is 2.
      assertEquals((await run(["nosuch"])).code, 2, spec);
    }
  } finally {
    await home.cleanup();
  }
});
