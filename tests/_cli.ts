/**
 * Run the CLI the way users and CI do: `deno run` with the permission set of deno.json ("cli"), the
 * same one the compile task bakes into the binary, in a clean environment.
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** The shared fixtures folder (`../shared/fixtures`), which a user's checkout may not have. */
export const SHARED_FIXTURES: string = join(ROOT, "..", "shared", "fixtures");

/** Whether this run is CI, where missing servers or fixtures are failures, not skips. */
export const IN_CI: boolean = Deno.env.get("CI") === "true";

/** Options of {@link runCli} and {@link spawnCli}. */
export interface CliOptions {
  /** Environment variables (the only ones besides PATH). */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** Text for standard input. */
  stdin?: string;
}

/** The outcome of one CLI run. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** The permission flags in a command line: `-P=<set>`, `--permission-set`, `-A`, `--allow-*`. */
export function permissionFlags(words: readonly string[]): string[] {
  return words.filter((w) => /^(-P|--permission-set)(=|$)|^-A$|^--allow-|^--deny-/.test(w));
}

/**
 * The permission flags of deno.json's compile task (`-P=cli`), read from it so that the tests run
 * the CLI with exactly what the binary gets.
 */
export function compilePermissionFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));
  const flags = permissionFlags(String(config.tasks?.compile ?? "").split(/\s+/));
  if (flags.length === 0) throw new Error("deno.json's compile task has no permission flags");
  return flags;
}

/**
 * `deno` arguments that run the CLI with the "cli" permission set (prefix them with
 * `Deno.execPath()` and append the command's own arguments). Benchmarks use them too.
 */
export const CLI_ARGS: readonly string[] = [
  "run",
  "-q",
  ...compilePermissionFlags(),
  "--config",
  join(ROOT, "deno.json"),
  join(ROOT, "main.ts"),
];

/** The host's Deno cache, kept when a test moves HOME so that spawned CLIs do not start cold. */
export const DENO_DIR: string = Deno.env.get("DENO_DIR") ??
  join(Deno.env.get("HOME") ?? "/root", ".cache", "deno");

function command(args: string[], opts: CliOptions): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [...CLI_ARGS, ...args],
    cwd: opts.cwd,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      NO_COLOR: "1",
      DENO_DIR,
      ...opts.env,
    },
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Run `sregistry <args>` and collect its output. */
export async function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const child = command(args, opts).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const { code, stdout, stderr } = await child.output();
  const dec = new TextDecoder();
  return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
}

/** Start `sregistry <args>` and return the process (for kill and interrupt tests). */
export function spawnCli(args: string[], opts: CliOptions = {}): Deno.ChildProcess {
  return command(args, opts).spawn();
}

/** An isolated home: its own HOME, database, storage and secrets file. */
export interface TempHome {
  /** The folder. */
  dir: string;
  /** Environment variables pointing everything into it. */
  env: Record<string, string>;
  /** Remove the folder. */
  cleanup(): Promise<void>;
}

/** Make an isolated home for one test. */
export async function tempHome(): Promise<TempHome> {
  const dir = await Deno.makeTempDir({ prefix: "sregistry-test-" });
  const env = {
    HOME: dir,
    SREGISTRY_DATABASE: join(dir, "db"),
    SREGISTRY_STORAGE: join(dir, "storage"),
    SREGISTRY_CLIENT_SECRETS: join(dir, "secrets.json"),
    SINGULARITY_CACHEDIR: join(dir, "cache"),
    SREGISTRY_TMPDIR: join(dir, "tmp"),
    DENO_DIR,
  };
  await Deno.mkdir(env.SREGISTRY_TMPDIR, { recursive: true });
  return {
    dir,
    env,
    cleanup: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}

/** Skip-or-fail for tests that need something outside the repo (a server binary, fixtures). */
export function requirement(name: string, available: boolean): { ignore: boolean } {
  if (!available && IN_CI) {
    throw new Error(`${name} is required in CI (CI=true) but is not available`);
  }
  if (!available) console.warn(`skipping: ${name} is not available here`);
  return { ignore: !available };
}

/** Whether a program is on PATH. */
export function onPath(program: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(join(dir, program)).isFile) return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}
