/**
 * The local Globus Connect Personal endpoint, found as the original found it: its configuration
 * folder `~/.globusonline/lta` (SREGISTRY_GLOBUS_GCP_DIR overrides it) holds `client-id.txt`, the
 * endpoint's id, and `config-paths`, one shared folder a line (`<path>,<sharing 0|1>,<rw 0|1>`, `~`
 * for the home folder; the default, when the file is missing, is `~/,0,1`). The first folder that
 * exists is where pulls land.
 * @module
 */

import { join, resolve, sep } from "node:path";
import { ConfigError } from "../../core/errors.ts";
import { isDirectory } from "../../core/fs.ts";

/** What the configuration folder says. */
export interface LocalGcp {
  /** The configuration folder. */
  dir: string;
  /** The endpoint id from `client-id.txt`, when the file has one. */
  id?: string;
  /** The shared folders that exist, real paths, in the file's order. */
  roots: string[];
  /** Those of {@link roots} shared writable (`rw` 1): where pulls may land. */
  writable: string[];
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new ConfigError(`Cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Read the Globus Connect Personal configuration folder. */
export function readLocalGcp(dir: string, home: string, setting: string): LocalGcp {
  if (!isDirectory(dir)) {
    throw new ConfigError(
      `No Globus Connect Personal found (no folder ${dir}); install and set it up from https://www.globus.org/globus-connect-personal, or point ${setting} at its configuration folder`,
    );
  }
  const id = readText(join(dir, "client-id.txt"))?.trim() || undefined;
  const lines = readText(join(dir, "config-paths")) ?? "~/,0,1\n";
  const roots: string[] = [];
  const writable: string[] = [];
  for (const line of lines.split("\n")) {
    const raw = line.trim();
    if (raw === "" || raw.startsWith("#")) continue;
    // The path is everything before the last two comma fields.
    const parts = raw.split(",");
    const path = parts.length >= 3 ? parts.slice(0, -2).join(",") : parts[0];
    const expanded = path === "~" || path.startsWith("~/") ? join(home, path.slice(1)) : path;
    const full = resolve(expanded);
    if (!isDirectory(full)) continue;
    const real = Deno.realPathSync(full);
    if (!roots.includes(real)) roots.push(real);
    // A line without the flags shares read-write, as Globus Connect Personal's default does.
    if ((parts.length < 3 || parts.at(-1) !== "0") && !writable.includes(real)) writable.push(real);
  }
  if (roots.length === 0) {
    throw new ConfigError(
      `None of the folders in ${
        join(dir, "config-paths")
      } exists; add one Globus Connect Personal may share`,
    );
  }
  return { dir, id, roots, writable };
}

/** The first writable shared folder: where pulls land and pushes are staged. */
export function landingRoot(gcp: LocalGcp): string {
  const root = gcp.writable[0];
  if (!root) {
    throw new ConfigError(
      `No folder in ${
        join(gcp.dir, "config-paths")
      } is shared writable (",1" at the end of its line); Globus Connect Personal could not write the image`,
    );
  }
  return root;
}

/** The shared folder holding `path` (a real path), if any. */
export function rootOf(gcp: LocalGcp, path: string): string | undefined {
  return gcp.roots.find((r) => path === r || path.startsWith(r.endsWith(sep) ? r : r + sep));
}
