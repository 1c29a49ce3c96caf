/**
 * One retry budget per download, shared by every attempt and every ranged part. A per-attempt
 * counter that resets whenever some bytes arrive never runs out against a server that sends a
 * little and then closes or stalls, and cannot resume: each fresh start "made progress" again
 * (1,598 requests in 607 s on one URL). Here only new ground counts: an attempt that moves the
 * download past its furthest point by at least {@link PROGRESS_ALLOWANCE} bytes earns one more
 * attempt; any other failure spends one.
 * @module
 */

/** Bytes of new ground an attempt must cover to earn one more attempt (4 MiB). */
export const PROGRESS_ALLOWANCE = 4 * 1024 * 1024;

/** See {@link retryBudget}. */
export interface RetryBudget {
  /** Requests made for the body so far (the first one included). */
  readonly attempts: number;
  /** Failures that spent the budget; the backoff grows with them. */
  readonly spent: number;
  /** A request for the body is made. */
  attempt(): void;
  /**
   * An attempt failed after `gained` bytes of new ground (past the furthest point reached before
   * it). Returns whether another attempt is allowed.
   */
  failed(gained: number): boolean;
}

/** A budget of `retries` failures, plus one for each attempt that gained `allowance` bytes. */
export function retryBudget(retries: number, allowance = PROGRESS_ALLOWANCE): RetryBudget {
  let attempts = 0, spent = 0;
  return {
    get attempts() {
      return attempts;
    },
    get spent() {
      return spent;
    },
    attempt() {
      attempts++;
    },
    failed(gained) {
      if (gained < Math.max(1, allowance)) spent++;
      return spent <= retries;
    },
  };
}
