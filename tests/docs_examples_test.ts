/**
 * The examples in README.md and docs/ run. A fenced block preceded by `<!-- test -->` is run:
 *
 * - a `sh` block through `sh -e`, with `sregistry` on PATH running the CLI as the tests do
 *   (`deno run` with the `cli` permission set); every line must succeed;
 * - a `ts` block as a program of its own, with `jsr:@sregistry/cli` mapped to the local mod.ts.
 *
 * The blocks of one file run in order, in one fresh home (HOME, database, storage, secrets file)
 * whose current folder holds `hello.sif`, a fixture SIF from ../shared/fixtures. `localhost:8080`
 * in an example is a local nginx serving `/images/hello.sif`, and `localhost:5000` a local
 * docker-registry; each is started once for the file, only when some example names it.
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  CLI_ARGS,
  DENO_DIR,
  onPath,
  requirement,
  ROOT,
  SHARED_FIXTURES,
  tempHome,
} from "./_cli.ts";
import { type Nginx, nginxAvailable, startNginx } from "./servers/nginx.ts";
import { REGISTRY_BIN, type RegistryServer, startRegistry } from "./servers/registry.ts";

/** One runnable example. */
interface Example {
  /** The markdown file, relative to the root. */
  file: string;
  /** Its line number (of the opening fence). */
  line: number;
  /** `sh` or `ts`. */
  lang: "sh" | "ts";
  /** The code. */
  code: string;
}

const MARKER = /^<!--\s*test(?::\s*[\w-]+)?\s*-->\s*$/;
const HTTP_PLACEHOLDER = "localhost:8080";
const REGISTRY_PLACEHOLDER = "localhost:5000";
const FIXTURE = join(SHARED_FIXTURES, "sif", "images", "one-group.sif");

/** The marked examples of one markdown text. */
export function examplesIn(file: string, text: string): Example[] {
  const lines = text.split("\n");
  const out: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!MARKER.test(lines[i])) continue;
    let j = i + 1;
    while (j < lines.length && lines[j].trim() === "") j++;
    const fence = /^```(\w+)\s*$/.exec(lines[j] ?? "");
    if (!fence) throw new Error(`${file}:${i + 1}: <!-- test --> is not followed by a code block`);
    const lang = fence[1];
    if (lang !== "sh" && lang !== "ts") {
      throw new Error(`${file}:${j + 1}: only sh and ts blocks can be tested, not ${lang}`);
    }
    const end = lines.indexOf("```", j + 1);
    if (end < 0) throw new Error(`${file}:${j + 1}: unclosed code block`);
    out.push({ file, line: j + 1, lang, code: lines.slice(j + 1, end).join("\n") });
    i = end;
  }
  return out;
}

function markdownFiles(): string[] {
  const out = ["README.md"];
  const walk = (dir: string) => {
    for (
      const e of [...Deno.readDirSync(join(ROOT, dir))].sort((a, b) => a.name < b.name ? -1 : 1)
    ) {
      const p = join(dir, e.name);
      if (e.isDirectory) walk(p);
      else if (e.name.endsWith(".md")) out.push(p);
    }
  };
  walk("docs");
  return out;
}

const examples = markdownFiles().flatMap((f) =>
  examplesIn(f, Deno.readTextFileSync(join(ROOT, f)))
);
const byFile = Map.groupBy(examples, (e) => e.file);
const needsHttp = examples.some((e) => e.code.includes(HTTP_PLACEHOLDER));
const needsRegistry = examples.some((e) => e.code.includes(REGISTRY_PLACEHOLDER));

Deno.test("docs examples: the marker finds blocks, and only fenced sh/ts ones", () => {
  const text = "x\n<!-- test -->\n\n```sh\nsregistry images\n```\n```sh\nnot marked\n```\n";
  assertEquals(examplesIn("a.md", text), [
    { file: "a.md", line: 4, lang: "sh", code: "sregistry images" },
  ]);
  let threw = false;
  try {
    examplesIn("b.md", "<!-- test -->\ntext\n");
  } catch {
    threw = true;
  }
  assert(threw, "a marker without a block must be an error");
  // The README's tour, configuration and library example are all marked.
  const readme = byFile.get("README.md") ?? [];
  assert(readme.length >= 6, `README.md has ${readme.length} tested examples`);
  assert(readme.some((e) => e.lang === "ts" && e.code.includes("jsr:@sregistry/cli")));
});

const haveFixture = existsSync(FIXTURE);
const haveServers = (!needsHttp || nginxAvailable()) && (!needsRegistry || onPath(REGISTRY_BIN));

Deno.test({
  name: "docs examples: every marked README and docs/ example exits 0",
  ignore: requirement(`${FIXTURE} (../shared/fixtures)`, haveFixture).ignore ||
    requirement("nginx and docker-registry (apt-get install nginx docker-registry)", haveServers)
      .ignore,
  fn: async () => {
    const nginx: Nginx | undefined = needsHttp ? await startNginx() : undefined;
    let registry: RegistryServer | undefined;
    const bin = await Deno.makeTempDir({ prefix: "sregistry-docs-bin-" });
    try {
      registry = needsRegistry ? await startRegistry() : undefined;
      if (nginx) {
        await Deno.mkdir(join(nginx.root, "images"), { recursive: true });
        await Deno.copyFile(FIXTURE, join(nginx.root, "images", "hello.sif"));
      }
      const wrapper = join(bin, "sregistry");
      await Deno.writeTextFile(
        wrapper,
        `#!/bin/sh\nexec ${[Deno.execPath(), ...CLI_ARGS].map(quote).join(" ")} "$@"\n`,
      );
      await Deno.chmod(wrapper, 0o755);
      const substitute = (code: string) => {
        let out = code;
        if (nginx) out = out.replaceAll(HTTP_PLACEHOLDER, new URL(nginx.http).host);
        if (registry) out = out.replaceAll(REGISTRY_PLACEHOLDER, registry.host);
        return out;
      };
      // Files run four at a time (their registry repositories differ), each in its own home.
      const runFile = async (list: Example[]): Promise<string | undefined> => {
        const home = await tempHome();
        try {
          await Deno.copyFile(FIXTURE, join(home.dir, "hello.sif"));
          for (const ex of list) {
            const res = ex.lang === "sh"
              ? await runShell(substitute(ex.code), home.dir, { ...home.env }, bin)
              : await runTs(substitute(ex.code), home.dir, { ...home.env });
            if (res.code !== 0) {
              return `${ex.file}:${ex.line} exited ${res.code}\n--- example\n${ex.code}\n--- output\n${res.output}`;
            }
          }
          return undefined;
        } finally {
          await home.cleanup();
        }
      };
      const queue = [...byFile.values()];
      const failures: string[] = [];
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let list = queue.shift(); list; list = queue.shift()) {
          const failure = await runFile(list);
          if (failure) failures.push(failure);
        }
      }));
      assertEquals(failures, []);
      assert(byFile.size >= 10, `only ${byFile.size} files have tested examples`);
    } finally {
      await registry?.stop();
      await nginx?.stop();
      await Deno.remove(bin, { recursive: true });
    }
  },
});

interface Ran {
  code: number;
  output: string;
}

async function runShell(
  code: string,
  cwd: string,
  env: Record<string, string>,
  bin: string,
): Promise<Ran> {
  // -x: the output shows which line failed.
  return await run("sh", ["-e", "-x", "-c", code], cwd, {
    ...env,
    PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
  });
}

async function runTs(code: string, cwd: string, env: Record<string, string>): Promise<Ran> {
  const dir = await Deno.makeTempDir({ dir: cwd, prefix: "example-" });
  const program = join(dir, "example.ts");
  const map = join(dir, "import_map.json");
  await Deno.writeTextFile(program, code);
  await Deno.writeTextFile(
    map,
    JSON.stringify({
      imports: { "jsr:@sregistry/cli": new URL("../mod.ts", import.meta.url).href },
    }),
  );
  return await run(
    Deno.execPath(),
    ["run", "-q", "--no-config", "--no-lock", "--import-map", map, "-A", program],
    cwd,
    { ...env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
  );
}

async function run(cmd: string, args: string[], cwd: string, env: Record<string, string>) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    clearEnv: true,
    env: { NO_COLOR: "1", DENO_DIR, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

function quote(s: string): string {
  return /^[A-Za-z0-9_./=:-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
