import assert from "./_assert.ts";
import { pool } from "../core/pool.ts";

Deno.test("pool keeps input order and never exceeds the concurrency", async () => {
  let running = 0, peak = 0;
  const out = await pool([5, 1, 4, 2, 3, 0], 2, async (n, i) => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, n * 3));
    running--;
    return `${i}:${n}`;
  });
  assert.deepEqual(out, ["0:5", "1:1", "2:4", "3:2", "4:3", "5:0"]);
  assert.equal(peak, 2);
});

Deno.test("pool fails fast: the first error aborts the rest and no new task starts", async () => {
  const started: number[] = [];
  let abortedSeen = 0;
  const err = await pool([0, 1, 2, 3, 4, 5], 2, async (n, _i, signal) => {
    started.push(n);
    if (n === 1) throw new Error("boom");
    await new Promise((r) => setTimeout(r, 20));
    if (signal.aborted) abortedSeen++;
    return n;
  }).catch((e) => e);
  assert.equal(err.message, "boom");
  assert.deepEqual(started, [0, 1]);
  assert.equal(abortedSeen, 1);
});

Deno.test("pool honours an outer abort signal and handles empty input", async () => {
  assert.deepEqual(await pool([], 3, () => Promise.resolve(1)), []);
  const ac = new AbortController();
  const p = pool([1, 2, 3], 1, async (n, _i, signal) => {
    if (n === 1) ac.abort(new Error("stop"));
    return await Promise.resolve(signal.aborted ? -n : n);
  }, ac.signal);
  await assert.rejects(p, /stop/);
});
