/**
 * `sregistry completions`: the bash script is loaded in bash and its function is called the way
 * bash calls it (COMP_WORDS, COMP_CWORD), with `sregistry` a shell function running this checkout's
 * CLI, so that image names come from a real catalog filled with `sregistry add`. The zsh and fish
 * scripts are checked for what they must contain and for balance, parsed by `zsh -n` and `fish -n`,
 * and run: zsh's function with its completion builtins stubbed, fish through `complete -C`; each
 * shell's part is skipped where it is not installed (.ci/run installs both).
 */

import assert, { deepStrictEqual as assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { COMMANDS, GLOBAL_OPTIONS } from "../cli/command_table.ts";
import { completionScript } from "../cli/commands/completions.ts";
import { FACTORIES } from "../clients/mod.ts";
import { CLI_ARGS, type CliResult, onPath, runCli, tempHome } from "./_cli.ts";

const sh = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Run the CLI in a home of its own (settings need one). */
async function cli(args: string[]): Promise<CliResult> {
  const home = await tempHome();
  try {
    return await runCli(args, { env: home.env });
  } finally {
    await home.cleanup();
  }
}

async function script(shell: string): Promise<string> {
  const r = await cli(["completions", shell]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stderr, "");
  return r.stdout;
}

/** Run the bash completion for each word list; return each COMPREPLY. */
async function complete(
  bashScript: string,
  env: Record<string, string>,
  lines: string[][],
): Promise<string[][]> {
  const program = [
    `sregistry() { ${[Deno.execPath(), ...CLI_ARGS].map(sh).join(" ")} "$@"; }`,
    bashScript,
    't() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _sregistry;' +
    ` printf '%s\\n' "\${COMPREPLY[*]}"; }`,
    ...lines.map((words) => `t ${words.map(sh).join(" ")}`),
  ].join("\n");
  const out = await new Deno.Command("bash", {
    args: ["--norc", "--noprofile", "-c", program],
    clearEnv: true,
    env: { ...env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, stderr);
  assertEquals(stderr, "");
  return new TextDecoder().decode(out.stdout).split("\n").slice(0, -1).map((l) =>
    l === "" ? [] : l.split(" ")
  );
}

Deno.test({
  name: "completions bash: commands, flags, schemes and catalog image names",
  ignore: !onPath("bash"),
  async fn() {
    const home = await tempHome();
    try {
      const image = join(home.dir, "hello.sif");
      await Deno.writeTextFile(image, "not really an image");
      for (const name of ["vsoch/hello-world:latest", "vsoch/hello-world:v1", "other/thing:1.0"]) {
        await Deno.copyFile(image, `${image}.copy`);
        const r = await runCli(["add", `${image}.copy`, "--name", name], { env: home.env });
        assertEquals(r.code, 0, r.stderr);
      }
      const bash = await script("bash");
      const replies = await complete(bash, home.env, [
        ["sregistry", "pu"],
        ["sregistry", ""],
        ["sregistry", "pull", "--n"],
        ["sregistry", "--debug", "pull", "--"],
        ["sregistry", "pull", "dr"],
        ["sregistry", "search", "oras://x", "s"],
        ["sregistry", "get", "vs"],
        ["sregistry", "inspect", "--objects", ""],
        // bash splits at ':' (COMP_WORDBREAKS): the reply is what follows the colon.
        ["sregistry", "rm", "vsoch/hello-world", ":", "l"],
        ["sregistry", "mv", "oth"],
        ["sregistry", "rename", "vsoch/hello-world:v1", "x"],
        ["sregistry", "push", "hello.sif", "--name", "or"],
        ["sregistry", "push", "hello.sif", "--"],
        ["sregistry", "push", "hello.sif", "--a"],
        ["sregistry", "backend", "ac"],
        ["sregistry", "backend", "activate", "goo"],
        ["sregistry", "completions", "f"],
        ["sregistry", "help", "sh"],
        ["sregistry", "help", "gi"],
        ["sregistry", "-"],
      ]);
      // The registered clients, as the script offers them (underscore spellings left out).
      const clients = [
        ...new Set(
          FACTORIES.flatMap((f) => [f.scheme, ...(f.aliases ?? [])]).filter((s) =>
            !s.includes("_")
          ),
        ),
      ].sort();
      const starting = (p: string, suffix = "") =>
        clients.filter((c) => c.startsWith(p)).map((c) => c + suffix);
      assert.ok(starting("s").length >= 2 && starting("goo").length >= 2);
      const pullFlags = COMMANDS.find((c) => c.name === "pull")!.options.map((o) => `--${o.name}`);
      const pushFlags = COMMANDS.find((c) => c.name === "push")!.options.map((o) => `--${o.name}`);
      assert.ok(pushFlags.includes("--platform") && pushFlags.includes("--arch"), `${pushFlags}`);
      assertEquals(replies, [
        ["pull", "push"],
        [...COMMANDS.map((c) => c.name), "help"],
        ["--name", "--no-cache"],
        [...pullFlags, ...GLOBAL_OPTIONS.map((o) => `--${o.name}`)],
        starting("dr", "://"),
        starting("s", "://"),
        ["vsoch/hello-world:latest", "vsoch/hello-world:v1"],
        ["other/thing:1.0", "vsoch/hello-world:latest", "vsoch/hello-world:v1"],
        ["latest"],
        ["other/thing:1.0"],
        [],
        ["oras://"],
        [...pushFlags, ...GLOBAL_OPTIONS.map((o) => `--${o.name}`)],
        ["--arch"],
        ["activate"],
        starting("goo"),
        ["fish"],
        // help takes a command or a client.
        ["share", "shell", ...starting("sh")],
        starting("gi"),
        GLOBAL_OPTIONS.flatMap((o) => [`--${o.name}`, ...(o.short ? [`-${o.short}`] : [])]),
      ]);
    } finally {
      await home.cleanup();
    }
  },
});

Deno.test({
  name: "completions bash: a global option's value is skipped when finding the command",
  ignore: !onPath("bash"),
  async fn() {
    // --ca-file <pem> is a real global option that takes a value.
    assertEquals(GLOBAL_OPTIONS.find((o) => o.name === "ca-file")?.type, "string");
    const bash = completionScript("bash", {
      commands: COMMANDS,
      globals: GLOBAL_OPTIONS,
      clients: ["docker", "s3"],
    });
    const home = await tempHome();
    try {
      assertEquals(
        await complete(bash, home.env, [
          ["sregistry", "--ca-file", "ca.pem", "pu"],
          ["sregistry", "--ca-file", ""],
          ["sregistry", "pull", "--ca-file", "ca.pem", "s"],
          ["sregistry", "--debug", "--c"],
        ]),
        [["pull", "push"], [], ["s3://"], ["--ca-file"]],
      );
    } finally {
      await home.cleanup();
    }
  },
});

Deno.test("completions --names: one name a line, nothing (and no catalog made) without one", async () => {
  const home = await tempHome();
  try {
    const empty = await runCli(["completions", "--names"], { env: home.env });
    assertEquals(empty, { code: 0, stdout: "", stderr: "" });
    let made = true;
    await Deno.stat(join(home.env.SREGISTRY_DATABASE, "sregistry.db")).catch(() => made = false);
    assertEquals(made, false);
    const image = join(home.dir, "a.sif");
    await Deno.writeTextFile(image, "x");
    assertEquals((await runCli(["add", image, "--name", "a/b:c"], { env: home.env })).code, 0);
    assertEquals(await runCli(["completions", "--names"], { env: home.env }), {
      code: 0,
      stdout: "a/b:c\n",
      stderr: "",
    });
  } finally {
    await home.cleanup();
  }
});

Deno.test("completions: an unknown or missing shell is a usage error naming the accepted ones", async () => {
  for (const args of [["completions", "tcsh"], ["completions"]]) {
    const r = await cli(args);
    assertEquals(r.code, 2);
    assertEquals(r.stdout, "");
    assert.match(r.stderr, /^ERROR .*bash.*zsh.*fish\n$/);
  }
  assert.match((await cli(["completions", "tcsh"])).stderr, /Unknown shell "tcsh"/);
});

/** Outside single quotes, the words that open and close blocks must pair up. */
function balanced(text: string, pairs: [RegExp, RegExp][]): void {
  const code = text.split("\n").map((line, i) => {
    const stripped = line.replaceAll("'\\''", "").replace(/'[^']*'/g, "Q");
    assert.ok(!stripped.includes("'") || /^\s*#/.test(line), `line ${i + 1}: open quote: ${line}`);
    // A case label (`get)`, `--name|-n)`, `*)`) closes no parenthesis.
    return stripped.replace(/#.*$/, "").replace(/^(\s*)[\w|*-]+\)/, "$1");
  }).join("\n");
  for (const [open, close] of pairs) {
    const opened = code.match(open)?.length ?? 0;
    const closed = code.match(close)?.length ?? 0;
    assertEquals(opened, closed, `${open} ${opened} vs ${close} ${closed}`);
  }
}

Deno.test("completions zsh and fish: every command, flag and scheme, balanced", async () => {
  const schemes = FACTORIES.map((f) => `${f.scheme}://`);
  const zsh = await script("zsh");
  assert.match(zsh, /^#compdef sregistry\n/);
  for (const c of COMMANDS) {
    assert.ok(zsh.includes(`    ${c.name})\n`), `zsh: no case for ${c.name}`);
    assert.ok(zsh.includes(`'${c.name}:`), `zsh: ${c.name} not described`);
    for (const o of c.options) assert.ok(zsh.includes(`'--${o.name}:`), `zsh: --${o.name}`);
  }
  for (const s of schemes) assert.ok(zsh.includes(` ${s}`), `zsh: no ${s}`);
  assert.ok(zsh.includes("completions --names"));
  balanced(zsh, [
    [/\bcase\b/g, /\besac\b/g],
    [/\bif\b/g, /\bfi\b/g],
    [/\bfor\b/g, /\bdone\b/g],
    [/\{/g, /\}/g],
    [/\(/g, /\)/g],
  ]);

  const fish = await script("fish");
  for (const c of COMMANDS) {
    assert.ok(fish.includes(`-n __fish_use_subcommand -a ${c.name} -d`), `fish: ${c.name}`);
    for (const o of c.options) {
      assert.ok(
        fish.includes(`__fish_seen_subcommand_from ${c.name}'`) &&
          fish.includes(` -l ${o.name}`),
        `fish: ${c.name} --${o.name}`,
      );
    }
  }
  for (const s of schemes) assert.ok(fish.includes(s), `fish: no ${s}`);
  for (const line of fish.split("\n")) {
    assert.match(line, /^(complete -c sregistry\b.*|function \S+|end| {4}.*|#.*|)$/);
  }
  balanced(fish, [[/^function /gm, /^end$/gm], [/\(/g, /\)/g]]);

  // Each shell that is installed can at least parse its own script (zsh -n, fish -n).
  const parses: [string, string, string[]][] = [
    ["bash", await script("bash"), ["-n", "-c"]],
    ["zsh", zsh, ["-n", "-c"]],
    ["fish", fish, ["--no-config", "-n", "-c"]],
  ];
  for (const [shell, text, args] of parses) {
    if (!onPath(shell)) continue;
    const out = await new Deno.Command(shell, { args: [...args, text], stderr: "piped" }).output();
    assertEquals(out.code, 0, `${shell}: ${new TextDecoder().decode(out.stderr)}`);
  }
});

/** zsh's completion builtins, replaced by ones printing the candidates that match `$cur`. */
const ZSH_STUBS = [
  "compdef() { :; }",
  '_describe() { local a x; for a in "${@[4,-1]}"; do [[ $a == -- ]] && continue;' +
  ' for x in "${(@P)a}"; do print -r -- "${x%%:*}"; done; done | _stub_match; }',
  "compadd() { local -a w; while [[ $1 == -* && $1 != -- ]]; do case $1 in" +
  ' -a) shift; w+=("${(@P)1}");; -S) shift;; esac; shift; done; [[ $1 == -- ]] && shift;' +
  ' w+=("$@"); print -rl -- "${w[@]}" | _stub_match; }',
  "_files() { print FILES; }",
  "_stub_match() { local l out=(); while IFS= read -r l; do [[ $l == $cur* ]] && out+=($l); done;" +
  ' print -r -- "${(j: :)out}"; }',
].join("\n");

Deno.test({
  name: "completions zsh: the completion function offers commands, flags, schemes and image names",
  ignore: !onPath("zsh"),
  async fn() {
    const home = await tempHome();
    try {
      const image = join(home.dir, "hello.sif");
      await Deno.writeTextFile(image, "not really an image");
      const added = await runCli(["add", image, "--name", "vsoch/hello-world:latest"], {
        env: home.env,
      });
      assertEquals(added.code, 0, added.stderr);
      const lines = [
        ["sregistry", "pu"],
        ["sregistry", "push", "x.sif", "--a"],
        ["sregistry", "get", "vs"],
        ["sregistry", "help", "gi"],
        ["sregistry", "pull", "dr"],
        ["sregistry", "--ca-file", "ca.pem", "pu"],
        ["sregistry", "--ca-file", ""],
      ];
      const program = [
        `sregistry() { ${[Deno.execPath(), ...CLI_ARGS].map(sh).join(" ")} "$@"; }`,
        await script("zsh").then((z) => z.replace(/^compdef .*$/m, "")),
        ZSH_STUBS,
        't() { words=("$@"); CURRENT=$#; _sregistry; }',
        ...lines.map((words) => `t ${words.map(sh).join(" ")}`),
      ].join("\n");
      const out = await new Deno.Command("zsh", {
        args: ["-f", "-c", program],
        clearEnv: true,
        env: { ...home.env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      const replies = new TextDecoder().decode(out.stdout).split("\n").slice(0, -1);
      const starting = (p: string, suffix = "") =>
        FACTORIES.map((f) => f.scheme).filter((s) => s.startsWith(p)).sort().map((s) => s + suffix);
      assertEquals(replies, [
        "pull push",
        "--arch",
        "vsoch/hello-world:latest",
        starting("gi").join(" "),
        starting("dr", "://").join(" "),
        "pull push",
        "FILES",
      ]);
    } finally {
      await home.cleanup();
    }
  },
});

Deno.test({
  name: "completions fish: fish completes commands, push's flags, help topics and image names",
  ignore: !onPath("fish"),
  async fn() {
    const home = await tempHome();
    const bin = await Deno.makeTempDir({ prefix: "sregistry-fish-bin-" });
    try {
      const image = join(home.dir, "hello.sif");
      await Deno.writeTextFile(image, "not really an image");
      const added = await runCli(["add", image, "--name", "vsoch/hello-world:latest"], {
        env: home.env,
      });
      assertEquals(added.code, 0, added.stderr);
      // `sregistry` on PATH runs this checkout's CLI, as the script asks it for image names.
      await Deno.writeTextFile(
        join(bin, "sregistry"),
        `#!/bin/sh\nexec ${[Deno.execPath(), ...CLI_ARGS].map(sh).join(" ")} "$@"\n`,
      );
      await Deno.chmod(join(bin, "sregistry"), 0o755);
      const lines = [
        "sregistry pu",
        "sregistry push x.sif --a",
        "sregistry get vs",
        "sregistry help gi",
      ];
      const program = [
        await script("fish"),
        ...lines.map((l) => `complete -C ${sh(l)} | string replace -r '\\t.*' ''; echo ---`),
      ].join("\n");
      const out = await new Deno.Command("fish", {
        args: ["--no-config", "-c", program],
        clearEnv: true,
        env: { ...home.env, PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}` },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      const replies = new TextDecoder().decode(out.stdout).split("---\n").slice(0, -1)
        .map((r) => r.trim().split("\n").filter((w) => w !== "").sort());
      const gi = FACTORIES.map((f) => f.scheme).filter((s) => s.startsWith("gi")).sort();
      assertEquals(replies, [["pull", "push"], ["--arch"], ["vsoch/hello-world:latest"], gi]);
    } finally {
      await Deno.remove(bin, { recursive: true });
      await home.cleanup();
    }
  },
});
