/**
 * A pause that ends early, rejecting with the signal's reason, when the signal aborts. Its own
 * module so that core/poll (loaded by every command) need not load the http stack for it.
 * @module
 */

/** Sleep `ms`, or reject with `signal.reason` as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
