/**
 * Issue 10, items 11 (full disk), 13 (truncated SIF) and 14 (bounded retries): the CLI against the
 * fault server, as a user would run it.
 */

import { join } from "node:path";
import { assert, assertEquals, assertIncludes } from "./_assert.ts";
import { runCli, tempHome } from "./_cli.ts";
import { buildSingularityLike } from "./_sif_writer.ts";
import { startFaultServer } from "./servers/fault_server.ts";

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
