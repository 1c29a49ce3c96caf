import assert from "./_assert.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { createHashingWriter, PIECE } from "../core/hashing_writer.ts";
import {
  createHasher,
  HASH_BUFFER,
  type Hasher,
  hashFile,
  hashFileInto,
  THREAD_THRESHOLD,
} from "../core/hasher.ts";
import { makeData } from "./servers/fault_server.ts";

function sha(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Feed `data` through the hasher's lent buffers in pieces of `piece` bytes. */
async function feed(hasher: Hasher, data: Uint8Array, piece: number) {
  for (let i = 0; i < data.length; i += piece) {
    const buf = await hasher.acquire();
    assert.equal(buf.length, HASH_BUFFER);
    const part = data.subarray(i, Math.min(data.length, i + piece));
    buf.set(part);
    hasher.submit(buf.subarray(0, part.length));
  }
}

for (const threaded of [false, true]) {
  Deno.test(`hasher (${threaded ? "worker" : "inline"}) matches node:crypto, also after reset`, async () => {
    const data = makeData(3 * HASH_BUFFER + 12345, 3);
    using hasher = await createHasher({ threaded });
    assert.equal(hasher.threaded, threaded);
    await feed(hasher, makeData(HASH_BUFFER + 7, 9), HASH_BUFFER);
    hasher.reset();
    await feed(hasher, data, HASH_BUFFER - 1000);
    assert.equal(await hasher.digest(), sha(data));
    await assert.rejects(hasher.digest(), /already given its digest/);
  });

  Deno.test(`hasher (${threaded ? "worker" : "inline"}) only takes its own buffers`, async () => {
    using hasher = await createHasher({ threaded });
    assert.throws(() => hasher.submit(new Uint8Array(10)), TypeError);
    const buf = await hasher.acquire();
    assert.throws(() => hasher.submit(buf.subarray(1, 5)), TypeError);
    hasher.submit(buf.subarray(0, 0));
    assert.equal(await hasher.digest(), sha(new Uint8Array()));
  });
}

Deno.test("the worker hasher lends a bounded pool and detaches submitted buffers", async () => {
  using hasher = await createHasher({ threaded: true });
  const held = [];
  for (let i = 0; i < 4; i++) held.push(await hasher.acquire());
  let fifth: Uint8Array | undefined;
  const waiting = hasher.acquire().then((b) => fifth = b);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(fifth, undefined, "a fifth buffer was lent while four were out");
  held[0][0] = 42;
  hasher.submit(held[0].subarray(0, 1));
  // Transferred to the worker: the caller's view is empty now, so it cannot race the hash.
  assert.equal(held[0].length, 0);
  await waiting;
  assert.equal(fifth!.length, HASH_BUFFER);
  assert.equal(await hasher.digest(), sha(new Uint8Array([42])));
});

Deno.test("a Worker that cannot start falls back to hashing on the main thread", async () => {
  const real = globalThis.Worker;
  const lines: string[] = [];
  class BrokenWorker {
    constructor() {
      throw new Error("Workers are not supported here");
    }
  }
  globalThis.Worker = BrokenWorker as unknown as typeof Worker;
  try {
    using hasher = await createHasher({ sizeHint: THREAD_THRESHOLD, debug: (m) => lines.push(m) });
    assert.equal(hasher.threaded, false);
    const data = makeData(1000);
    await feed(hasher, data, 1000);
    assert.equal(await hasher.digest(), sha(data));
  } finally {
    globalThis.Worker = real;
  }
  assert.deepEqual(lines, ["Hashing on the main thread: Workers are not supported here"]);
});

Deno.test("a Worker whose module fails to load falls back too, and is terminated", async () => {
  const real = globalThis.Worker;
  let terminated = 0;
  class UnloadableWorker {
    onerror: ((e: ErrorEvent) => void) | null = null;
    onmessage: ((e: MessageEvent) => void) | null = null;
    onmessageerror: (() => void) | null = null;
    constructor() {
      setTimeout(() => this.onerror?.(new ErrorEvent("error", { message: "Module not found" })), 5);
    }
    postMessage() {}
    terminate() {
      terminated++;
    }
  }
  globalThis.Worker = UnloadableWorker as unknown as typeof Worker;
  const lines: string[] = [];
  try {
    using hasher = await createHasher({ threaded: true, debug: (m) => lines.push(m) });
    assert.equal(hasher.threaded, false);
  } finally {
    globalThis.Worker = real;
  }
  assert.ok(terminated >= 1);
  assert.match(lines[0], /The hash worker failed: Module not found/);
});

Deno.test("size decides: small inputs hash inline, large ones on a worker", async () => {
  using small = await createHasher({ sizeHint: THREAD_THRESHOLD - 1 });
  using large = await createHasher({ sizeHint: THREAD_THRESHOLD });
  using unknown = await createHasher();
  assert.deepEqual([small.threaded, large.threaded, unknown.threaded], [false, true, false]);
});

Deno.test("hashFile and hashFileInto: whole files, prefixes, and files shorter than asked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sreg-hash-" });
  try {
    const data = makeData(THREAD_THRESHOLD + 3 * 1024 * 1024 + 5, 4);
    const path = join(dir, "x");
    await Deno.writeFile(path, data);
    assert.deepEqual(await hashFile(path), { digest: sha(data), size: data.length });
    for (const threaded of [false, true]) {
      using h = await createHasher({ threaded });
      assert.equal(await hashFileInto(h, path, 5_000_001), 5_000_001);
      assert.equal(await h.digest(), sha(data.subarray(0, 5_000_001)));
    }
    using h = await createHasher();
    assert.equal(await hashFileInto(h, path, data.length + 10), data.length);
    assert.equal(await h.digest(), sha(data));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the buffered writer puts the same bytes in the file and the digest", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sreg-writer-" });
  try {
    for (const threaded of [false, true]) {
      const path = join(dir, `w-${threaded}`);
      const data = makeData(2 * HASH_BUFFER + 777, 5);
      using hasher = await createHasher({ threaded });
      using file = await Deno.open(path, { write: true, create: true, truncate: true });
      const flushed: number[] = [];
      const w = await createHashingWriter(file, { hasher, onWrite: (n) => flushed.push(n) });
      // Mixed use: copies of odd sizes, then reads straight into the writer's buffer.
      let i = 0;
      for (const n of [1, 100_000, HASH_BUFFER + 3]) {
        await w.write(data.subarray(i, i + n));
        i += n;
      }
      // Bytes reach the file (and the resume point) at once, in the pieces given.
      assert.deepEqual(flushed, [1, 100_000, HASH_BUFFER + 3]);
      while (i < data.length) {
        const room = w.room();
        const n = Math.min(room.length, data.length - i, 65_536);
        room.set(data.subarray(i, i + n));
        await w.commit(n);
        i += n;
      }
      assert.ok(w.room().length <= PIECE);
      await assert.rejects(w.commit(PIECE + 1), RangeError);
      await w.flush();
      assert.equal(flushed.reduce((a, b) => a + b, 0), data.length);
      assert.equal(await hasher.digest(), sha(data));
      assert.deepEqual(await Deno.readFile(path), data);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every Worker module is embedded by the compile task", async () => {
  const root = new URL("../", import.meta.url);
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const compile: string = config.tasks.compile;
  const workers: string[] = [];
  for (const dir of ["core", "clients", "db"]) {
    const walk = async (rel: string) => {
      for await (const e of Deno.readDir(new URL(rel, root))) {
        const path = `${rel}/${e.name}`;
        if (e.isDirectory) await walk(path);
        else if (e.name.endsWith(".ts")) {
          const text = await Deno.readTextFile(new URL(path, root));
          for (
            const m of text.matchAll(/new Worker\(new URL\("\.\/([^"]+)", import\.meta\.url\)/g)
          ) {
            workers.push(`${rel}/${m[1]}`);
          }
        }
      }
    };
    await walk(dir);
  }
  assert.deepEqual(workers, ["core/_hash_worker.ts"]);
  for (const w of workers) {
    assert.ok(compile.includes(`--include ${w}`), `${w} missing in: ${compile}`);
  }
});
