/** The oras:// client against the distribution registry with htpasswd auth, through the suite. */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { requirement, SHARED_FIXTURES } from "../_cli.ts";
import { runClientConformance } from "../conformance.ts";
import { onPath, REGISTRY_BIN, startRegistry } from "../servers/registry.ts";
import { registryFaults, seed } from "./_registry_backend.ts";

const { ignore } = requirement(
  `${REGISTRY_BIN}, htpasswd and openssl`,
  onPath(REGISTRY_BIN) && onPath("htpasswd") && onPath("openssl"),
);

// A real SIF written by the reference implementation, read in place (never copied), when present.
const REAL_SIF = join(SHARED_FIXTURES, "sif", "images", "one-group.sif");

runClientConformance({
  scheme: "oras",
  fixture: existsSync(REAL_SIF) ? REAL_SIF : undefined,
  capabilities: ["pull", "push", "search", "delete"],
  ignore,
  async start(fixture) {
    const reg = await startRegistry({ mode: "htpasswd" });
    const authorization = `Basic ${btoa("testuser:testpass")}`;
    await seed({ url: reg.url, authorization }, "conformance", fixture.bytes, "sif");
    const proxy = registryFaults(reg.url, "conformance");
    const at = (host: string, name: string) => ({ uri: `oras://${host}/conformance/${name}:v1` });
    return {
      env: { SREGISTRY_ORAS_USERNAME: "testuser", SREGISTRY_ORAS_PASSWORD: "testpass" },
      uri: at(reg.host, "hello").uri,
      pushUri: at(reg.host, "pushed").uri,
      search: { query: `oras://${reg.host}/conformance/hello`, expect: "conformance/hello:v1" },
      unauthorized: { ...at(reg.host, "hello"), env: { SREGISTRY_ORAS_PASSWORD: "wrong" } },
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
