/**
 * Issue 10, items 11 (full disk), 13 (truncated SIF) and 14 (bounded retries): the CLI against the
 * fault server, as a user would run it.
 */

import { join } from "node:path";
import { assert, assertEquals, assertIncludes } from "./_assert.ts";
import { memorySource } from "../core/byte_source.ts";
import { checkSifComplete } from "../core/sif.ts";
import { runCli, tempHome } from "./_cli.ts";
import { buildSingularityLike } from "./_sif_writer.ts";
import { makeData, startFaultServer } from "./servers/fault_server.ts";

/** Every file below `dir`, relative, sorted. */
function filesUnder(dir: string, base = dir): string[] {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...filesUnder(p, base));
    else out.push(p.slice(base.length + 1));
  }
  return out.sort();
}

async function imagesIn(env: Record<string, string>): Promise<unknown[]> {
  const r = await runCli(["images", "--json"], { env });
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

// --- item 13: a SIF shorter than its header says is an integrity error, never stored ---

Deno.test("hardening 13: a truncated http download of a SIF is exit 6, no file, no row", async () => {
  const home = await tempHome();
  const server = startFaultServer();
  try {
    const sif = buildSingularityLike({ labels: { a: "b" } });
    assert(sif.length > 600, "the image has a data section to cut");
    await server.setFile("/cut.sif", sif);
    server.setFault("/cut.sif", { truncate: sif.length - 300 });
    const pull = await runCli(["pull", "--name", "t/cut:1", `${server.url}/cut.sif`], {
      env: home.env,
    });
    assertEquals(pull.code, 6, pull.stderr);
    assertIncludes(pull.stderr, "Truncated SIF image");
    assertIncludes(pull.stderr, `the file has ${sif.length - 300}`);
    assertEquals(filesUnder(home.env.SREGISTRY_STORAGE), []);
    assertEquals(await imagesIn(home.env), []);

    const cwd = join(home.dir, "here");
    await Deno.mkdir(cwd);
    const local = await runCli(["pull", "--no-cache", `${server.url}/cut.sif`], {
      env: home.env,
      cwd,
    });
    assertEquals(local.code, 6, local.stderr);
    assertEquals(filesUnder(cwd), []);

    // The whole file still pulls.
    server.setFault("/cut.sif", {});
    const ok = await runCli(["pull", "--name", "t/cut:1", `${server.url}/cut.sif`], {
      env: home.env,
    });
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals((await imagesIn(home.env)).length, 1);
  } finally {
    await server.close();
    await home.cleanup();
  }
});

Deno.test("hardening 13: add of a truncated SIF is exit 6, the file stays, no row", async () => {
  const home = await tempHome();
  try {
    const sif = buildSingularityLike({ labels: { a: "b" } });
    const file = join(home.dir, "cut.sif");
    Deno.writeFileSync(file, sif.subarray(0, sif.length - 1));
    const r = await runCli(["add", file, "--name", "t/cut:1"], { env: home.env });
    assertEquals(r.code, 6, r.stderr);
    assertIncludes(r.stderr, "Truncated SIF image");
    assertEquals(Deno.statSync(file).size, sif.length - 1, "the user's file is left alone");
    assertEquals(filesUnder(home.env.SREGISTRY_STORAGE), []);
    assertEquals(await imagesIn(home.env), []);
    // Only the header cut short: still a SIF by its magic, still refused.
    Deno.writeFileSync(file, sif.subarray(0, 100));
    assertEquals((await runCli(["add", file, "--name", "t/cut:1"], { env: home.env })).code, 6);
    Deno.writeFileSync(file, sif);
    const ok = await runCli(["add", file, "--name", "t/cut:1"], { env: home.env });
    assertEquals(ok.code, 0, ok.stderr);
  } finally {
    await home.cleanup();
  }
});

// --- item 14: the retry budget covers the whole transfer ---

for (
  const [what, fault] of [
    ["does not support ranges", { noRanges: true }],
    ["changes its validator on every request", { changingValidator: true }],
  ] as const
) {
  Deno.test(`hardening 14: a server that drops every body and ${what} ends with exit 5`, async () => {
    const home = await tempHome();
    const server = startFaultServer();
    try {
      const data = makeData(300_000, 7);
      await server.setFile("/drop.sif", data);
      // Bounded, so that without a whole-transfer budget the pull ends (with exit 0) instead of
      // running forever: each attempt got 50 kB, then the connection closed.
      server.setFault("/drop.sif", { ...fault, drop: { after: 50_000, times: 40 } });
      const env = { ...home.env, SREGISTRY_HTTP_RETRIES: "3", SREGISTRY_BACKOFF_MS: "1" };
      const started = Date.now();
      const r = await runCli(["pull", "--name", "t/drop:1", `${server.url}/drop.sif`], { env });
      assertEquals(r.code, 5, r.stderr);
      const requests = server.requests.filter((q) => q.path === "/drop.sif").length;
      // One first attempt and three retries: the 50 kB each start-over brings are old ground.
      assertEquals(requests, 4);
      assertIncludes(r.stderr, "failed after 4 attempts");
      assert(Date.now() - started < 20_000, "bounded in seconds");
      assertEquals(await imagesIn(env), []);
    } finally {
      await server.close();
      await home.cleanup();
    }
  });
}

Deno.test("hardening 14: a server that stalls after some bytes and cannot resume ends with exit 5", async () => {
  const home = await tempHome();
  const server = startFaultServer();
  try {
    await server.setFile("/stall.sif", makeData(300_000, 8));
    server.setFault("/stall.sif", { noRanges: true, stall: { after: 40_000, times: 20 } });
    const env = {
      ...home.env,
      SREGISTRY_HTTP_RETRIES: "2",
      SREGISTRY_BACKOFF_MS: "1",
      SREGISTRY_STALL_TIMEOUT: "0.3",
    };
    const r = await runCli(["pull", "--name", "t/stall:1", `${server.url}/stall.sif`], { env });
    assertEquals(r.code, 5, r.stderr);
    assertIncludes(r.stderr, "failed after 3 attempts");
    assertIncludes(r.stderr, "stalled");
    assertEquals(server.requests.filter((q) => q.path === "/stall.sif").length, 3);
  } finally {
    await server.close();
    await home.cleanup();
  }
});

Deno.test("hardening 14: drops that still resume keep going, as each attempt gains new ground", async () => {
  const home = await tempHome();
  const server = startFaultServer();
  try {
    const data = makeData(12 * 1024 * 1024, 9);
    await server.setFile("/big.sif", data);
    // Two drops, each 5 MiB past the last one, and a budget of one retry: progress earns the rest.
    server.setFault("/big.sif", { drop: { after: 5 * 1024 * 1024, times: 2 } });
    const env = { ...home.env, SREGISTRY_HTTP_RETRIES: "1", SREGISTRY_BACKOFF_MS: "1" };
    const r = await runCli(["pull", "--name", "t/big:1", `${server.url}/big.sif`], { env });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(server.requests.filter((q) => q.path === "/big.sif").length, 3);
  } finally {
    await server.close();
    await home.cleanup();
  }
});

// --- item 11: a full disk is one clear error, and leaves nothing empty behind ---

/** A 2 MiB tmpfs at `dir` (root only); undefined when mounting is not permitted here. */
async function smallDisk(dir: string): Promise<{ unmount(): Promise<void> } | undefined> {
  await Deno.mkdir(dir, { recursive: true });
  const run = (cmd: string, args: string[]) =>
    new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output()
      .then((o) => o.success, () => false);
  if (!await run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", dir])) return undefined;
  return { unmount: async () => void await run("umount", [dir]) };
}

/** Whether this machine lets the tests mount a tmpfs (probed once, at load). */
const MOUNT_WORKS = await (async () => {
  const dir = await Deno.makeTempDir({ prefix: "sregistry-mount-probe-" });
  try {
    const disk = await smallDisk(dir);
    await disk?.unmount();
    return disk !== undefined;
  } finally {
    await Deno.remove(dir).catch(() => {});
  }
})();
if (!MOUNT_WORKS) {
  console.warn("skipping the full-disk tests: mounting a tmpfs is not permitted here (needs root)");
}

Deno.test({
  name: "hardening 11: a pull onto a full disk is exit 1 naming the folder, bytes and partial",
  ignore: !MOUNT_WORKS,
  async fn() {
    const home = await tempHome();
    const server = startFaultServer();
    const mnt = join(home.dir, "small");
    const disk = await smallDisk(mnt);
    assert(disk, "mount worked in the probe");
    try {
      const big = makeData(3 * 1024 * 1024, 11);
      await server.setFile("/big.sif", big);
      await server.setFile("/small.sif", makeData(300 * 1024, 12));
      const env = { ...home.env, SREGISTRY_STORAGE: join(mnt, "storage") };
      const staging = join(mnt, "storage", ".staging");

      const r = await runCli(["pull", "--name", "t/big:1", `${server.url}/big.sif`], { env });
      assertEquals(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assertEquals(lines.length, 1, r.stderr);
      assertIncludes(lines[0], `No space left on ${staging}: free `);
      const kept = filesUnder(staging);
      // The partial and its resume state are kept (they resume once there is room); no temp file.
      assertEquals(kept.filter((f) => f.endsWith(".tmp")), [], kept.join(","));
      const partial = kept.find((f) => f.endsWith(".partial"));
      assert(partial, kept.join(","));
      const size = Deno.statSync(join(staging, partial)).size;
      assert(size > 0);
      assertIncludes(
        lines[0],
        `free ${big.length - size} bytes or remove ${join(staging, partial)}`,
      );

      // The disk is still full: the next pull says so at once and leaves nothing empty behind.
      const again = await runCli(["pull", "--name", "t/small:1", `${server.url}/small.sif`], {
        env,
      });
      assertEquals(again.code, 1, again.stderr);
      assertIncludes(again.stderr, "No space left on");
      assertIncludes(
        again.stderr,
        `1 other unfinished download in that folder holds ${size} bytes`,
      );
      for (const f of filesUnder(staging)) {
        assert(!f.endsWith(".tmp"), `left behind: ${f}`);
        assert(Deno.statSync(join(staging, f)).size > 0, `empty file left behind: ${f}`);
      }
      assertEquals(await imagesIn(env), []);

      // Removing the named partial makes room: the small pull then works.
      await Deno.remove(join(staging, partial));
      const ok = await runCli(["pull", "--name", "t/small:1", `${server.url}/small.sif`], { env });
      assertEquals(ok.code, 0, ok.stderr);
    } finally {
      await disk.unmount();
      await server.close();
      await home.cleanup();
    }
  },
});

Deno.test("hardening 13: the check measures SIFs only, not files that merely carry the magic", async () => {
  const sif = buildSingularityLike({ labels: {} });
  await checkSifComplete(memorySource(sif));
  const cut = await checkSifComplete(memorySource(sif.subarray(0, sif.length - 1))).catch((e) => e);
  assertEquals(cut?.exitCode, 6);
  // The magic, then noise (an unknown version, impossible sizes): corrupt, not truncated.
  for (let seed = 1; seed <= 64; seed++) {
    const noise = makeData(4096, seed);
    noise.set(new TextEncoder().encode("SIF_MAGIC\0"), 32);
    await checkSifComplete(memorySource(noise));
    noise.set(new TextEncoder().encode("01\0"), 42);
    await checkSifComplete(memorySource(noise));
  }
  // Not a SIF at all.
  await checkSifComplete(memorySource(makeData(10, 1)));
});
