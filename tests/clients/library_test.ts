/**
 * library:// through the suite, twice: the strict library fake redirecting to a real registry (the
 * OCI redirect), and the same fake without it, whose legacy transfers are presigned URLs on the
 * real S3 API of a Swift server.
 */

import { requirement } from "../_cli.ts";
import { runClientConformance } from "../conformance.ts";
import { onPath, REGISTRY_BIN, startRegistry } from "../servers/registry.ts";
import { startSwift, swiftAvailable } from "../servers/swift.ts";
import { startLibraryFake } from "../servers/library_fake.ts";
import { registryFaults, seed } from "./_registry_backend.ts";

const { ignore } = requirement(REGISTRY_BIN, onPath(REGISTRY_BIN));
const swift = requirement("Swift", swiftAvailable());
const TOKEN = "library-test-token-0123456789";
const CAPABILITIES = ["pull", "push", "search", "record", "delete"] as const;

runClientConformance({
  scheme: "library",
  capabilities: [...CAPABILITIES],
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

runClientConformance({
  scheme: "library",
  capabilities: [...CAPABILITIES],
  ignore: swift.ignore,
  async start(fixture) {
    const s = await startSwift();
    const images = Object.fromEntries(
      ["hello", "broken", "dropped", "slow"].map((n) => [n, fixture.bytes]),
    );
    const lib = await startLibraryFake({
      token: TOKEN,
      namespace: "legacy",
      images,
      ociRedirect: false,
      s3: s.s3,
      faults: true,
    }).catch(async (e) => {
      await s.stop();
      throw e;
    });
    const at = (name: string) => ({ uri: `library://${lib.host}/lib/legacy/${name}:v1` });
    return {
      env: { SREGISTRY_LIBRARY_TOKEN: TOKEN, SREGISTRY_LIBRARY_BASE: lib.url },
      uri: at("hello").uri,
      pushUri: at("pushed").uri,
      search: { query: "library://hello", expect: "lib/legacy/hello" },
      unauthorized: { ...at("hello"), env: { SREGISTRY_LIBRARY_TOKEN: "wrong" } },
      notFound: at("missing"),
      serverError: at("broken"),
      dropped: at("dropped"),
      slow: { ...at("slow"), sent: () => lib.slowSent },
      async stop() {
        if (lib.leakedAuth.length) throw new Error(`the object store got ${lib.leakedAuth}`);
        await lib.stop();
        await s.stop();
      },
    };
  },
});
