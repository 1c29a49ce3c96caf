/**
 * Bounded concurrency for every client that moves several things at once (layers, ranged parts,
 * multipart uploads). Fail-fast: the first error aborts the signal handed to the other tasks and no
 * new task starts, so a broken transfer does not keep the network busy.
 * @module
 */

/**
 * Run `fn` over `items` with at most `concurrency` calls in flight.
 *
 * Results come back in input order. On the first error the remaining items are not started, the
 * `signal` passed to running tasks is aborted with that error, and the error is rethrown once every
 * running task has settled (so no task outlives the call).
 *
 * @param items What to process.
 * @param concurrency Maximum parallel calls (values below 1 count as 1).
 * @param fn The work; receives the item, its index and a signal aborted on failure or cancellation.
 * @param signal Cancels the whole pool.
 */
export async function pool<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number, signal: AbortSignal) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  if (signal?.aborted) throw signal.reason;
  signal?.addEventListener("abort", onAbort, { once: true });
  let next = 0;
  let failure: { error: unknown } | undefined;
  const width = Math.max(1, Math.min(Math.floor(concurrency) || 1, items.length));
  async function worker() {
    while (!failure && !controller.signal.aborted && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i], i, controller.signal);
      } catch (error) {
        if (!failure) {
          failure = { error };
          controller.abort(error);
        }
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: width }, worker));
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  if (failure) throw failure.error;
  if (controller.signal.aborted) throw controller.signal.reason;
  return results;
}
