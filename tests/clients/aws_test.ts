/** The aws:// client: the strict ECR GetAuthorizationToken fake, then a real htpasswd registry. */

import { requirement } from "../_cli.ts";
import { runClientConformance } from "../conformance.ts";
import { startEcrFake } from "../servers/ecr_fake.ts";
import { onPath, REGISTRY_BIN, startRegistry } from "../servers/registry.ts";
import { registryFaults, seed } from "./_registry_backend.ts";

const { ignore } = requirement(
  `${REGISTRY_BIN}, htpasswd and openssl`,
  onPath(REGISTRY_BIN) && onPath("htpasswd") && onPath("openssl"),
);

runClientConformance({
  scheme: "aws",
  capabilities: ["pull", "search", "record"],
  pulled: "archive",
  // The AWS SDK's own names, as sregistry-cli read them.
  settingExceptions: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"],
  ignore,
  async start(fixture) {
    const password = `ecr-password-${crypto.randomUUID()}`;
    const reg = await startRegistry({ mode: "htpasswd", users: { AWS: password } });
    const authorization = `Basic ${btoa(`AWS:${password}`)}`;
    await seed({ url: reg.url, authorization }, "aws", fixture.bytes, "image");
    const region = "eu-west-3";
    const ecr = startEcrFake({
      keys: { AKIDCONFORMANCE: "aws-secret-conformance" },
      region,
      password,
      registryHost: reg.host,
    });
    const proxy = registryFaults(reg.url, "aws");
    const faulty = { SREGISTRY_AWS_BASE: proxy.host };
    return {
      env: {
        SREGISTRY_AWS_BASE: reg.host,
        SREGISTRY_AWS_ZONE: region,
        SREGISTRY_AWS_ENDPOINT: ecr.endpoint,
        AWS_ACCESS_KEY_ID: "AKIDCONFORMANCE",
        AWS_SECRET_ACCESS_KEY: "aws-secret-conformance",
      },
      uri: "aws://hello:v1",
      search: { query: `aws://${reg.host}/aws/hello`, expect: "aws/hello:v1" },
      unauthorized: { uri: "aws://hello:v1", env: { AWS_SECRET_ACCESS_KEY: "wrong-secret" } },
      notFound: { uri: "aws://missing:v1" },
      serverError: { uri: "aws://broken:v1", env: faulty },
      dropped: { uri: "aws://dropped:v1", env: faulty },
      slow: { uri: "aws://slow:v1", env: faulty, sent: () => proxy.faultedBytes },
      secretValues: [password, authorization.slice(6)],
      async stop() {
        await proxy.stop();
        await ecr.stop();
        await reg.stop();
      },
    };
  },
});
