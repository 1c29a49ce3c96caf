/** library:// through the suite: the strict library fake redirecting to a real registry. */

import { requirement } from "../_cli.ts";
import { runClientConformance } from "../conformance.ts";
import { onPath, REGISTRY_BIN, startRegistry } from "../servers/registry.ts";
import { startLibraryFake } from "../servers/library_fake.ts";
import { registryFaults, seed } from "./_registry_backend.ts";

const { ignore } = requirement(REGISTRY_BIN, onPath(REGISTRY_BIN));
const TOKEN = "library-test-token-0123456789";

runClientConformance({
  scheme: "library",
  capabilities: ["pull", "push", "search", "record", "delete"],
  ignore,
  async start(fixture) {
    const reg = await startRegistry();
    await seed({ url: reg.url }, "conformance", fixture.bytes, "sif");
    const proxy = registryFaults(reg.url, "conformance");
    const lib = await startLibraryFake({
      token: TOKEN,
      registry: reg.url,
      faultRegistry: proxy.url,
      namespace: "conformance",
      images: { hello: fixture.bytes },
    });
    const at = (name: string) => ({ uri: `library://${lib.host}/lib/conformance/${name}:v1` });
    return {
      env: { SREGISTRY_LIBRARY_TOKEN: TOKEN, SREGISTRY_LIBRARY_BASE: lib.url },
      uri: at("hello").uri,
      pushUri: at("pushed").uri,
      search: { query: "library://hello", expect: "lib/conformance/hello" },
      unauthorized: { ...at("hello"), env: { SREGISTRY_LIBRARY_TOKEN: "wrong" } },
      notFound: at("missing"),
      serverError: at("broken"),
      dropped: at("dropped"),
      slow: { ...at("slow"), sent: () => proxy.faultedBytes },
      secretValues: ["registry-token-from-library"],
      async stop() {
        await lib.stop();
        await proxy.stop();
        await reg.stop();
      },
    };
  },
});
