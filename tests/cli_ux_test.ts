/**
 * Everyday use, from the real CLI: help with examples and the global flags for every command,
 * `help <client>` and `backend ls <client>` from each factory's settings, the TLS and plain-http
 * global flags against real servers (nginx with a test CA and a self-signed leaf, a plain-http
 * distribution registry), and the `images` listing: short versions, terminal width, --format.
 */

import { assert, assertEquals, assertIncludes } from "./_assert.ts";
import { join } from "node:path";
import { COMMANDS, GLOBAL_OPTIONS } from "../cli/command_table.ts";
import { CAPABILITIES } from "../clients/types.ts";
import { cut, fitWidths, formatTable } from "../cli/render/table.ts";
import { FACTORIES } from "../clients/mod.ts";
import { type CliResult, requirement, runCli, tempHome } from "./_cli.ts";
import { nginxAvailable, startNginx } from "./servers/nginx.ts";
import {
  fakeSif,
  makeLayer,
  onPath,
  pushImage,
  pushSifArtifact,
  REGISTRY_BIN,
  startRegistry,
} from "./servers/registry.ts";

const FAST = {
  SREGISTRY_BACKOFF_MS: "10",
  SREGISTRY_STALL_TIMEOUT: "1",
  SREGISTRY_HTTP_RETRIES: "1",
};

function ok(r: CliResult): CliResult {
  assertEquals(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

Deno.test("help: every command has examples, and its --help shows them and every global flag", async () => {
  const home = await tempHome();
  try {
    for (const spec of COMMANDS) {
      assert(spec.examples.length > 0, `${spec.name} has no examples`);
      for (const e of spec.examples) assert(e.includes("sregistry"), `${spec.name}: ${e}`);
      const r = ok(await runCli([spec.name, "--help"], { env: home.env }));
      assertIncludes(r.stdout, `Examples:\n  ${spec.examples[0]}`);
      assertIncludes(r.stdout, "Global options:");
      for (const o of GLOBAL_OPTIONS) assertIncludes(r.stdout, `--${o.name}`);
    }
    const top = ok(await runCli(["--help"], { env: home.env }));
    for (const flag of ["--ca-file <pem>", "--insecure", "--plain-http"]) {
      assertIncludes(top.stdout, flag);
    }
    // `help help` is the top help, as `help --help` is, not an unknown client.
    assertEquals(ok(await runCli(["help", "help"], { env: home.env })).stdout, top.stdout);
  } finally {
    await home.cleanup();
  }
});

Deno.test("help <client>: every setting of every factory, its capabilities, nothing written", async () => {
  const home = await tempHome();
  try {
    for (const f of FACTORIES) {
      const r = ok(await runCli(["help", f.scheme], { env: home.env }));
      assertIncludes(r.stdout, `${f.scheme}: ${f.description}`);
      for (const s of f.settings) {
        assertIncludes(r.stdout, s.name);
        if (s.default) assertIncludes(r.stdout, s.default);
      }
      assertIncludes(r.stdout, "Capabilities: ");
      const j = JSON.parse(
        ok(await runCli(["help", f.scheme, "--json"], { env: home.env })).stdout,
      );
      assertEquals(j.settings.map((s: { name: string }) => s.name), f.settings.map((s) => s.name));
      assertEquals(
        j.settings.filter((s: { secret: boolean }) => s.secret).length,
        f.settings.filter((s) => s.secret).length,
      );
      assert(Array.isArray(j.capabilities), `${f.scheme}: ${j.error}`);
      for (const c of j.capabilities) assert(CAPABILITIES.includes(c), c);
      for (const s of f.settings.filter((d) => d.secret)) {
        const line = r.stdout.split("\n").find((l) => l.includes(s.name))!;
        assertIncludes(line, "(secret)");
      }
    }
    // What each client object offers, not a list kept by hand.
    const oras = JSON.parse(ok(await runCli(["--json", "help", "oras"], { env: home.env })).stdout);
    assert(oras.capabilities.includes("push") && oras.capabilities.includes("pull"));
    const http = JSON.parse(
      ok(await runCli(["help", "https", "--json"], { env: home.env })).stdout,
    );
    assertEquals(http.capabilities, ["pull"]);
    // An alias finds its client; help builds clients without touching the secrets file.
    assertIncludes(ok(await runCli(["help", "shub"], { env: home.env })).stdout, "hub: ");
    await Deno.stat(home.env.SREGISTRY_CLIENT_SECRETS).then(
      () => assert(false, "help wrote the secrets file"),
      () => {},
    );

    const typo = await runCli(["help", "dockr"], { env: home.env });
    assertEquals(typo.code, 2);
    assertIncludes(typo.stderr, "did you mean docker?");
    assertEquals((await runCli(["help", "nonsense"], { env: home.env })).code, 2);

    // backend ls <client>: the same, and what the secrets file holds for it.
    const none = ok(await runCli(["backend", "ls", "docker"], { env: home.env }));
    assertIncludes(none.stdout, "SREGISTRY_DOCKER_NOHTTPS");
    assertIncludes(none.stdout, "In the secrets file");
    ok(await runCli(["backend", "add", "docker", "PASSWORD", "hunter22"], { env: home.env }));
    const ls = ok(await runCli(["backend", "ls", "docker"], { env: home.env }));
    assertIncludes(ls.stdout, "SREGISTRY_DOCKER_PASSWORD");
    assert(!ls.stdout.includes("hunter22"), ls.stdout);
    const lsj = JSON.parse(
      ok(await runCli(["--json", "backend", "ls", "docker"], { env: home.env })).stdout,
    );
    assertEquals(lsj.settings.SREGISTRY_DOCKER_PASSWORD, "********");
    assert(lsj.client.capabilities.includes("pull"));
  } finally {
    await home.cleanup();
  }
});

const ng = requirement("nginx, openssl and htpasswd", nginxAvailable());

Deno.test({
  name: "--ca-file and --insecure: as SREGISTRY_CA_FILE and SREGISTRY_HTTPS_NOVERIFY, anywhere",
  ignore: ng.ignore,
  async fn() {
    const home = await tempHome();
    const server = await startNginx();
    try {
      await Deno.writeFile(join(server.root, "img.sif"), fakeSif(20_000));
      const env = { ...home.env, ...FAST };
      const pull = (...args: string[]) => runCli(args, { env });
      const tls = await pull("pull", `${server.https}/img.sif`, "--name", "n/tls");
      assertEquals(tls.code, 5, tls.stderr);
      ok(
        await pull(
          "pull",
          `${server.https}/img.sif`,
          "--name",
          "n/tls",
          "--ca-file",
          server.caFile,
        ),
      );
      ok(
        await pull("--ca-file", server.caFile, "pull", `${server.https}/img.sif`, "--name", "n/t2"),
      );
      ok(
        await pull(
          `--ca-file=${server.caFile}`,
          "pull",
          `${server.https}/img.sif`,
          "--name",
          "n/t3",
        ),
      );
      // The flag wins over the environment's CA file.
      const over = await runCli(
        ["pull", `${server.https}/img.sif`, "--name", "n/t4", "--ca-file", server.caFile],
        { env: { ...env, SREGISTRY_CA_FILE: join(home.dir, "missing.pem") } },
      );
      ok(over);
      const missing = await pull("pull", `${server.https}/img.sif`, "--ca-file", "nope.pem");
      assertEquals(missing.code, 2, missing.stderr);
      assertIncludes(missing.stderr, "--ca-file");

      const self = await pull("pull", `${server.selfSigned}/img.sif`, "--name", "n/self");
      assertEquals(self.code, 5);
      assert(!self.stderr.includes("TESTING USE ONLY"), self.stderr);
      const nv = ok(
        await pull("--insecure", "pull", `${server.selfSigned}/img.sif`, "--name", "n/self"),
      );
      assertIncludes(nv.stderr, "Verify of certificates disabled! ::TESTING USE ONLY::");
      const after = ok(
        await pull("pull", `${server.selfSigned}/img.sif`, "--name", "n/s2", "--insecure"),
      );
      assertIncludes(after.stderr, "::TESTING USE ONLY::");
    } finally {
      await server.stop();
      await home.cleanup();
    }
  },
});

const reg = requirement(REGISTRY_BIN, onPath(REGISTRY_BIN));

Deno.test({
  name: "--plain-http: every client's NOHTTPS reads true, over the environment",
  ignore: reg.ignore,
  async fn() {
    const home = await tempHome();
    const registry = await startRegistry();
    try {
      const sif = fakeSif(8192);
      await pushSifArtifact({ url: registry.url }, "demo/hello", "v1", sif);
      // https forced by the environment: the plain-http registry cannot answer.
      const env = { ...home.env, ...FAST, SREGISTRY_ORAS_NOHTTPS: "false" };
      const image = `oras://${registry.host}/demo/hello:v1`;
      const https = await runCli(["pull", image, "--name", "demo/hello:1"], { env });
      assertEquals(https.code, 5, https.stderr);
      assertIncludes(https.stderr, "plain HTTP");
      ok(
        await runCli(["pull", image, "--plain-http", "--name", "demo/hello:1"], { env }),
      );
      const row = JSON.parse(ok(await runCli(["inspect", "demo/hello:1"], { env })).stdout);
      assertEquals(row.size, sif.length);
      // Before the command too, and for another registry client's setting (docker's).
      await pushImage({ url: registry.url }, "demo/img", "v1", [
        await makeLayer({ "hello.txt": "hi" }),
      ]);
      const denv = { ...env, SREGISTRY_DOCKER_NOHTTPS: "false" };
      const ref = `docker://${registry.host}/demo/img:v1`;
      const dhttps = await runCli(["record", ref], { env: denv });
      assertEquals(dhttps.code, 5, dhttps.stderr);
      ok(await runCli(["--plain-http", "record", ref], { env: denv }));
    } finally {
      await registry.stop();
      await home.cleanup();
    }
  },
});

Deno.test("images: short versions, --no-trunc, fits COLUMNS, --format templates", async () => {
  const home = await tempHome();
  const cli = (args: string[], extra: Record<string, string> = {}) =>
    runCli(args, { env: { ...home.env, ...extra }, cwd: home.dir });
  try {
    const file = join(home.dir, "a.sif");
    await Deno.writeTextFile(file, "image a");
    ok(await cli(["add", "--copy", file, "--name", "vsoch/a-rather-long-image-name-here:latest"]));
    ok(await cli(["add", "--copy", file, "--name", "vsoch/b:v1@1.0"]));
    const json = JSON.parse(ok(await cli(["images", "--json"])).stdout);
    const a = json.find((r: { name: string }) => r.name.startsWith("a-rather"));
    assertEquals(a.version.length, 64, "--json stays full");

    const short = ok(await cli(["images"])).stdout;
    assertIncludes(short, `:latest@${a.version.slice(0, 12)}\n`);
    assert(!short.includes(a.version), short);
    assertIncludes(short, "vsoch/b:v1@1.0");
    assertIncludes(ok(await cli(["images", "--no-trunc"])).stdout, `@${a.version}`);
    // The short version finds its image, as docker's short ids do.
    const shortName = `vsoch/a-rather-long-image-name-here:latest@${a.version.slice(0, 12)}`;
    assertIncludes(ok(await cli(["get", shortName])).stdout, a.version);
    assertEquals(JSON.parse(ok(await cli(["inspect", shortName])).stdout).version, a.version);

    const narrow = ok(await cli(["images"], { COLUMNS: "50" })).stdout;
    const lines = narrow.trimEnd().split("\n");
    for (const l of lines) assert(l.length <= 50, `${l.length}: ${l}`);
    assert(lines.some((l) => l.endsWith("…")), narrow);
    assertIncludes(lines[1], "[uri]");
    // --no-trunc cuts nothing, as docker's: not even to fit the width.
    const uncut = ok(await cli(["images", "--no-trunc"], { COLUMNS: "50" })).stdout;
    assertIncludes(uncut, `vsoch/a-rather-long-image-name-here:latest@${a.version}\n`);
    const uncutTable = ok(
      await cli(["images", "--no-trunc", "--format", "table {{.Uri}}"], { COLUMNS: "20" }),
    ).stdout;
    assertIncludes(uncutTable, `@${a.version}\n`);
    const cutTable = ok(await cli(["images", "--format", "table {{.Uri}}"], { COLUMNS: "20" }));
    for (const l of cutTable.stdout.trimEnd().split("\n")) assert(l.length <= 20, l);
    // No limit without a terminal or COLUMNS, whatever the length.
    assert(ok(await cli(["images", "--no-trunc"])).stdout.split("\n").some((l) => l.length > 80));

    const fmt = ok(await cli(["images", "--format", "{{.Name}}:{{.Tag}} {{.Version}} {{.Size}}"]));
    assertEquals(fmt.stdout.trimEnd().split("\n").sort(), [
      `vsoch/a-rather-long-image-name-here:latest ${a.version.slice(0, 12)} 7B`,
      "vsoch/b:v1 1.0 7B",
    ]);
    const full = ok(await cli(["images", "--no-trunc", "--format", "{{.Version}}\\t{{.Digest}}"]));
    assertIncludes(full.stdout, `${a.version}\tsha256:${a.version}`);
    const table = ok(
      await cli(["images", "--format", "table {{.Name}}\\t{{.Tag}}\\t{{.Client}}", "vsoch/b"]),
    );
    assertEquals(table.stdout.trimEnd().split("\n"), [
      "NAME     TAG  CLIENT",
      "vsoch/b  v1   local",
    ]);
    const each = ok(await cli(["images", "--format", "{{json .}}"])).stdout.trimEnd().split("\n");
    assertEquals(
      each.map((l) => JSON.parse(l).uri).sort(),
      json.map((r: { uri: string }) => r.uri).sort(),
    );

    const bad = await cli(["images", "--format", "{{.Nmae}}"]);
    assertEquals(bad.code, 2);
    assertEquals(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    for (
      const f of [
        "{{.Name}}",
        "{{.Tag}}",
        "{{.Version}}",
        "{{.Size}}",
        "{{.Uri}}",
        "{{.Created}}",
        "{{.Platform}}",
      ]
    ) {
      assertIncludes(bad.stderr, f);
    }
    assertEquals((await cli(["images", "--format", "{{.Name"])).code, 2);
    assertEquals((await cli(["images", "--format", "{{index .}}"])).code, 2);
  } finally {
    await home.cleanup();
  }
});

Deno.test("table fitting: the widest column is cut with …, the others kept", () => {
  assertEquals(fitWidths([3, 20, 8], 40), [3, 20, 8]);
  assertEquals(fitWidths([3, 20, 8], 30), [3, 15, 8]);
  assertEquals(fitWidths([3, 20, 8], 5), [3, 10, 8], "not below 10 columns");
  assertEquals(fitWidths([3, 20, 8], undefined), [3, 20, 8]);
  assertEquals([cut("abcdef", 4), cut("abc", 4)], ["abc…", "abc"]);
  const t = formatTable([["a", "a-very-long-cell-value", "x"]], ["A", "B", "C"], { maxWidth: 20 });
  assertEquals(t.split("\n"), ["A  B               C", "a  a-very-long-c…  x"]);
  for (const l of t.split("\n")) assert(l.length <= 20, l);
});

Deno.test("global flags: a value flag without its value is a usage error", async () => {
  const home = await tempHome();
  try {
    for (const args of [["--ca-file"], ["images", "--ca-file"], ["pull", "x", "--ca-file"]]) {
      const r = await runCli(args, { env: home.env });
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertIncludes(r.stderr, "--ca-file needs a value");
    }
  } finally {
    await home.cleanup();
  }
});
