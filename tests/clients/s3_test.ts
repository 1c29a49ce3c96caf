/** The s3:// client against a real Swift with its s3api middleware (SigV4 checked), through the suite. */

import { requirement } from "../_cli.ts";
import { runClientConformance } from "../conformance.ts";
import { startS3FaultProxy } from "../servers/s3_fault_proxy.ts";
import { startSwift, swiftAvailable } from "../servers/swift.ts";

const { ignore } = requirement(
  "Swift and memcached (apt-get install swift swift-proxy swift-object swift-container swift-account memcached)",
  swiftAvailable(),
);

const BUCKET = "conformance";

runClientConformance({
  scheme: "s3",
  capabilities: ["pull", "push", "search", "record", "delete"],
  settingExceptions: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"],
  ignore,
  async start(fixture) {
    const swift = await startSwift();
    await swift.createBucket(BUCKET);
    // Seeded through the Swift API as sregistry-cli left them: its metadata, no digest.
    const meta = {
      "X-Object-Meta-Sizemb": String(Math.floor(fixture.bytes.length / 2 ** 20)),
      "X-Object-Meta-Client": "sregistry",
      "X-Object-Meta-Type": "container",
    };
    for (const name of ["hello", "broken", "dropped", "slow"]) {
      await swift.putObject(BUCKET, `conformance/${name}:v1.sif`, fixture.bytes, meta);
    }
    const proxy = await startS3FaultProxy(swift.url, [
      { path: /\/broken%3Av1\.sif$/, fault: { status: 503 } },
      { method: "GET", path: /\/dropped%3Av1\.sif$/, fault: { dropAfter: 20_000 } },
      { method: "GET", path: /\/slow%3Av1\.sif$/, fault: { rate: 24 * 1024 } },
    ]);
    const env = {
      SREGISTRY_S3_BASE: swift.s3.endpoint,
      SREGISTRY_S3_BUCKET: BUCKET,
      AWS_ACCESS_KEY_ID: swift.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: swift.s3.secretAccessKey,
      AWS_DEFAULT_REGION: swift.s3.region,
    };
    const viaProxy = { SREGISTRY_S3_BASE: proxy.url };
    return {
      env,
      uri: "s3://conformance/hello:v1",
      pushUri: "s3://conformance/pushed:v1",
      search: { query: "s3://conformance/hello", expect: "conformance/hello:v1" },
      unauthorized: { uri: "s3://conformance/hello:v1", env: { AWS_SECRET_ACCESS_KEY: "wrong" } },
      notFound: { uri: "s3://conformance/missing:v1" },
      serverError: { uri: "s3://conformance/broken:v1", env: viaProxy },
      dropped: { uri: "s3://conformance/dropped:v1", env: viaProxy },
      slow: { uri: "s3://conformance/slow:v1", env: viaProxy, sent: () => proxy.faultedBytes },
      async stop() {
        await proxy.stop();
        await swift.stop();
      },
    };
  },
});
