import { assertEquals, assertIncludes } from "./_assert.ts";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { main } from "../main.ts";
import { FACTORIES, findFactory } from "../clients/mod.ts";
import type { ClientFactory } from "../clients/types.ts";
import { memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";
import { ROOT, tempHome } from "./_cli.ts";

/** Copy the template as a new backend, the way docs/contributing-a-client.md says. */
async function copyTemplate(dir: string, scheme: string): Promise<ClientFactory> {
  const text = await Deno.readTextFile(join(ROOT, "templates", "client", "mod.ts"));
  const rootUrl = pathToFileURL(ROOT).href.replace(/\/?$/, "/");
  const code = text
    .replaceAll("__scheme__", scheme)
    .replaceAll("__SCHEME__", scheme.toUpperCase())
    .replaceAll("templateFactory", "newFactory")
    // The copy lives outside the repo, so its relative imports point back into it.
    .replaceAll('"../../', `"${rootUrl}`);
  const file = join(dir, "clients", scheme, "mod.ts");
  await Deno.mkdir(join(dir, "clients", scheme), { recursive: true });
  await Deno.writeTextFile(file, code);
  return (await import(pathToFileURL(file).href)).newFactory;
}

Deno.test("template: a copied client registers and its stubs report exit 7", async () => {
  const home = await tempHome();
  try {
    const factory = await copyTemplate(home.dir, "acme");
    const factories = [...FACTORIES, factory];
    assertEquals(findFactory("acme", factories).scheme, "acme");
    const env = envFrom(home.env);
    for (
      const [args, capability] of [
        [["pull", "acme://demo/x:1"], "pull images"],
        [["search", "acme://demo"], "search for images"],
        [["share", "acme://demo/x:1"], "share images"],
      ] as const
    ) {
      const stdout = memorySink();
      const stderr = memorySink();
      const code = await main([...args], { env, factories, stdout, stderr });
      assertEquals(code, 7, stderr.text());
      assertIncludes(stderr.text(), `The acme client cannot ${capability} yet`);
      assertEquals(stdout.text(), "");
    }
    // A capability the template does not stub (delete) is reported by sregistry itself.
    const stderr = memorySink();
    const code = await main(["delete", "--force", "acme://demo/x:1"], {
      env,
      factories,
      stdout: memorySink(),
      stderr,
    });
    assertEquals(code, 7);
    assertIncludes(stderr.text(), "The acme client cannot delete images");
    // And `backend ls` lists it.
    const out = memorySink();
    assertEquals(
      await main(["backend", "ls", "--json"], {
        env,
        factories,
        stdout: out,
        stderr: memorySink(),
      }),
      0,
    );
    const rows = JSON.parse(out.text()) as { client: string }[];
    assertEquals(rows.some((r) => r.client === "acme"), true);
  } finally {
    await home.cleanup();
  }
});
