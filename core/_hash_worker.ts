/**
 * The sha256 worker behind {@link createHasher}: hashing on a second thread lets a download read and
 * write while the previous buffer is hashed. Buffers travel as transferables, so nothing is copied.
 *
 * Messages in: `{ op: "update", buf, len }`, `{ op: "reset" }`, `{ op: "digest" }`.
 * Messages out: `{ op: "ready" }` once, `{ op: "done", buf }` per update (the buffer comes back),
 * `{ op: "digest", hex }`.
 * @module
 */

import { createHash, type Hash } from "node:crypto";

interface WorkerScope {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
let hash: Hash = createHash("sha256");

scope.onmessage = (e: MessageEvent) => {
  const m = e.data as { op: string; buf?: ArrayBuffer; len?: number };
  if (m.op === "update" && m.buf) {
    hash.update(new Uint8Array(m.buf, 0, m.len));
    scope.postMessage({ op: "done", buf: m.buf }, [m.buf]);
  } else if (m.op === "reset") {
    hash = createHash("sha256");
  } else if (m.op === "digest") {
    scope.postMessage({ op: "digest", hex: hash.digest("hex") });
    hash = createHash("sha256");
  }
};
scope.postMessage({ op: "ready" });
