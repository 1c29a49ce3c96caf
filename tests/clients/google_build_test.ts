/**
 * The google-build:// client against the strict GCS fake (the bucket its builds write to, through
 * STORAGE_EMULATOR_HOST) and the Cloud Build fake (SREGISTRY_GOOGLE_BUILD_BASE); the token endpoint
 * is the key file's token_uri on the GCS fake. Builds themselves are tested in
 * tests/google_build_test.ts. The service account key is generated at start; none is committed.
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { runClientConformance } from "../conformance.ts";
import { startFaultProxy } from "../servers/fault_proxy.ts";
import { makeTestAccount, startGcsFake } from "../servers/gcs_fake.ts";
import { startCloudBuildFake } from "../servers/cloudbuild_fake.ts";

const BUCKET = "conformance-builds";

/** The metadata a google-build build leaves on its image (the original's keys + name fields). */
function builtMetadata(uri: string, sha: string, size: number): Record<string, string> {
  const [url, tag] = uri.split(":");
  const [collection, image] = url.split("/");
  return {
    sha256sum: sha,
    size: String(size),
    type: "container",
    buildCommand: `build ${image}:${tag}.sif Singularity`,
    builder: "singularityware/singularity:v3.2.1-slim",
    collection,
    image,
    tag,
    url,
    uri,
    storage: `${uri}.sif`,
  };
}

runClientConformance({
  scheme: "google-build",
  capabilities: ["pull", "push", "search", "record", "delete", "build"],
  // The names sregistry-cli and Google's libraries read, shared with google-storage.
  settingExceptions: [
    "GOOGLE_APPLICATION_CREDENTIALS",
    "SREGISTRY_GOOGLE_PROJECT",
    "SREGISTRY_GOOGLE_STORAGE_BUCKET",
    "SREGISTRY_GOOGLE_STORAGE_PRIVATE",
    "STORAGE_EMULATOR_HOST",
  ],
  async start(fixture) {
    const gcs = startGcsFake();
    const cb = startCloudBuildFake(gcs);
    const dir = await Deno.makeTempDir({ prefix: "sregistry-gbuild-" });
    const account = await makeTestAccount(gcs.tokenUri);
    gcs.addAccount(account.email, account.publicKey);
    const wrong = await makeTestAccount(gcs.tokenUri, account.email);
    const keyFile = join(dir, "key.json");
    const wrongFile = join(dir, "wrong.json");
    await Deno.writeTextFile(keyFile, account.json, { mode: 0o600 });
    await Deno.writeTextFile(wrongFile, wrong.json, { mode: 0o600 });
    gcs.addBucket(BUCKET);
    const sha = createHash("sha256").update(fixture.bytes).digest("hex");
    for (const name of ["hello", "broken", "dropped", "slow"]) {
      const uri = `conformance/${name}:v1`;
      gcs.put(BUCKET, `${uri}.sif`, fixture.bytes, builtMetadata(uri, sha, fixture.bytes.length));
    }
    const proxy = startFaultProxy(gcs.url, [
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
        STORAGE_EMULATOR_HOST: gcs.url,
        SREGISTRY_GOOGLE_BUILD_BASE: cb.url,
        SREGISTRY_GOOGLE_BUILD_INTERVAL: "0.02",
      },
      uri: "google-build://conformance/hello:v1",
      pushUri: "google-build://conformance/pushed:v1",
      search: { query: "google-build://conformance", expect: "conformance/hello:v1" },
      unauthorized: {
        uri: "google-build://conformance/hello:v1",
        env: { GOOGLE_APPLICATION_CREDENTIALS: wrongFile },
      },
      notFound: { uri: "google-build://conformance/missing:v1" },
      serverError: { uri: "google-build://conformance/broken:v1", env: faulty },
      dropped: { uri: "google-build://conformance/dropped:v1", env: faulty },
      slow: {
        uri: "google-build://conformance/slow:v1",
        env: faulty,
        sent: () => proxy.faultedBytes,
      },
      secretValues: ["ya29.fake-", "eyJhbGciOiJSUzI1NiIs", pemBody],
      async stop() {
        await proxy.stop();
        await cb.stop();
        await gcs.stop();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  },
});
