/**
 * The client template, copied as a new backend the way docs/contributing-a-client.md says, then
 * run through the conformance suite against its strict fake (tests/servers/template_fake.ts). The
 * copy is registered with createApp's `factories` option, not in clients/mod.ts. This file is the
 * model for a new backend's `tests/clients/<scheme>_test.ts`.
 * @module
 */

import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "../_cli.ts";
import { runClientConformance } from "../conformance.ts";
import { startFaultProxy } from "../servers/fault_proxy.ts";
import { startTemplateFake } from "../servers/template_fake.ts";
import type { ClientFactory } from "../../clients/types.ts";

const SCHEME = "acme";
const TOKEN = "acme-token-conformance";

/** Copy templates/client as `clients/<scheme>/` and its doc page into `dir`. */
async function copyTemplate(dir: string, scheme: string): Promise<string> {
  const rootUrl = pathToFileURL(ROOT).href.replace(/\/?$/, "/");
  const fill = (text: string) =>
    text.replaceAll("__scheme__", scheme)
      .replaceAll("__SCHEME__", scheme.toUpperCase().replaceAll("-", "_"))
      .replaceAll("templateFactory", `${scheme}Factory`)
      // The copy lives outside the repository, so its relative imports point back into it.
      .replaceAll('"../../', `"${rootUrl}`);
  const source = join(ROOT, "templates", "client");
  await Deno.mkdir(join(dir, "clients", scheme), { recursive: true });
  await Deno.mkdir(join(dir, "docs", "clients"), { recursive: true });
  const mod = join(dir, "clients", scheme, "mod.ts");
  await Deno.writeTextFile(mod, fill(await Deno.readTextFile(join(source, "mod.ts"))));
  await Deno.writeTextFile(
    join(dir, "docs", "clients", `${scheme}.md`),
    fill(await Deno.readTextFile(join(source, "doc.md"))),
  );
  const entry = join(dir, "factory.ts");
  await Deno.writeTextFile(
    entry,
    `export { ${scheme}Factory as factory } from "./clients/${scheme}/mod.ts";\n`,
  );
  return pathToFileURL(entry).href;
}

const dir = await Deno.makeTempDir({ prefix: "sregistry-template-" });
const factoryModule = await copyTemplate(dir, SCHEME);
const { factory } = await import(factoryModule) as { factory: ClientFactory };

runClientConformance({
  scheme: SCHEME,
  factory,
  factoryModule,
  docsDir: join(dir, "docs", "clients"),
  capabilities: ["pull", "record"],
  start(fixture) {
    const fake = startTemplateFake(TOKEN);
    for (const name of ["hello", "broken", "dropped", "slow"]) {
      fake.put(`conformance/${name}:v1.sif`, fixture.bytes);
    }
    const proxy = startFaultProxy(fake.url, [
      { path: /\/broken:v1\.sif$/, fault: { status: 503 } },
      { path: /\/dropped:v1\.sif$/, fault: { dropAfter: 100_000 } },
      { path: /\/slow:v1\.sif$/, fault: { rate: 48 * 1024 } },
    ]);
    const faulty = { SREGISTRY_ACME_BASE: proxy.url };
    return Promise.resolve({
      env: { SREGISTRY_ACME_BASE: fake.url, SREGISTRY_ACME_TOKEN: TOKEN },
      uri: "acme://conformance/hello:v1",
      unauthorized: {
        uri: "acme://conformance/hello:v1",
        env: { SREGISTRY_ACME_TOKEN: "wrong-token" },
      },
      notFound: { uri: "acme://conformance/missing:v1" },
      serverError: { uri: "acme://conformance/broken:v1", env: faulty },
      dropped: { uri: "acme://conformance/dropped:v1", env: faulty },
      slow: { uri: "acme://conformance/slow:v1", env: faulty, sent: () => proxy.faultedBytes },
      async stop() {
        await proxy.stop();
        await fake.stop();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    });
  },
});
