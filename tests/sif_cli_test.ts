import { assert, assertEquals, assertIncludes } from "./_assert.ts";
import { join } from "node:path";
import { buildLegacySimg, buildSingularityLike } from "./_sif_writer.ts";
import { runCli, tempHome } from "./_cli.ts";

Deno.test("sif cli: add stores the image's own metadata; inspect, labels and images use it", async () => {
  const home = await tempHome();
  try {
    const file = join(home.dir, "hello.sif");
    await Deno.writeFile(
      file,
      buildSingularityLike({
        labels: { MAINTAINER: "vsochat@stanford.edu", "org.label-schema.version": "1.2" },
        runscript: "#!/bin/sh\nexec echo hello\n",
        helpfile: "Says hello.",
        environment: { "/.singularity.d/env/90-environment.sh": "export GREETING=hello\n" },
      }, { signed: true }),
    );
    const env = home.env;

    // Read directly, without the catalog and without Singularity.
    const direct = await runCli(["inspect", "--file", file], { env });
    assertEquals(direct.code, 0, direct.stderr);
    const meta = JSON.parse(direct.stdout);
    assertEquals(meta.format, "sif");
    assertEquals(meta.labels.MAINTAINER, "vsochat@stanford.edu");
    assertEquals(meta.architecture, "amd64");
    assertEquals(meta.signed, true);
    assertIncludes(meta.runscript, "exec echo hello");

    const objects = await runCli(["inspect", "--file", file, "--objects"], { env });
    assertEquals(objects.code, 0, objects.stderr);
    assertIncludes(objects.stdout, "FS (Squashfs/*System/amd64)");
    assertIncludes(objects.stdout, "JSON.Generic");
    const objectsJson = JSON.parse(
      (await runCli(["--json", "inspect", "--file", file, "--objects"], { env })).stdout,
    );
    assertEquals(objectsJson.objects.length, 4);

    // add stores it; the original stored nothing without Singularity.
    const add = await runCli(["add", file, "--name", "demo/hello:1.0", "--copy"], { env });
    assertEquals(add.code, 0, add.stderr);
    const stored = add.stdout.trim();
    assert(stored.startsWith(join(home.env.SREGISTRY_STORAGE, "demo", "hello", "1.0@")), stored);
    const row = JSON.parse((await runCli(["inspect", "demo/hello:1.0"], { env })).stdout);
    assertEquals(
      row.metrics.MAINTAINER,
      "vsochat@stanford.edu",
      "labels flattened as the original did",
    );
    assertEquals(row.metrics.sif.architecture, "amd64");
    assertEquals(row.metrics.type, "container");
    assertIncludes(row.metrics.runscript, "echo hello");

    const labels = await runCli(["--json", "labels", "--key", "maintainer"], { env });
    assertEquals(labels.code, 0, labels.stderr);
    const hits = JSON.parse(labels.stdout);
    assert(hits.some((h: { value: string }) => h.value === "vsochat@stanford.edu"), labels.stdout);
    const byValue = await runCli(["labels", "-v", "stanford"], { env });
    assertIncludes(byValue.stdout, "demo/hello:1.0");

    const catalogObjects = await runCli(["inspect", "demo/hello:1.0", "--objects"], { env });
    assertEquals(catalogObjects.code, 0, catalogObjects.stderr);
    assertIncludes(catalogObjects.stdout, "Signature (SHA-256)");
  } finally {
    await home.cleanup();
  }
});

Deno.test("sif cli: legacy images are recognised; non-images get a one-line error", async () => {
  const home = await tempHome();
  try {
    const simg = join(home.dir, "old.simg");
    await Deno.writeFile(simg, buildLegacySimg());
    const r = await runCli(["inspect", "--file", simg], { env: home.env });
    assertEquals(r.code, 0, r.stderr);
    const meta = JSON.parse(r.stdout);
    assertEquals(meta.legacy, true);
    assertEquals(meta.format, "squashfs");

    const text = join(home.dir, "notes.txt");
    await Deno.writeTextFile(text, "hello world, not an image at all ".repeat(10));
    const bad = await runCli(["inspect", "--file", text, "--objects"], { env: home.env });
    assertEquals(bad.code, 1);
    assertEquals(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assertIncludes(bad.stderr, "notes.txt");
    // Without --objects too (issue 10, item 20: it was exit 0 with an "unknown" report).
    for (
      const [file, why] of [[text, "no SIF, squashfs, ext3 or OCI-archive header"], [
        join(home.dir, "empty.sif"),
        "it is empty",
      ]]
    ) {
      if (!file.endsWith("notes.txt")) await Deno.writeFile(file, new Uint8Array());
      const r2 = await runCli(["inspect", "--file", file], { env: home.env });
      assertEquals(r2.code, 1, r2.stderr);
      assertEquals(r2.stdout, "");
      assertEquals(r2.stderr.trim().split("\n").length, 1, r2.stderr);
      assertIncludes(r2.stderr, why);
    }
    const missing = await runCli(["inspect", "--file", join(home.dir, "nope.sif")], {
      env: home.env,
    });
    assertEquals(missing.code, 3);
  } finally {
    await home.cleanup();
  }
});
