/**
 * Waiting for a remote job (a cloud build, a Globus transfer): call `check` until it says done, with
 * a growing pause between calls, a time limit and Ctrl-C. Every call reports a {@link PollEvent}, so
 * the CLI can draw a spinner with the job's status (core draws nothing).
 * @module
 */

import { InterruptedError, NetworkError } from "./errors.ts";
import { sleep } from "./sleep.ts";

/** What one check found. */
export interface PollCheck<T> {
  /** The job is over (successfully; a failed job should throw from `check`). */
  done: boolean;
  /** The result, when done. */
  value?: T;
  /** The job's status in a few words ("QUEUED", "42% copied"). */
  status?: string;
}

/** One step of a poll, for a spinner or a status line. */
export interface PollEvent {
  /** What is being waited for. */
  label: string;
  /** The last status reported by `check`. */
  status?: string;
  /** Checks made so far. */
  attempt: number;
  /** Milliseconds since the poll started. */
  elapsed: number;
  /** The poll ended (done, failed, timed out or interrupted). */
  done: boolean;
}

/** Options of {@link poll}. */
export interface PollOptions<T> {
  /** Ask the remote once. */
  check: () => Promise<PollCheck<T>>;
  /** What is being waited for ("build of demo/hello"). */
  label: string;
  /** First pause between checks in ms (default 2000). */
  interval?: number;
  /** Longest pause in ms (default 30000); each pause is 1.5 times the previous. */
  maxInterval?: number;
  /** Give up after this many ms (default 3600000, one hour). */
  timeout?: number;
  /** Stops the wait (Ctrl-C). */
  signal?: AbortSignal;
  /** Receives every step (the CLI's spinner). */
  onEvent?: (event: PollEvent) => void;
  /** Clock in ms (tests inject one). */
  now?: () => number;
  /** Pause (tests inject one). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** A poll with the caller's defaults applied (a client's `ctx.poll`). */
export type Poll = <T>(options: PollOptions<T>) => Promise<T | undefined>;

function seconds(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;
}

/**
 * Call `check` until done and return its value.
 * @throws {NetworkError} when `timeout` passes first, naming the job, the time and its last status.
 * @throws {InterruptedError} when `signal` aborts.
 */
export async function poll<T>(options: PollOptions<T>): Promise<T | undefined> {
  const now = options.now ?? (() => Date.now());
  const wait = options.sleep ?? sleep;
  const maxInterval = options.maxInterval ?? 30_000;
  const timeout = options.timeout ?? 3_600_000;
  let pause = options.interval ?? 2000;
  const start = now();
  let attempt = 0;
  let status: string | undefined;
  let ended = false;
  const emit = (done: boolean) => {
    if (ended) return;
    ended = done;
    options.onEvent?.({ label: options.label, status, attempt, elapsed: now() - start, done });
  };
  try {
    for (;;) {
      if (options.signal?.aborted) throw new InterruptedError("Interrupted");
      attempt++;
      const r = await options.check();
      if (r.status !== undefined) status = r.status;
      if (r.done) {
        emit(true);
        return r.value;
      }
      emit(false);
      const left = timeout - (now() - start);
      if (left <= 0) {
        throw new NetworkError(
          `Gave up waiting for ${options.label} after ${seconds(timeout)}${
            status ? ` (last status: ${status})` : ""
          }; it may still finish remotely, check it later`,
        );
      }
      try {
        await wait(Math.min(pause, left), options.signal);
      } catch {
        throw new InterruptedError("Interrupted");
      }
      pause = Math.min(pause * 1.5, maxInterval);
    }
  } finally {
    // A failed check or a timeout ends the spinner too.
    emit(true);
  }
}
