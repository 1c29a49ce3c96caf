/**
 * registry:// against the strict Singularity Registry Server fake
 * (tests/servers/sregistry_server_fake.ts), through the conformance suite: push (signed),
 * search, pull, record, and the error codes (a private collection with a wrong token is exit 4).
 * The fixed bugs of the original are tested in tests/registry_test.ts.
 * @module
 */

import { runClientConformance } from "../conformance.ts";
import { startFaultProxy } from "../servers/fault_proxy.ts";
import { startSregistryServerFake } from "../servers/sregistry_server_fake.ts";

const USER = "vanessa";
const TOKEN = "registry-token-conformance-0123456789";

runClientConformance({
  scheme: "registry",
  capabilities: ["pull", "push", "search", "record", "delete", "build"],
  start(fixture) {
    const fake = startSregistryServerFake({ users: [{ username: USER, token: TOKEN }] });
    fake.put("conformance/hello:latest", fixture.bytes);
    fake.put("conformance/broken:latest", fixture.bytes);
    fake.put("private/hello:latest", fixture.bytes, { private: true });
    const dropped = fake.put("conformance/dropped:latest", fixture.bytes);
    const slow = fake.put("conformance/slow:latest", fixture.bytes);
    const proxy = startFaultProxy(fake.url, [
      { path: /\/api\/container\/conformance\/broken:latest$/, fault: { status: 503 } },
      { path: new RegExp(`^/containers/${dropped.id}/download/`), fault: { dropAfter: 100_000 } },
      { path: new RegExp(`^/containers/${slow.id}/download/`), fault: { rate: 48 * 1024 } },
    ]);
    dropped.domain = proxy.url;
    slow.domain = proxy.url;
    return Promise.resolve({
      // The server's root, not its /api: the client finds the API and the upload endpoint.
      env: {
        SREGISTRY_REGISTRY_BASE: fake.url,
        SREGISTRY_REGISTRY_USERNAME: USER,
        SREGISTRY_REGISTRY_TOKEN: TOKEN,
      },
      uri: "registry://conformance/hello:latest",
      pushUri: "registry://conformance/pushed:v1",
      search: { query: "registry://conformance", expect: "conformance/hello" },
      unauthorized: {
        uri: "registry://private/hello:latest",
        env: { SREGISTRY_REGISTRY_TOKEN: "wrong-token-0123456789" },
      },
      notFound: { uri: "registry://conformance/missing:latest" },
      serverError: {
        uri: "registry://conformance/broken:latest",
        env: { SREGISTRY_REGISTRY_BASE: `${proxy.url}/api` },
      },
      dropped: { uri: "registry://conformance/dropped:latest" },
      slow: { uri: "registry://conformance/slow:latest", sent: () => proxy.faultedBytes },
      async stop() {
        await proxy.stop();
        await fake.stop();
      },
    });
  },
});
