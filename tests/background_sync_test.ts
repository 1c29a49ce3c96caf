import assert from "./_assert.ts";
import { join } from "node:path";
import { startBackgroundSync } from "../core/background_sync.ts";

Deno.test("background sync: one sync per interval, one at a time, errors left to the final fsync", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sreg-bgsync-" });
  try {
    const path = join(dir, "f");
    await Deno.writeFile(path, new Uint8Array(10));
    let calls = 0;
    let release = () => {};
    const syncData = async (f: Deno.FsFile) => {
      calls++;
      const gate = new Promise<void>((r) => release = r);
      await f.syncData();
      await gate;
      if (calls === 2) throw new Error("EIO");
    };
    {
      await using bg = await startBackgroundSync(path, { every: 100, syncData });
      bg.wrote(99);
      assert.equal(calls, 0);
      bg.wrote(1);
      assert.equal(calls, 1);
      // Still in flight: more bytes do not start a second sync.
      bg.wrote(500);
      assert.equal(calls, 1);
      release();
      await bg.settle();
      bg.wrote(100);
      assert.equal(calls, 2);
      release();
      // The failed sync is not thrown here.
      await bg.settle();
      bg.wrote(100);
      assert.equal(calls, 3);
      setTimeout(() => release(), 10);
    }
    // Disposal waited for the third sync; nothing starts afterwards.
    assert.equal(calls, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
