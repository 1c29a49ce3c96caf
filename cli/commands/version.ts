/**
 * `sregistry version`: the version, the Deno version and the SQLite version, or the same as JSON
 * with `--json`. node:sqlite is imported here, on use, so that nothing else `version` loads pulls
 * it in (tests/compile_graph_test.ts checks the static graph; `-V` prints the version alone).
 * @module
 */

import type { App } from "../app.ts";
import { VERSION } from "../../core/version.ts";

/** The SQLite library's version, from an in-memory database; undefined when it cannot be read. */
export async function sqliteVersion(): Promise<string | undefined> {
  try {
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(":memory:");
    try {
      const row = db.prepare("select sqlite_version() as v").get() as { v?: unknown } | undefined;
      return typeof row?.v === "string" ? row.v : undefined;
    } finally {
      db.close();
    }
  } catch {
    return undefined;
  }
}

/** Print the versions. */
export async function versionCommand(app: App): Promise<void> {
  const sqlite = await sqliteVersion();
  const versions = {
    version: VERSION,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    sqlite: sqlite ?? null,
  };
  if (app.json) app.out.json(versions);
  else {
    app.out.line(
      `sregistry ${VERSION}\ndeno ${versions.deno} (v8 ${versions.v8}, typescript ${versions.typescript})\nsqlite ${
        sqlite ?? "unknown"
      }`,
    );
  }
}
