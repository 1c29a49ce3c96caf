/**
 * google-drive:// cases beyond conformance, through the CLI against the strict Drive fake: the
 * folder is created, properties and the thumbnail go up with the file, search uses the properties,
 * share adds a reader permission, and an expired token refreshes once.
 * @module
 */

import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { runCli, tempHome } from "./_cli.ts";
import { makeTestAccount } from "./servers/gcs_fake.ts";
import { startDriveFake } from "./servers/gdrive_fake.ts";

Deno.test("google-drive: push creates the folder, sends properties and thumbnail; search, share, refresh", async () => {
  const fake = startDriveFake({ pageSize: 1 });
  const h = await tempHome();
  try {
    const account = await makeTestAccount(fake.tokenUri);
    fake.addAccount(account.email, account.publicKey);
    const key = join(h.dir, "key.json");
    await Deno.writeTextFile(key, account.json, { mode: 0o600 });
    const sif = join(h.dir, "a.sif");
    await Deno.writeFile(sif, crypto.getRandomValues(new Uint8Array(4096)));
    const env = {
      ...h.env,
      GOOGLE_APPLICATION_CREDENTIALS: key,
      SREGISTRY_GOOGLE_DRIVE_BASE: fake.url,
    };
    for (const tag of ["one", "two"]) {
      const r = await runCli(["push", "--name", `google-drive://demo/img:${tag}`, sif], { env });
      assertEquals(r.code, 0, r.stderr);
    }
    const all = [...fake.files.values()];
    const folders = all.filter((f) => f.mimeType === "application/vnd.google-apps.folder");
    assertEquals(folders.map((f) => f.name), ["sregistry"]);
    const images = all.filter((f) => f.parents.includes(folders[0].id));
    assertEquals(images.length, 2);
    assertEquals(images[0].properties.type, "container");
    assertEquals(images[0].properties.collection, "demo");
    assertEquals(images[0].properties.url, "demo/img");
    assertEquals(images[0].contentHints?.thumbnail?.mimeType, "image/png");
    assert((images[0].contentHints?.thumbnail?.image ?? "").length > 100, "no thumbnail");

    // Search follows pageToken (one file per page here).
    const pagesBefore = fake.stats.pages;
    const s = await runCli(["--json", "search", "google-drive://demo"], { env });
    assertEquals(s.code, 0, s.stderr);
    assert(s.stdout.includes("demo/img:one") && s.stdout.includes("demo/img:two"), s.stdout);
    assert(fake.stats.pages - pagesBefore >= 3, "search did not page");

    // An expired token: one 401, one new token, then success.
    fake.expireTokens();
    const tokens = fake.stats.tokens;
    const sh = await runCli(
      ["share", "google-drive://demo/img:one", "--email", "friend@example.org"],
      { env },
    );
    assertEquals(sh.code, 0, sh.stderr);
    assertEquals(fake.stats.tokens, tokens + 1);
    const shared = images.find((f) => f.properties.tag === "one")!;
    assertEquals(shared.permissions.map((p) => [p.type, p.role, p.emailAddress]), [
      ["user", "reader", "friend@example.org"],
    ]);
    assert(sh.stdout.includes(shared.permissions[0].id), sh.stdout);

    const noEmail = await runCli(["share", "google-drive://demo/img:one"], { env });
    assertEquals(noEmail.code, 2, noEmail.stderr);
  } finally {
    await fake.stop();
    await Deno.remove(h.dir, { recursive: true }).catch(() => {});
  }
});
