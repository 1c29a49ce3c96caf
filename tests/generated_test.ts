/**
 * What lists clients or commands cannot drift from the code: the Singularity apps and the README's
 * client and command tables are what `deno task gen` (tools/gen_docs.ts) writes from clients/mod.ts
 * and cli/command_table.ts, every
 * command in cli/command_table.ts has its page in docs/commands/, and every registered client its
 * page in docs/clients/.
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { ROOT } from "./_cli.ts";
import { FACTORIES } from "../clients/mod.ts";
import { robotPng } from "../tools/make_robot.ts";
import { COMMANDS } from "../cli/command_table.ts";
import { commandNames } from "../cli/program.ts";
import {
  clientRows,
  docsPage,
  FILES,
  generate,
  markers,
  withoutStrayApps,
} from "../tools/gen_docs.ts";

const rows = clientRows();
const current = {
  singularity: Deno.readTextFileSync(FILES.singularity),
  readme: Deno.readTextFileSync(FILES.readme),
};
const expected = await generate(current, rows);

Deno.test("generated: the Singularity apps are up to date (run deno task gen)", () => {
  const { begin, end } = markers("apps");
  assert(current.singularity.includes(begin) && current.singularity.includes(end), "markers");
  assert(
    expected.singularity === current.singularity,
    "Singularity is out of date with clients/mod.ts: run deno task gen",
  );
});

Deno.test("generated: the README's client table is up to date (run deno task gen)", () => {
  const { begin, end } = markers("clients");
  assert(current.readme.includes(begin) && current.readme.includes(end), "markers");
  assert(
    expected.readme === current.readme,
    "README.md's client table is out of date with clients/mod.ts: run deno task gen",
  );
  // Each client's row links its page and marks exactly its capabilities.
  for (const row of rows) {
    const line = current.readme.split("\n").find((l) => l.startsWith(`| [${row.factory.scheme}](`));
    assert(line, `no README row for ${row.factory.scheme}`);
    assertEquals(line.split("|").filter((c) => c.trim() === "✓").length, row.capabilities.length);
  }
});

Deno.test("generated: the README's command table is up to date (run deno task gen)", () => {
  const { begin, end } = markers("commands");
  assert(current.readme.includes(begin) && current.readme.includes(end), "markers");
  for (const c of COMMANDS) {
    assert(
      current.readme.includes(`| [${c.name}](docs/commands/${c.name}.md)`),
      `README.md's command table lacks ${c.name}: run deno task gen`,
    );
  }
});

Deno.test("generated: the built-in thumbnail is tools/make_robot.ts's, wide enough for Drive", () => {
  const png = Deno.readFileSync(join(ROOT, "core", "data", "robot.png"));
  assertEquals(png, robotPng(), "run deno run -W tools/make_robot.ts");
  const view = new DataView(png.buffer, png.byteOffset);
  // IHDR width and height: Drive ignores thumbnails under 220 px wide, and refuses over 2 MB.
  assert(view.getUint32(16) >= 220 && view.getUint32(20) >= 220, "at least 220 px");
  assert(png.length < 2 * 1024 * 1024);
});

Deno.test("generated: a hand-written app outside the markers is replaced on the next gen", async () => {
  const { end } = markers("apps");
  const merged =
    current.singularity.replace(end, `${end}\n%appenv extra\n    SREGISTRY_CLIENT=extra\n`) +
    '\n%apphelp gitlab\n    GitLab.\n%apprun gitlab\n    exec sregistry "$@"\n';
  const { begin } = markers("apps");
  assertEquals(withoutStrayApps(merged, begin, end), current.singularity);
  assertEquals(
    (await generate({ ...current, singularity: merged }, rows)).singularity,
    current.singularity,
  );
});

Deno.test("generated: capabilities are read from the client objects", () => {
  assertEquals(rows.map((r) => r.factory.scheme), FACTORIES.map((f) => f.scheme));
  for (const r of rows) assert(r.capabilities.includes("pull"), `${r.factory.scheme} cannot pull`);
  const https = rows.find((r) => r.factory.scheme === "https");
  assert(https && !https.capabilities.includes("push"), "https pushes?");
});

Deno.test("docs: every command in the command table, and help, has docs/commands/<command>.md", () => {
  // commandNames(): the table's commands and `help`, as the top help lists them.
  const names = commandNames();
  assert(names.includes("help") && names.length === COMMANDS.length + 1, `${names}`);
  const missing = names.map((n) => `docs/commands/${n}.md`)
    .filter((p) => !existsSync(join(ROOT, p)));
  assertEquals(missing, [], "write these pages");
  for (const n of names) {
    const text = Deno.readTextFileSync(join(ROOT, "docs", "commands", `${n}.md`));
    assert(text.includes(`sregistry ${n}`), `docs/commands/${n}.md shows no usage`);
  }
});

Deno.test("docs: every registered client has docs/clients/<scheme>.md", () => {
  const missing = FACTORIES.map(docsPage).filter((p) => !existsSync(join(ROOT, p)));
  assertEquals(missing, [], "write these pages");
});

Deno.test("docs: relative links in README.md and docs/ point at files that exist", () => {
  const files = ["README.md", ...markdownIn("docs")];
  const broken: string[] = [];
  for (const file of files) {
    const text = Deno.readTextFileSync(join(ROOT, file));
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1].split("#")[0];
      if (target === "" || /^[a-z]+:/.test(target)) continue;
      if (!existsSync(join(ROOT, file, "..", target))) broken.push(`${file}: ${m[1]}`);
    }
  }
  assertEquals(broken, []);
});

function markdownIn(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(join(ROOT, dir))) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...markdownIn(p));
    else if (e.name.endsWith(".md")) out.push(p);
  }
  return out;
}
