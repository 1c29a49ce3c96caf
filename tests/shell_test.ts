/**
 * `sregistry shell`: the evaluator (scope kept across inputs, declarations, await, the TypeScript it
 * accepts), the CLI through standard input, and the CLI through a pseudo-terminal (`script` from
 * util-linux), where the prompt, Ctrl-C and Ctrl-D are checked.
 */

import assert, { assertRejects, deepStrictEqual as assertEquals } from "./_assert.ts";
import { createEvaluator, isComplete } from "../cli/commands/_shell_eval.ts";
import { formatValue } from "../cli/commands/shell.ts";
import { CLI_ARGS, onPath, requirement, runCli, tempHome } from "./_cli.ts";

async function values(inputs: string[]): Promise<unknown[]> {
  const e = createEvaluator({ client: { name: "s3" } });
  const out: unknown[] = [];
  for (const code of inputs) {
    const r = await e.evaluate(code);
    out.push(r.hasValue ? r.value : "<none>");
  }
  return out;
}

Deno.test("shell eval: expressions, await, and declarations that last for the session", async () => {
  assertEquals(
    await values([
      "client.name",
      "let x = 41",
      "x + 1",
      "const a = 1, b: number = 2",
      "a + b",
      "const {name} = client; name.toUpperCase()",
      "const [p, q] = [3, 4]\np * q",
      "function twice(n) { return n * 2 }",
      "twice(21)",
      "class Box { v = 5 }",
      "new Box().v",
      "await new Promise((r) => setTimeout(() => r('later'), 5))",
      "y = 7; y * 2;",
      "let u",
      "u",
      "({ k: [1, 2] })",
      "if (x > 1) { 'big' } else { 'small' }",
      "const s = `a;${x}`; s",
      "(x as number) + 1",
      "let ok = [1, 2] satisfies number[]; ok.length",
      "// only a comment",
    ]),
    [
      "s3",
      "<none>",
      42,
      "<none>",
      3,
      "S3",
      12,
      "<none>",
      42,
      "<none>",
      5,
      "later",
      14,
      "<none>",
      undefined,
      { k: [1, 2] },
      "<none>",
      "a;41",
      42,
      2,
      "<none>",
    ],
  );
});

Deno.test("shell eval: names are looked up in the scope, then globals; typos throw", async () => {
  const e = createEvaluator({ client: { name: "s3" } });
  await e.evaluate("let fetch = 'mine'");
  // A declaration shadows a global inside the session without replacing it.
  assertEquals((await e.evaluate("fetch")).value, "mine");
  assertEquals(typeof globalThis.fetch, "function");
  assertEquals((await e.evaluate("typeof JSON.stringify")).value, "function");
  assertEquals(e.scope.fetch, "mine");
  const typo = await assertRejects(() => e.evaluate("clinet.name"), ReferenceError);
  assertEquals(typo.message, "clinet is not defined");
  await assertRejects(() => e.evaluate("let = ="), SyntaxError);
  const no = await assertRejects(() => e.evaluate("await Promise.reject(new Error('no'))"), Error);
  assertEquals(no.message, "no");
});

Deno.test("shell eval: an input is complete when its brackets and templates are closed", () => {
  assertEquals(isComplete("client.name"), true);
  assertEquals(isComplete("foo({"), false);
  assertEquals(isComplete("const o = {\n  a: 1,\n}"), true);
  assertEquals(isComplete("`a ${b"), false);
  assertEquals(isComplete("`a\nb`"), true);
  assertEquals(isComplete("f('}')"), true);
  assertEquals(isComplete("/* open"), false);
  assertEquals(formatValue("plain"), "plain");
  assertEquals(formatValue({ a: 1 }), "{ a: 1 }");
});

Deno.test("shell: piped standard input prints results without prompts", async () => {
  const home = await tempHome();
  try {
    const r = await runCli(["shell", "s3"], { env: home.env, stdin: "client.name\n" });
    assertEquals(r, { code: 0, stdout: "s3\n", stderr: "" });
  } finally {
    await home.cleanup();
  }
});

Deno.test("shell: several lines, await, a declaration reused, an error: one ERROR line, exit 1", async () => {
  const home = await tempHome();
  try {
    const r = await runCli(["shell", "docker"], {
      env: home.env,
      stdin: [
        "const n = await Promise.resolve(20)",
        "n * 2 + 2",
        "missing()",
        "const o = {",
        "  tag: names.parseImageName('vsoch/hello').tag,",
        "}",
        "o.tag",
        "typeof sregistry.createApp",
        "catalog.images().length",
        "client.name",
      ].join("\n"),
    });
    assertEquals(r.stdout, "42\nlatest\nfunction\n0\ndocker\n");
    assertEquals(r.stderr, "ERROR line 3: ReferenceError: missing is not defined\n");
    assertEquals(r.code, 1);
    assert.doesNotMatch(r.stdout + r.stderr, /sregistry> /);
  } finally {
    await home.cleanup();
  }
});

Deno.test("shell: --json prints each result as JSON", async () => {
  const home = await tempHome();
  try {
    const r = await runCli(["--json", "shell", "s3"], {
      env: home.env,
      stdin: "({ name: client.name, n: [1] })\n'text'\n",
    });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout, `${JSON.stringify({ name: "s3", n: [1] }, null, 2)}\n"text"\n`);
  } finally {
    await home.cleanup();
  }
});

Deno.test("shell: an unknown client is a usage error", async () => {
  const home = await tempHome();
  try {
    const r = await runCli(["shell", "nope"], { env: home.env, stdin: "1\n" });
    assertEquals(r.code, 2);
    assert.match(r.stderr, /^ERROR Unknown client "nope": use one of .*s3/);
  } finally {
    await home.cleanup();
  }
});

const sh = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

Deno.test({
  name: "shell: on a terminal: prompt, results, Ctrl-C cancels the line, Ctrl-D exits 0",
  ...requirement("script (util-linux)", onPath("script")),
  async fn() {
    const home = await tempHome();
    const cmd = [Deno.execPath(), ...CLI_ARGS, "shell", "s3"].map(sh).join(" ");
    const child = new Deno.Command("script", {
      args: ["-qfec", cmd, "/dev/null"],
      clearEnv: true,
      env: { ...home.env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let out = "";
    const reading = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stdout) out += dec.decode(chunk, { stream: true });
    })();
    const writer = child.stdin.getWriter();
    const prompts = () => out.split("sregistry> ").length - 1;
    // Send a line once the prompt count says the previous one was answered.
    const send = async (text: string, promptsBefore: number) => {
      for (let i = 0; i < 600 && prompts() < promptsBefore; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(
        prompts(),
        promptsBefore,
        `no prompt ${promptsBefore} in ${JSON.stringify(out)}`,
      );
      await writer.write(new TextEncoder().encode(text));
    };
    try {
      await send("let n = 20\r", 1);
      await send("await Promise.resolve(n * 2 + 2)\r", 2);
      await send("half typed\x03", 3);
      await send("client.name\r", 4);
      await send("boom()\r", 5);
      await send("\x04", 6);
      const status = await child.status;
      await reading;
      const text = out.replaceAll("\r", "");
      assertEquals(status.code, 0, text);
      assert.match(text, /^sregistry shell: client s3, catalog .*sregistry\.db\n/);
      assert.match(text, /sregistry> await Promise\.resolve\(n \* 2 \+ 2\)\n42\n/);
      assert.match(text, /sregistry> half typed\^C\nsregistry> client\.name\ns3\n/);
      assert.match(text, /sregistry> boom\(\)\nERROR ReferenceError: boom is not defined\n/);
      assertEquals(prompts(), 6);
    } finally {
      await writer.close().catch(() => {});
      await home.cleanup();
    }
  },
});
