/**
 * The google-storage:// client against the strict GCS fake (tests/servers/gcs_fake.ts), reached
 * through STORAGE_EMULATOR_HOST; the token endpoint is the key file's token_uri on the same fake.
 * The service account key is generated at start (WebCrypto); none is committed.
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { runClientConformance } from "../conformance.ts";
import { startFaultProxy } from "../servers/fault_proxy.ts";
import { makeTestAccount, startGcsFake } from "../servers/gcs_fake.ts";

const BUCKET = "conformance-bucket";

/** The metadata sregistry-cli's push wrote (names + type), without our sha256sum. */
function originalMetadata(uri: string, version: string): Record<string, string> {
  const [url, tag] = uri.split(":");
  const [collection, image] = url.split("/");
  const full = `${url}:${tag}@${version}`;
  return {
    collection,
    original: uri,
    image,
    url,
    tag,
    version,
    storage: `${full}.sif`,
    uri: full,
    type: "container",
  };
}

runClientConformance({
  scheme: "google-storage",
  capabilities: ["pull", "push", "search", "record", "delete"],
  // The names sregistry-cli and Google's libraries read.
  settingExceptions: [
    "GOOGLE_APPLICATION_CREDENTIALS",
    "SREGISTRY_GOOGLE_PROJECT",
    "STORAGE_EMULATOR_HOST",
  ],
  async start(fixture) {
    const fake = startGcsFake();
    const dir = await Deno.makeTempDir({ prefix: "sregistry-gcs-" });
    const account = await makeTestAccount(fake.tokenUri);
    fake.addAccount(account.email, account.publicKey);
    // Same account, another key: its signature does not verify.
    const wrong = await makeTestAccount(fake.tokenUri, account.email);
    const keyFile = join(dir, "key.json");
    const wrongFile = join(dir, "wrong.json");
    await Deno.writeTextFile(keyFile, account.json, { mode: 0o600 });
    await Deno.writeTextFile(wrongFile, wrong.json, { mode: 0o600 });
    fake.addBucket(BUCKET);
    const sha = createHash("sha256").update(fixture.bytes).digest("hex");
    for (const name of ["hello", "broken", "dropped", "slow"]) {
      const uri = `conformance/${name}:v1`;
      fake.put(BUCKET, `${uri}@${sha}.sif`, fixture.bytes, originalMetadata(uri, sha));
    }
    const proxy = startFaultProxy(fake.url, [
      { path: /^\/download\/.*broken/, fault: { status: 503 } },
      { path: /^\/download\/.*dropped/, fault: { dropAfter: 100_000 } },
      { path: /^\/download\/.*slow/, fault: { rate: 48 * 1024 } },
    ]);
    const faulty = { STORAGE_EMULATOR_HOST: proxy.url };
    const pemBody = account.pem.split("\n")[5];
    return {
      env: {
        GOOGLE_APPLICATION_CREDENTIALS: keyFile,
        SREGISTRY_GOOGLE_STORAGE_BUCKET: BUCKET,
        STORAGE_EMULATOR_HOST: fake.url,
      },
      uri: "google-storage://conformance/hello:v1",
      pushUri: "google-storage://conformance/pushed:v1",
      search: { query: "google-storage://conformance", expect: "conformance/hello:v1" },
      unauthorized: {
        uri: "google-storage://conformance/hello:v1",
        env: { GOOGLE_APPLICATION_CREDENTIALS: wrongFile },
      },
      notFound: { uri: "google-storage://conformance/missing:v1" },
      serverError: { uri: "google-storage://conformance/broken:v1", env: faulty },
      dropped: { uri: "google-storage://conformance/dropped:v1", env: faulty },
      slow: {
        uri: "google-storage://conformance/slow:v1",
        env: faulty,
        sent: () => proxy.faultedBytes,
      },
      // Issued tokens, the JWT assertion's header and a line of the private key.
      secretValues: ["ya29.fake-", "eyJhbGciOiJSUzI1NiIs", pemBody],
      async stop() {
        await proxy.stop();
        await fake.stop();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  },
});
