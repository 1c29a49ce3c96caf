/**
 * The google-drive:// client against the strict Drive fake (tests/servers/gdrive_fake.ts), with a
 * service account generated at start (no key is committed).
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { runClientConformance } from "../conformance.ts";
import { startFaultProxy } from "../servers/fault_proxy.ts";
import { makeTestAccount } from "../servers/gcs_fake.ts";
import { startDriveFake } from "../servers/gdrive_fake.ts";

runClientConformance({
  scheme: "google-drive",
  capabilities: ["pull", "push", "search", "record", "delete", "share"],
  settingExceptions: ["GOOGLE_APPLICATION_CREDENTIALS"],
  async start(fixture) {
    const fake = startDriveFake();
    const dir = await Deno.makeTempDir({ prefix: "sregistry-gdrive-" });
    const account = await makeTestAccount(fake.tokenUri);
    fake.addAccount(account.email, account.publicKey);
    const wrong = await makeTestAccount(fake.tokenUri, account.email);
    const keyFile = join(dir, "key.json");
    const wrongFile = join(dir, "wrong.json");
    await Deno.writeTextFile(keyFile, account.json, { mode: 0o600 });
    await Deno.writeTextFile(wrongFile, wrong.json, { mode: 0o600 });
    const folder = fake.put({ name: "sregistry", mimeType: "application/vnd.google-apps.folder" });
    const sha = createHash("sha256").update(fixture.bytes).digest("hex");
    const ids: Record<string, string> = {};
    for (const name of ["hello", "broken", "dropped", "slow"]) {
      const url = `conformance/${name}`;
      ids[name] = fake.put({
        name: `${url}:v1@${sha}.sif`,
        parents: [folder.id],
        bytes: new Uint8Array(fixture.bytes),
        properties: {
          type: "container",
          collection: "conformance",
          image: name,
          url,
          tag: "v1",
          version: sha,
          uri: `${url}:v1@${sha}`,
        },
      }).id;
    }
    const proxy = startFaultProxy(fake.url, [
      { path: new RegExp(`^/drive/v3/files/${ids.broken}`), fault: { status: 503 } },
      { path: new RegExp(`^/drive/v3/files/${ids.dropped}`), fault: { dropAfter: 100_000 } },
      { path: new RegExp(`^/drive/v3/files/${ids.slow}`), fault: { rate: 48 * 1024 } },
    ]);
    const faulty = { SREGISTRY_GOOGLE_DRIVE_BASE: proxy.url };
    return {
      env: { GOOGLE_APPLICATION_CREDENTIALS: keyFile, SREGISTRY_GOOGLE_DRIVE_BASE: fake.url },
      uri: "google-drive://conformance/hello:v1",
      pushUri: "google-drive://conformance/pushed:v1",
      search: { query: "google-drive://conformance", expect: "conformance/hello:v1" },
      unauthorized: {
        uri: "google-drive://conformance/hello:v1",
        env: { GOOGLE_APPLICATION_CREDENTIALS: wrongFile },
      },
      notFound: { uri: "google-drive://conformance/missing:v1" },
      serverError: { uri: "google-drive://conformance/broken:v1", env: faulty },
      dropped: { uri: "google-drive://conformance/dropped:v1", env: faulty },
      slow: {
        uri: "google-drive://conformance/slow:v1",
        env: faulty,
        sent: () => proxy.faultedBytes,
      },
      secretValues: ["ya29.fake-", "eyJhbGciOiJSUzI1NiIs", account.pem.split("\n")[5]],
      async stop() {
        await proxy.stop();
        await fake.stop();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  },
});
