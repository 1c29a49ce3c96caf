/**
 * The globus:// client against the strict Globus fake (tests/servers/globus_fake.ts): a local
 * Globus Connect Personal endpoint (a configuration folder with client-id.txt and config-paths,
 * and a shared folder) and a remote endpoint (a folder), with tasks that copy real bytes. Tokens
 * are seeded in a credential store. The 5xx case goes through a fault proxy; "dropped" is a task
 * that fails; "slow" is a task that never ends (its polls count as progress).
 * @module
 */

import { join } from "node:path";
import { runClientConformance } from "../conformance.ts";
import { startFaultProxy } from "../servers/fault_proxy.ts";
import { startGlobusFake } from "../servers/globus_fake.ts";

const LOCAL = "11111111-2222-4333-8444-555555555555";
const REMOTE = "6881ae2e-db26-11e5-9772-22000b9da45e";
const CLIENT = "ae32247c-2c17-4c43-92b5-ba7fe9957dbb";
const ACCESS = "AgConformanceAccessToken0001";
const REFRESH = "rt-conformance-0001";

async function seedTokens(dir: string, tokens: Record<string, unknown>): Promise<void> {
  await Deno.mkdir(join(dir, ".sregistry"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, ".sregistry", "globus"),
    JSON.stringify({ transfer: tokens }),
    {
      mode: 0o600,
    },
  );
}

runClientConformance({
  scheme: "globus",
  capabilities: ["pull", "push", "search", "record", "delete"],
  async start(fixture) {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "sregistry-globus-" }));
    const lta = join(dir, "lta");
    const share = join(dir, "gcp-share");
    const remote = join(dir, "remote");
    const fixtureDir = await Deno.realPath(join(fixture.path, ".."));
    await Deno.mkdir(lta);
    await Deno.mkdir(share);
    await Deno.mkdir(join(remote, "shub", "conformance"), { recursive: true });
    await Deno.writeTextFile(join(lta, "client-id.txt"), `${LOCAL}\n`);
    await Deno.writeTextFile(join(lta, "config-paths"), `${share},0,1\n${fixtureDir},0,0\n`);
    for (const name of ["hello", "dropped", "slow"]) {
      await Deno.writeFile(join(remote, "shub", "conformance", `${name}:v1.sif`), fixture.bytes);
    }
    const fake = startGlobusFake();
    fake.addEndpoint({
      id: LOCAL,
      display_name: "my laptop",
      root: "/",
      home: share,
      gcp: true,
      allowed: [share, fixtureDir],
      scope: "my-endpoints",
    });
    fake.addEndpoint({
      id: REMOTE,
      display_name: "Conformance Remote",
      root: remote,
      scope: "shared-with-me",
    });
    fake.addToken(ACCESS);
    fake.addRefreshToken(CLIENT, REFRESH);
    fake.fate("/dropped:v1.sif", {
      fail: { code: "ENDPOINT_ERROR", description: "connection to the endpoint was lost" },
    });
    fake.fate("/slow:v1.sif", { hang: true });
    const good = join(dir, "cc");
    await seedTokens(good, {
      accessToken: ACCESS,
      expiresAt: Date.now() + 86_400_000,
      refreshToken: REFRESH,
    });
    const wrong = join(dir, "cc-wrong");
    await seedTokens(wrong, {
      accessToken: "AgWrongToken",
      expiresAt: Date.now() + 86_400_000,
      refreshToken: "rt-wrong",
    });
    const proxy = startFaultProxy(fake.url, [{ path: /^\/broken\//, fault: { status: 503 } }]);
    const file = (name: string) => `globus://${REMOTE}:/shub/conformance/${name}:v1.sif`;
    return {
      env: {
        SREGISTRY_GLOBUS_AUTH_BASE: fake.url,
        SREGISTRY_GLOBUS_TRANSFER_BASE: fake.transferBase,
        SREGISTRY_GLOBUS_GCP_DIR: lta,
        SREGISTRY_GLOBUS_POLL_INTERVAL: "0.05",
        SREGISTRY_CREDENTIALS_CACHE: good,
      },
      uri: file("hello"),
      pushUri: file("pushed"),
      search: { query: `globus://${REMOTE}:/shub/conformance/`, expect: "hello:v1.sif" },
      unauthorized: { uri: file("hello"), env: { SREGISTRY_CREDENTIALS_CACHE: wrong } },
      notFound: { uri: file("missing") },
      serverError: {
        uri: file("hello"),
        env: { SREGISTRY_GLOBUS_TRANSFER_BASE: `${proxy.url}/broken/v0.10` },
      },
      dropped: { uri: file("dropped") },
      slow: { uri: file("slow"), sent: () => fake.pollsFor("/slow:v1.sif") },
      secretValues: [ACCESS, REFRESH],
      async stop() {
        await proxy.stop();
        await fake.stop();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  },
});
