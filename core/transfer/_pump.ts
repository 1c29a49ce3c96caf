/**
 * Moves one response body to a file through the hashing writer, detecting stalls.
 * @module
 */

import { NetworkError } from "../errors.ts";
import type { HashingWriter } from "../hashing_writer.ts";

/**
 * The body is read into this landing buffer (a BYOB read, about a third cheaper than the default
 * reader's fresh chunks), written to the file at once and copied into the hasher's buffer. Reading
 * straight into the hasher's buffer would save the copy, but a read that fails or is cancelled takes
 * its buffer with it, and with it every byte not yet hashed: the file and the digest would part.
 */
export const LANDING = 1024 * 1024;

/**
 * Read at most `limit` bytes of a body into `writer`, calling `onBytes` as they arrive, and flush it:
 * whatever arrived is on disk when this returns or throws. A stream that yields nothing for
 * `stallMs` is cancelled and reported as a NetworkError, which callers retry.
 */
export async function pump(
  body: ReadableStream<Uint8Array>,
  stallMs: number,
  limit: number,
  writer: HashingWriter,
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<number> {
  let byob: ReadableStreamBYOBReader | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream (the NOVERIFY path's node:https body): chunks come from the default reader.
    reader = body.getReader();
  }
  let landing = new ArrayBuffer(byob ? LANDING : 0);
  let total = 0;
  const next = async (): Promise<Uint8Array | undefined> => {
    if (byob) {
      const view = new Uint8Array(landing, 0, Math.min(LANDING, limit - total));
      const { done, value } = await byob.read(view);
      if (value) landing = value.buffer as ArrayBuffer;
      return done ? undefined : value;
    }
    const { done, value } = await reader!.read();
    return done ? undefined : value.subarray(0, limit - total);
  };
  const cancel = () => (byob ?? reader)!.cancel().catch(() => {});
  let last = Date.now();
  let stalled = false;
  const timer = setInterval(() => {
    if (Date.now() - last > stallMs) {
      stalled = true;
      cancel();
    }
  }, Math.max(50, Math.min(1000, stallMs / 4)));
  signal?.addEventListener("abort", cancel, { once: true });
  try {
    while (total < limit) {
      const chunk = await next();
      if (!chunk) break;
      last = Date.now();
      total += chunk.length;
      await writer.write(chunk);
      onBytes(chunk.length);
      if (stalled) break;
    }
    await writer.flush();
    if (signal?.aborted) throw signal.reason;
    if (stalled) throw new NetworkError(`The transfer stalled: no data for ${stallMs / 1000} s`);
    return total;
  } catch (e) {
    // Keep what arrived: it is valid data and the resume starts after it.
    await writer.flush().catch(() => {});
    if (signal?.aborted) throw signal.reason;
    if (stalled) throw new NetworkError(`The transfer stalled: no data for ${stallMs / 1000} s`);
    throw e;
  } finally {
    clearInterval(timer);
    signal?.removeEventListener("abort", cancel);
    if (total >= limit) await cancel();
    (byob ?? reader)!.releaseLock();
  }
}
