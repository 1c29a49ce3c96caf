import { assert, assertEquals, assertIncludes, assertRejects } from "./_assert.ts";
import { main } from "../main.ts";
import { createPrompt, type PromptInput, textInput } from "../cli/prompt.ts";
import type { ClientFactory } from "../clients/types.ts";
import { ConfigError, InterruptedError } from "../core/errors.ts";
import { memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";
import { runCli, spawnCli, tempHome } from "./_cli.ts";

/** An input that never answers (a terminal nobody types on). */
function silentInput(terminal = true): PromptInput {
  return { read: () => new Promise(() => {}), isTerminal: () => terminal };
}

Deno.test("prompt: confirm reads y/yes/no from a line; the default on an empty line", async () => {
  const err = memorySink();
  const p = createPrompt({ stdin: textInput("y\nno\n\nYES\r\n"), stderr: err });
  assertEquals(await p.confirm("Delete a?"), true);
  assertEquals(await p.confirm("Delete b?"), false);
  assertEquals(await p.confirm("Delete c?", { default: true }), true);
  assertEquals(await p.confirm("Delete d?"), true);
  assertIncludes(err.text(), "Delete a? [y/N] \n");
  assertIncludes(err.text(), "Delete c? [Y/n] ");
});

Deno.test("prompt: without a terminal and without input, confirm answers the default", async () => {
  const err = memorySink();
  const p = createPrompt({ stdin: textInput(""), stderr: err });
  assertEquals(await p.confirm("Delete x?"), false);
  assertEquals(await p.confirm("Keep x?", { default: true }), true);
  assertEquals(err.text(), "Delete x? [y/N] \nKeep x? [Y/n] \n");
});

Deno.test("prompt: Ctrl-C or the abort signal ends the line and rejects as interrupted", async () => {
  const err = memorySink();
  await assertRejects(
    () => createPrompt({ stdin: textInput("\x03"), stderr: err }).confirm("Delete x?"),
    InterruptedError,
  );
  assertEquals(err.text(), "Delete x? [y/N] \n");
  const controller = new AbortController();
  const err2 = memorySink();
  const asked = createPrompt({ stdin: silentInput(), stderr: err2, signal: controller.signal })
    .confirm("Delete y?");
  setTimeout(() => controller.abort(), 10);
  await assertRejects(() => asked, InterruptedError);
  assertEquals(err2.text(), "Delete y? [y/N] \n");
});

Deno.test("prompt: readCode prints the URL and returns the pasted code (_auth_flow)", async () => {
  const err = memorySink();
  const p = createPrompt({ stdin: textInput("  abc123 \n", true), stderr: err });
  assertEquals(await p.readCode("https://login.example/x"), "abc123");
  assertIncludes(err.text(), "Please go to this URL and login: https://login.example/x\n");
  assertIncludes(err.text(), "Please enter the code you get after login here: ");
  await assertRejects(
    () => createPrompt({ stdin: textInput(""), stderr: memorySink() }).readCode("u"),
    ConfigError,
  );
});

/** A client whose delete records what it was asked. */
function deletingFactory(calls: { image: string; force?: boolean }[]): ClientFactory {
  return {
    scheme: "acme",
    description: "test",
    settings: [],
    create: () => ({
      name: "acme",
      delete: (image, options) => {
        calls.push({ image, force: options.force });
        return Promise.resolve();
      },
    }),
  };
}

Deno.test("delete in-process: asks, no is exit 0 'Nothing deleted', yes and --force delete", async () => {
  const home = await tempHome();
  try {
    const calls: { image: string; force?: boolean }[] = [];
    const factories = [deletingFactory(calls)];
    const run = async (args: string[], stdin: PromptInput, signal?: AbortSignal) => {
      const stdout = memorySink();
      const stderr = memorySink();
      const code = await main(args, {
        env: envFrom(home.env),
        factories,
        stdout,
        stderr,
        stdin,
        signal,
      });
      return { code, stdout: stdout.text(), stderr: stderr.text() };
    };
    const no = await run(["delete", "acme://demo/x:1"], textInput("n\n"));
    assertEquals(no.code, 0, no.stderr);
    assertIncludes(no.stderr, "Delete acme://demo/x:1? [y/N]");
    assertIncludes(no.stderr, "Nothing deleted");
    assertEquals(calls.length, 0);
    const none = await run(["delete", "acme://demo/x:1"], textInput(""));
    assertEquals(none.code, 0);
    assertIncludes(none.stderr, "Nothing deleted");
    assertEquals(calls.length, 0);
    const yes = await run(["--json", "delete", "acme://demo/x:1"], textInput("y\n"));
    assertEquals(yes.code, 0, yes.stderr);
    assertEquals(JSON.parse(yes.stdout).deleted, ["acme://demo/x:1"]);
    assertEquals(calls, [{ image: "acme://demo/x:1", force: false }]);
    const forced = await run(["delete", "--force", "acme://demo/x:2"], silentInput());
    assertEquals(forced.code, 0, forced.stderr);
    assert(!forced.stderr.includes("[y/N]"), "--force does not ask");
    assertEquals(calls[1], { image: "acme://demo/x:2", force: true });
    // Ctrl-C at the question: exit 130, the error on a line of its own, nothing deleted.
    const controller = new AbortController();
    setTimeout(() => controller.abort(new InterruptedError("Interrupted")), 20);
    const cut = await run(["delete", "acme://demo/x:3"], silentInput(), controller.signal);
    assertEquals(cut.code, 130, cut.stderr);
    assertIncludes(cut.stderr, "Delete acme://demo/x:3? [y/N] \nERROR Interrupted");
    assertEquals(calls.length, 2);
  } finally {
    await home.cleanup();
  }
});

Deno.test("delete through the CLI: piped answers, no stdin, and a SIGINT at the prompt", async () => {
  const home = await tempHome();
  try {
    // The oras client reaches the network only after the question, so "no" needs no registry.
    const uri = "oras://127.0.0.1:9/demo/x:1";
    const no = await runCli(["delete", uri], { env: home.env, stdin: "no\n" });
    assertEquals(no.code, 0, no.stderr);
    assertIncludes(no.stderr, `Delete ${uri}? [y/N] \n`);
    assertIncludes(no.stderr, "Nothing deleted");
    const closed = await runCli(["delete", uri], { env: home.env });
    assertEquals(closed.code, 0, closed.stderr);
    assertIncludes(closed.stderr, "Nothing deleted");
    // SIGINT while the question waits on an open stdin.
    const child = spawnCli(["delete", uri], { env: home.env, stdin: "" });
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let err = "";
    while (!err.includes("[y/N]")) {
      const { value, done } = await reader.read();
      if (done) break;
      err += value;
    }
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      err += value;
    }
    const status = await child.status;
    await child.stdin.close().catch(() => {});
    await child.stdout.cancel();
    assertEquals(status.code, 130, err);
    assertIncludes(err, "[y/N] \nERROR Interrupted");
  } finally {
    await home.cleanup();
  }
});
