/**
 * Questions to the user on stderr, answers from an injected stdin: yes/no confirmations (`delete`)
 * and pasted login codes (OAuth flows, the original's `_auth_flow`). Without a terminal a confirmation
 * takes its default unless stdin holds a line, so scripts never hang on a closed input. Ctrl-C (or
 * the command's abort signal) at a prompt ends the line and the command with exit 130.
 * @module
 */

import type { Prompt } from "../clients/types.ts";
import { ConfigError, InterruptedError } from "../core/errors.ts";
import type { TextSink } from "../core/log.ts";

/** Where answers come from: `Deno.stdin`, or a test's bytes. */
export interface PromptInput {
  /** Read some bytes into `p`; null at end of input. */
  read(p: Uint8Array): Promise<number | null>;
  /** Whether it is an interactive terminal. */
  isTerminal(): boolean;
}

/** A {@link PromptInput} over fixed text (tests, `--yes`-style wrappers). */
export function textInput(text: string, terminal = false): PromptInput {
  let bytes = new TextEncoder().encode(text);
  return {
    read(p) {
      if (bytes.length === 0) return Promise.resolve(null);
      const n = Math.min(p.length, bytes.length);
      p.set(bytes.subarray(0, n));
      bytes = bytes.subarray(n);
      return Promise.resolve(n);
    },
    isTerminal: () => terminal,
  };
}

/** Options of {@link createPrompt}. */
export interface PromptOptions {
  /** Answers (default Deno.stdin). */
  stdin?: PromptInput;
  /** Where questions go (stderr). */
  stderr: TextSink;
  /** Aborted on Ctrl-C. */
  signal?: AbortSignal;
}

const CTRL_C = "\x03";

/** Build the prompt a command's clients share. */
export function createPrompt(options: PromptOptions): Prompt {
  const stdin = options.stdin ?? Deno.stdin;
  const { stderr, signal } = options;
  const decoder = new TextDecoder();
  let buffered = "";
  let ended = false;
  let pending: Promise<number | null> | undefined;
  const chunk = new Uint8Array(4096);

  /** One line without its newline, or undefined at end of input. Ctrl-C throws. */
  async function readLine(): Promise<string | undefined> {
    for (;;) {
      const nl = buffered.search(/\r?\n/);
      const cc = buffered.indexOf(CTRL_C);
      const cut = cc >= 0 && (nl < 0 || cc < nl) ? cc : nl;
      if (cut >= 0) {
        if (buffered[cut] === CTRL_C) throw interrupted();
        const line = buffered.slice(0, cut);
        buffered = buffered.slice(cut + (buffered[cut] === "\r" ? 2 : 1));
        return line;
      }
      if (ended) {
        if (buffered === "") return undefined;
        const line = buffered;
        buffered = "";
        return line;
      }
      // One read stays outstanding across an abort, so the next prompt does not lose its bytes.
      pending ??= stdin.read(chunk);
      const n = await raceAbort(pending);
      pending = undefined;
      if (n === null) ended = true;
      else buffered += decoder.decode(chunk.subarray(0, n), { stream: true });
    }
  }

  function interrupted(): InterruptedError {
    // The user's line was left open at the question: end it so the error starts on its own.
    stderr.write("\n");
    return new InterruptedError("Interrupted");
  }

  function raceAbort<T>(p: Promise<T>): Promise<T> {
    if (!signal) return p;
    if (signal.aborted) return Promise.reject(interrupted());
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(interrupted());
      signal.addEventListener("abort", onAbort, { once: true });
      p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  return {
    async confirm(question, opts = {}) {
      const dflt = opts.default ?? false;
      const terminal = stdin.isTerminal();
      stderr.write(`${question} ${dflt ? "[Y/n]" : "[y/N]"} `);
      const line = await readLine();
      // A terminal echoes the user's Enter; piped or missing input does not.
      if (!terminal || line === undefined) stderr.write("\n");
      const answer = (line ?? "").trim().toLowerCase();
      if (answer === "") return dflt;
      return answer === "y" || answer === "yes";
    },
    async readCode(url, message) {
      stderr.write(`${message ?? "Please go to this URL and login:"} ${url}\n`);
      stderr.write("Please enter the code you get after login here: ");
      const line = await readLine();
      if (!stdin.isTerminal() || line === undefined) stderr.write("\n");
      const code = (line ?? "").trim();
      if (code === "") {
        throw new ConfigError(
          "No login code was entered; run the command again on a terminal and paste the code",
        );
      }
      return code;
    },
  };
}
