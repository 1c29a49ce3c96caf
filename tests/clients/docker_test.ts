/** The docker:// client against the distribution registry with htpasswd auth, through the suite. */

import { requirement } from "../_cli.ts";
import { runClientConformance } from "../conformance.ts";
import { onPath, REGISTRY_BIN, startRegistry } from "../servers/registry.ts";
import { registryFaults, seed } from "./_registry_backend.ts";

const { ignore } = requirement(
  `${REGISTRY_BIN}, htpasswd and openssl`,
  onPath(REGISTRY_BIN) && onPath("htpasswd") && onPath("openssl"),
);

runClientConformance({
  scheme: "docker",
  capabilities: ["pull", "search", "record"],
  // No singularity here: the pull is an OCI archive built from the layers, not the fixture itself.
  pulled: "archive",
  settingExceptions: ["SREGISTRY_DOCKERHUB_SECRETS"],
  ignore,
  async start(fixture) {
    const reg = await startRegistry({ mode: "htpasswd" });
    const authorization = `Basic ${btoa("testuser:testpass")}`;
    await seed({ url: reg.url, authorization }, "conformance", fixture.bytes, "image");
    const proxy = registryFaults(reg.url, "conformance");
    const at = (host: string, name: string) => ({ uri: `docker://${host}/conformance/${name}:v1` });
    return {
      env: { SREGISTRY_DOCKER_USERNAME: "testuser", SREGISTRY_DOCKER_PASSWORD: "testpass" },
      uri: at(reg.host, "hello").uri,
      search: {
        query: `docker://${reg.host}/conformance/hello`,
        expect: "conformance/hello:v1",
      },
      unauthorized: { ...at(reg.host, "hello"), env: { SREGISTRY_DOCKER_PASSWORD: "wrong" } },
      notFound: at(reg.host, "missing"),
      serverError: at(proxy.host, "broken"),
      dropped: at(proxy.host, "dropped"),
      slow: { ...at(proxy.host, "slow"), sent: () => proxy.faultedBytes },
      secretValues: [authorization.slice(6)],
      async stop() {
        await proxy.stop();
        await reg.stop();
      },
    };
  },
});
