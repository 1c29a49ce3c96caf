/**
 * `sregistry shell [scheme]`: an interactive prompt for client authors, as the original's Python
 * shell was. In scope: `client` (the chosen client), `ctx` (its context), `factory`, `catalog` (the
 * local catalog, undefined when it is disabled), `names` (core/names.ts), `sregistry` (the library,
 * mod.ts) and `app`. Inputs are JavaScript with top-level await (see _shell_eval.ts for what of
 * TypeScript is accepted).
 *
 * On a terminal the line is read in raw mode, so that Ctrl-C cancels the line instead of reaching
 * the CLI's interrupt handler (which would stop the session's client for good); Ctrl-D on an empty
 * line leaves. Evaluation runs in the terminal's normal mode, where Ctrl-C interrupts as in any
 * command. With `--json` results print as JSON. Standard input that is not a terminal is read line by line without prompts; a failing
 * input prints one ERROR line, the others still run, and the exit code is then 1.
 * @module
 */

import type { App } from "../app.ts";
import { SregistryError } from "../../core/errors.ts";
import * as names from "../../core/names.ts";
import * as sregistry from "../../mod.ts";
import { createEvaluator, type Evaluator, isComplete } from "./_shell_eval.ts";

/** The prompt on a terminal. */
export const PROMPT = "sregistry> ";
const CONTINUATION = "......... ";

/** The one-line text of a thrown value. */
export function describeError(error: unknown): string {
  if (error instanceof SregistryError) return error.message;
  if (error instanceof Error) return `${error.name}: ${error.message}`.replace(/\s*\n\s*/g, " ");
  return `Uncaught ${Deno.inspect(error)}`;
}

/** How a result prints: strings as they are, everything else through Deno.inspect. */
export function formatValue(value: unknown): string {
  return typeof value === "string" ? value : Deno.inspect(value, { depth: 4, colors: false });
}

/** Open the shell with the client for `scheme` (else the default client selection). */
export async function shellCommand(app: App, scheme: string | undefined): Promise<void> {
  // `sregistry shell dropbox` means `dropbox://`, as in the original.
  const uri = scheme === undefined ? undefined : scheme.includes("://") ? scheme : `${scheme}://`;
  const { client, ctx, factory } = app.getClient(uri);
  const catalog = app.maybeCatalog();
  const evaluator = createEvaluator({ client, ctx, factory, catalog, names, sregistry, app });
  if (Deno.stdin.isTerminal()) {
    app.log.sink.write(
      `sregistry shell: client ${client.name}, catalog ${
        catalog ? app.settings.databasePath : "disabled"
      }\nIn scope: client, ctx, factory, catalog, names, sregistry, app. ` +
        "JavaScript with top-level await; Ctrl-C cancels a line, Ctrl-D leaves.\n",
    );
    await terminalSession(app, evaluator);
  } else {
    await pipedSession(app, evaluator);
  }
}

async function run(app: App, evaluator: Evaluator, code: string): Promise<void> {
  const { value, hasValue } = await evaluator.evaluate(code);
  if (!hasValue || value === undefined) return;
  if (app.json) app.out.json(value);
  else app.out.line(formatValue(value));
}

/** Standard input that is not a terminal: no prompts, exit 1 when any input failed. */
async function pipedSession(app: App, evaluator: Evaluator): Promise<void> {
  // The last failure is held back and thrown at the end, so that each failure prints exactly one
  // ERROR line and the CLI still exits 1.
  let held: string | undefined;
  const fail = (line: number, error: unknown) => {
    if (held !== undefined) app.log.error(held);
    held = app.log.redact(`line ${line}: ${describeError(error)}`);
  };
  let input = "";
  let first = 0;
  let lineNo = 0;
  for await (const line of lines(Deno.stdin.readable)) {
    lineNo++;
    if (input === "") first = lineNo;
    input += input === "" ? line : `\n${line}`;
    if (!isComplete(input)) continue;
    const code = input;
    input = "";
    if (code.trim() === "") continue;
    try {
      await run(app, evaluator, code);
    } catch (error) {
      fail(first, error);
    }
  }
  if (input.trim() !== "") {
    try {
      await run(app, evaluator, input);
    } catch (error) {
      fail(first, error);
    }
  }
  if (held !== undefined) throw new SregistryError(held);
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, nl).replace(/\r$/, "");
      rest = rest.slice(nl + 1);
    }
  }
  rest += decoder.decode();
  if (rest !== "") yield rest;
}

/** A terminal: prompts, a history, errors that do not end the session. */
async function terminalSession(app: App, evaluator: Evaluator): Promise<void> {
  const reader = rawLineReader(app.log.sink.write.bind(app.log.sink));
  let input = "";
  while (true) {
    const line = await reader.read(input === "" ? PROMPT : CONTINUATION);
    if (line === null) {
      if (input === "") return;
      input = "";
      continue;
    }
    if (line === CANCELLED) {
      input = "";
      continue;
    }
    input += input === "" ? line : `\n${line}`;
    if (!isComplete(input)) continue;
    const code = input;
    input = "";
    if (code.trim() === "") continue;
    reader.remember(code);
    try {
      await run(app, evaluator, code);
    } catch (error) {
      app.log.error(describeError(error));
    }
  }
}

const CANCELLED = Symbol("cancelled");

/**
 * Reads lines from a terminal in raw mode: echo, Backspace, Ctrl-U (clear), Up/Down (history),
 * Ctrl-C (cancel the line), Ctrl-D on an empty line (end). The terminal is back in its normal mode
 * whenever no line is being read.
 */
function rawLineReader(write: (text: string) => void) {
  const history: string[] = [];
  const decoder = new TextDecoder();
  let pending = "";
  const buf = new Uint8Array(1024);
  return {
    remember(entry: string) {
      if (history[history.length - 1] !== entry) history.push(entry);
    },
    async read(prompt: string): Promise<string | null | typeof CANCELLED> {
      let line = "";
      let back = history.length;
      const redraw = () => write(`\r\x1b[K${prompt}${line}`);
      write(prompt);
      Deno.stdin.setRaw(true);
      try {
        while (true) {
          if (pending === "") {
            const n = await Deno.stdin.read(buf);
            if (n === null) return null;
            pending = decoder.decode(buf.subarray(0, n), { stream: true });
            continue;
          }
          const c = pending[0];
          pending = pending.slice(1);
          if (c === "\r" || c === "\n") {
            // A pasted CRLF is one line end.
            if (c === "\r" && pending[0] === "\n") pending = pending.slice(1);
            write("\r\n");
            return line;
          } else if (c === "\x03") {
            write("^C\r\n");
            return CANCELLED;
          } else if (c === "\x04") {
            if (line === "") {
              write("\r\n");
              return null;
            }
          } else if (c === "\x7f" || c === "\b") {
            if (line !== "") {
              line = [...line].slice(0, -1).join("");
              write("\b \b");
            }
          } else if (c === "\x15") {
            line = "";
            redraw();
          } else if (c === "\x1b") {
            // An escape sequence: ESC [ params final, or ESC O final. Up and Down walk the history.
            const m = pending.match(/^(\[[0-9;]*[@-~]|O[@-~])/);
            const seq = m ? m[0] : "";
            pending = pending.slice(seq.length);
            if ((seq === "[A" || seq === "OA") && back > 0) line = history[--back];
            else if ((seq === "[B" || seq === "OB") && back < history.length) {
              line = ++back < history.length ? history[back] : "";
            } else continue;
            redraw();
          } else if (c === "\t") {
            line += "  ";
            write("  ");
          } else if (c >= " ") {
            line += c;
            write(c);
          }
        }
      } finally {
        Deno.stdin.setRaw(false);
      }
    },
  };
}
