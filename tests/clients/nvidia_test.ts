/** The nvidia:// client against the strict NGC auth fake in front of a real registry. */

import { requirement } from "../_cli.ts";
import { runClientConformance } from "../conformance.ts";
import { startNgcFake } from "../servers/ngc_fake.ts";
import { onPath, REGISTRY_BIN, startRegistry } from "../servers/registry.ts";
import { registryFaults, seed } from "./_registry_backend.ts";

const { ignore } = requirement(REGISTRY_BIN, onPath(REGISTRY_BIN));
const KEY = "ngc-api-key-conformance";

runClientConformance({
  scheme: "nvidia",
  capabilities: ["pull", "search", "record"],
  pulled: "archive",
  ignore,
  async start(fixture) {
    const reg = await startRegistry();
    await seed({ url: reg.url }, "nvidia", fixture.bytes, "image");
    const ngc = startNgcFake(reg.url, KEY);
    const proxy = registryFaults(`http://${ngc.host}`, "nvidia");
    const faulty = { SREGISTRY_NVIDIA_BASE: proxy.host };
    return {
      env: { SREGISTRY_NVIDIA_BASE: ngc.host, SREGISTRY_NVIDIA_TOKEN: KEY },
      uri: "nvidia://hello:v1",
      search: { query: `nvidia://${ngc.host}/nvidia/hello`, expect: "nvidia/hello:v1" },
      unauthorized: { uri: "nvidia://hello:v1", env: { SREGISTRY_NVIDIA_TOKEN: "wrong-key" } },
      notFound: { uri: "nvidia://missing:v1" },
      serverError: { uri: "nvidia://broken:v1", env: faulty },
      dropped: { uri: "nvidia://dropped:v1", env: faulty },
      slow: { uri: "nvidia://slow:v1", env: faulty, sent: () => proxy.faultedBytes },
      secretValues: [btoa(`$oauthtoken:${KEY}`)],
      async stop() {
        await proxy.stop();
        await ngc.stop();
        await reg.stop();
      },
    };
  },
});
