/**
 * Streaming sha256 with a pool of buffers, on a worker thread for large inputs.
 *
 * sha256 costs about 0.8 s per GiB here, as much as reading the body and writing the file together.
 * On one thread a 1 GiB pull paid all three in a row; with the hash on a worker the writes overlap
 * it, which took a 1 GiB pull from 2.2 s to 1.3 s on two cores (see docs/transfers.md). Buffers are
 * handed over as transferables, so the bytes are not copied. Small inputs hash inline: a worker costs
 * tens of milliseconds to start.
 *
 * ```ts
 * using hasher = await createHasher({ sizeHint: size });
 * const buf = await hasher.acquire();
 * const n = fillSomehow(buf);
 * hasher.submit(buf.subarray(0, n)); // buf now belongs to the hasher
 * const digest = await hasher.digest(); // "sha256:<hex>"
 * ```
 * @module
 */

import { createHash } from "node:crypto";

/** Size of each pooled buffer: large writes and hash updates keep the per-call overhead low. */
export const HASH_BUFFER = 4 * 1024 * 1024;
/** Inputs at least this large are hashed on a worker thread. */
export const THREAD_THRESHOLD = 32 * 1024 * 1024;
/** Buffers per threaded hasher: enough for the reader to stay ahead of the hash. */
const POOL = 4;
/** A worker that has not said it is ready by then is given up for inline hashing. */
const READY_TIMEOUT_MS = 10_000;

/** A streaming sha256 whose input travels in buffers lent by the hasher. */
export interface Hasher extends Disposable {
  /** Whether the hashing runs on a worker thread. */
  readonly threaded: boolean;
  /** A buffer of {@link HASH_BUFFER} bytes to fill; waits while every buffer is being hashed. */
  acquire(): Promise<Uint8Array>;
  /**
   * Hash `bytes`, a view from offset 0 of a buffer from {@link Hasher.acquire}. The buffer goes back
   * to the pool once hashed: the caller must not touch it again (on a worker it is detached at once).
   */
  submit(bytes: Uint8Array): void;
  /** Forget everything submitted so far (a download that starts over). */
  reset(): void;
  /** `sha256:<hex>` of everything submitted since creation or the last reset; ends the hasher. */
  digest(): Promise<string>;
}

/** Options of {@link createHasher}. */
export interface HasherOptions {
  /** Bytes expected in total: a worker is used from {@link THREAD_THRESHOLD}. */
  sizeHint?: number;
  /** Force (true) or forbid (false) the worker, whatever the size. */
  threaded?: boolean;
  /** Receives one line saying where a large input is hashed (and why not on a worker). */
  debug?: (message: string) => void;
}

/**
 * A hasher on a worker thread for large inputs, inline otherwise. A worker that cannot start (an
 * embedder without Worker support, a missing module in a custom build) falls back to inline hashing.
 */
export async function createHasher(options: HasherOptions = {}): Promise<Hasher> {
  const threaded = options.threaded ??
    (options.sizeHint !== undefined && options.sizeHint >= THREAD_THRESHOLD);
  if (threaded) {
    try {
      const hasher = await workerHasher();
      options.debug?.("Hashing on a worker thread");
      return hasher;
    } catch (e) {
      options.debug?.(`Hashing on the main thread: ${(e as Error).message}`);
    }
  }
  return inlineHasher();
}

function checkLent(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset !== 0 || bytes.buffer.byteLength !== HASH_BUFFER) {
    throw new TypeError("Hasher.submit takes a view from offset 0 of a buffer from acquire()");
  }
  return bytes.buffer as ArrayBuffer;
}

function inlineHasher(): Hasher {
  let hash = createHash("sha256");
  const free: ArrayBuffer[] = [];
  let ended = false;
  return {
    threaded: false,
    acquire: () => Promise.resolve(new Uint8Array(free.pop() ?? new ArrayBuffer(HASH_BUFFER))),
    submit(bytes) {
      const buf = checkLent(bytes);
      hash.update(bytes);
      free.push(buf);
    },
    reset() {
      hash = createHash("sha256");
    },
    digest() {
      if (ended) return Promise.reject(new Error("The hasher has already given its digest"));
      ended = true;
      return Promise.resolve(`sha256:${hash.digest("hex")}`);
    },
    [Symbol.dispose]() {
      free.length = 0;
    },
  };
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

async function workerHasher(): Promise<Hasher> {
  const worker = new Worker(new URL("./_hash_worker.ts", import.meta.url), { type: "module" });
  const free: ArrayBuffer[] = [];
  const waiters: Waiter<Uint8Array>[] = [];
  let allocated = 0;
  let failure: Error | undefined;
  let ended = false;
  let digestWaiter: Waiter<string> | undefined;
  const ready = Promise.withResolvers<void>();
  const stop = (error: Error) => {
    failure ??= error;
    worker.terminate();
    ready.reject(failure);
    for (const w of waiters.splice(0)) w.reject(failure);
    digestWaiter?.reject(failure);
    digestWaiter = undefined;
  };
  worker.onmessage = (e: MessageEvent) => {
    const m = e.data as { op: string; buf?: ArrayBuffer; hex?: string };
    if (m.op === "done" && m.buf) {
      const w = waiters.shift();
      if (w) w.resolve(new Uint8Array(m.buf));
      else free.push(m.buf);
    } else if (m.op === "digest" && m.hex) {
      digestWaiter?.resolve(`sha256:${m.hex}`);
      digestWaiter = undefined;
    } else if (m.op === "ready") {
      ready.resolve();
    }
  };
  worker.onerror = (e: ErrorEvent) => {
    // Handled here: an unhandled worker error would end the whole process.
    e.preventDefault();
    stop(new Error(`The hash worker failed: ${e.message}`));
  };
  worker.onmessageerror = () => stop(new Error("The hash worker sent an unreadable message"));
  const timer = setTimeout(
    () => stop(new Error(`The hash worker did not start within ${READY_TIMEOUT_MS / 1000} s`)),
    READY_TIMEOUT_MS,
  );
  try {
    await ready.promise;
  } finally {
    clearTimeout(timer);
  }
  const alive = () => {
    if (failure) throw failure;
    if (ended) throw new Error("The hasher has already given its digest");
  };
  return {
    threaded: true,
    acquire() {
      alive();
      const buf = free.pop();
      if (buf) return Promise.resolve(new Uint8Array(buf));
      if (allocated < POOL) {
        allocated++;
        return Promise.resolve(new Uint8Array(HASH_BUFFER));
      }
      const w = Promise.withResolvers<Uint8Array>();
      waiters.push(w);
      return w.promise;
    },
    submit(bytes) {
      alive();
      const buf = checkLent(bytes);
      worker.postMessage({ op: "update", buf, len: bytes.length }, [buf]);
    },
    reset() {
      alive();
      worker.postMessage({ op: "reset" });
    },
    async digest() {
      alive();
      ended = true;
      const w = Promise.withResolvers<string>();
      digestWaiter = w;
      worker.postMessage({ op: "digest" });
      try {
        return await w.promise;
      } finally {
        worker.terminate();
      }
    },
    [Symbol.dispose]() {
      if (!failure) stop(new Error("The hasher was closed"));
    },
  };
}

/**
 * Hash the next `length` bytes of an open file, from its current position, into `hasher`, reading
 * the next buffer while the worker hashes the previous one. Returns the bytes hashed: fewer than
 * `length` when the file ends first.
 */
export async function hashFrom(
  hasher: Hasher,
  file: Deno.FsFile,
  length = Infinity,
): Promise<number> {
  let total = 0;
  while (total < length) {
    const buf = await hasher.acquire();
    const want = Math.min(buf.length, length - total);
    let got = 0;
    while (got < want) {
      // Sync reads: Deno's async file reads cost several times more per byte here.
      const n = file.readSync(buf.subarray(got, want));
      if (n === null) break;
      got += n;
    }
    hasher.submit(buf.subarray(0, got));
    total += got;
    if (got < want) break;
  }
  return total;
}

/** Hash the first `limit` bytes of the file at `path` (see {@link hashFrom}). */
export async function hashFileInto(
  hasher: Hasher,
  path: string,
  limit = Infinity,
): Promise<number> {
  using f = await Deno.open(path, { read: true });
  return await hashFrom(hasher, f, limit);
}

/** Streaming sha256 of a file: `{ digest: "sha256:<hex>", size }`. */
export async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const { size: hint } = await Deno.stat(path);
  using hasher = await createHasher({ sizeHint: hint });
  const size = await hashFileInto(hasher, path);
  return { digest: await hasher.digest(), size };
}

/**
 * The hex digest of a file under another algorithm than sha256 (`md5`: what Singularity Hub and
 * Registry Server publish as an image's version), streamed in 1 MiB reads on this thread.
 */
export async function hexDigestOfFile(path: string, algorithm: string): Promise<string> {
  const h = createHash(algorithm);
  using f = await Deno.open(path);
  const buf = new Uint8Array(1024 * 1024);
  for (;;) {
    const n = await f.read(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
  }
  return h.digest("hex");
}
