/**
 * The dropbox:// client against the strict Dropbox fake (tests/servers/dropbox_fake.ts). Faults
 * are routed by a base-URL prefix (`/broken`, `/dropped`, `/slow`) that the fake ignores.
 * @module
 */

import { runClientConformance } from "../conformance.ts";
import { startFaultProxy } from "../servers/fault_proxy.ts";
import { startDropboxFake } from "../servers/dropbox_fake.ts";

const TOKEN = "sl.conformance-token";

runClientConformance({
  scheme: "dropbox",
  capabilities: ["pull", "push", "search", "record", "delete", "share"],
  start(fixture) {
    const fake = startDropboxFake();
    fake.addToken(TOKEN);
    for (const name of ["hello", "broken", "dropped", "slow"]) {
      fake.put(`/conformance/${name}:v1.sif`, fixture.bytes);
    }
    const proxy = startFaultProxy(fake.url, [
      { path: /^\/broken\/2\/files\/download/, fault: { status: 503 } },
      { path: /^\/dropped\/2\/files\/download/, fault: { dropAfter: 100_000 } },
      { path: /^\/slow\/2\/files\/download/, fault: { rate: 48 * 1024 } },
    ]);
    const via = (prefix: string) => ({ SREGISTRY_DROPBOX_CONTENT_BASE: `${proxy.url}/${prefix}` });
    return Promise.resolve({
      env: {
        SREGISTRY_DROPBOX_TOKEN: TOKEN,
        SREGISTRY_DROPBOX_API_BASE: fake.url,
        SREGISTRY_DROPBOX_CONTENT_BASE: fake.url,
      },
      uri: "dropbox://conformance/hello:v1",
      pushUri: "dropbox://conformance/pushed:v1",
      search: { query: "dropbox://conformance", expect: "conformance/hello:v1" },
      unauthorized: {
        uri: "dropbox://conformance/hello:v1",
        env: { SREGISTRY_DROPBOX_TOKEN: "sl.wrong-token" },
      },
      notFound: { uri: "dropbox://conformance/missing:v1" },
      serverError: { uri: "dropbox://conformance/broken:v1", env: via("broken") },
      dropped: { uri: "dropbox://conformance/dropped:v1", env: via("dropped") },
      slow: {
        uri: "dropbox://conformance/slow:v1",
        env: via("slow"),
        sent: () => proxy.faultedBytes,
      },
      secretValues: [TOKEN],
      async stop() {
        await proxy.stop();
        await fake.stop();
      },
    });
  },
});
