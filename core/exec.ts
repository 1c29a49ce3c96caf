/**
 * The one way sregistry runs other programs (singularity, apptainer, docker credential helpers):
 * `Deno.Command` with captured output, nothing inherited, optional stdin text, time limit and abort
 * signal. A program that is not installed rejects with `Deno.errors.NotFound`, so callers can try the
 * next tool.
 * @module
 */

import { joinPath as join } from "./path.ts";

/** Options of one {@link Runner} call. */
export interface ExecOptions {
  /** Text written to the program's stdin (default: no stdin). */
  stdin?: string;
  /** Kill the program after this many ms (default: no limit; a SIF build can take long). */
  timeout?: number;
  /** Kill the program when aborted (Ctrl-C). */
  signal?: AbortSignal;
  /** Working directory. */
  cwd?: string;
}

/** The outcome of a finished program. */
export interface ExecResult {
  /** Exit code. */
  code: number;
  /** Whether the exit code was 0. */
  success: boolean;
  /** Standard output, decoded as UTF-8. */
  stdout: string;
  /** Standard error, decoded as UTF-8. */
  stderr: string;
}

/** Runs a program to completion. */
export type Runner = (
  command: string,
  args: string[],
  options?: ExecOptions,
) => Promise<ExecResult>;

function combine(a?: AbortSignal, b?: AbortSignal): AbortSignal | undefined {
  if (a && b) return AbortSignal.any([a, b]);
  return a ?? b;
}

/** The default {@link Runner}. */
export const run: Runner = async (command, args, options = {}) => {
  const signal = combine(
    options.signal,
    options.timeout === undefined ? undefined : AbortSignal.timeout(options.timeout),
  );
  // Deno kills a child when its signal fires, not when it was aborted before the start.
  if (signal?.aborted) throw signal.reason;
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal,
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    try {
      await w.write(new TextEncoder().encode(options.stdin));
      await w.close();
    } catch {
      // The program exited without reading its input; its exit code tells the rest.
    }
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    success: out.success,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
};

/** The first of `names` that is an executable file in one of `path`'s folders (`:`-separated). */
export function which(names: string | string[], path: string | undefined): string | undefined {
  for (const name of typeof names === "string" ? [names] : names) {
    for (const dir of (path ?? "").split(":")) {
      if (!dir) continue;
      try {
        const st = Deno.statSync(join(dir, name));
        if (st.isFile && ((st.mode ?? 0o111) & 0o111)) return name;
      } catch {
        // not in this folder
      }
    }
  }
  return undefined;
}

/** A process runner bound to one command's PATH and abort signal (a client's `ctx.exec`). */
export interface Exec {
  /** Run a program; aborted with the command unless `options.signal` says otherwise. */
  run: Runner;
  /** The first of `names` found on PATH. */
  which(names: string | string[]): string | undefined;
}

/** Build an {@link Exec}. */
export function createExec(
  options: { path?: string; signal?: AbortSignal; runner?: Runner } = {},
): Exec {
  const runner = options.runner ?? run;
  return {
    run: (command, args, o = {}) =>
      runner(command, args, { ...o, signal: combine(o.signal, options.signal) }),
    which: (names) => which(names, options.path),
  };
}
