/**
 * Run every benchmark in bench/ in turn (`deno task bench`); each writes its own section of
 * bench/RESULTS.md. Pass names to run only some: `deno task bench sif_inspect`.
 * @module
 */

const here = new URL("./", import.meta.url);
const wanted = Deno.args;
const scripts = [...Deno.readDirSync(here)]
  .map((e) => e.name)
  .filter((n) => n.endsWith(".ts") && n !== "run.ts" && !n.startsWith("_"))
  .filter((n) => wanted.length === 0 || wanted.some((w) => n.startsWith(w)))
  .sort();

let failed = 0;
for (const script of scripts) {
  console.log(`\n== bench/${script}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(script, here).pathname],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) {
    console.error(`bench/${script} failed with exit code ${code}`);
    failed++;
  }
}
Deno.exit(failed ? 1 : 0);
