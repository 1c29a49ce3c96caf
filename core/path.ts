/**
 * Light path helpers for the modules every command loads. node:path would do, but the first `node:`
 * import costs about 6 ms of start-up, more than `sregistry version` takes in all; these paths need
 * no `..` resolution.
 * @module
 */

const SEP = Deno.build.os === "windows" ? "\\" : "/";

/**
 * Join path segments with the platform's separator, collapsing repeated separators. A light
 * stand-in for node:path's `join`: the first `node:` import costs start-up time (~6 ms) that
 * `sregistry version` cannot afford, and settings paths need no `..` resolution.
 */
export function joinPath(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join(SEP);
  return joined.replace(/[\\/]+/g, SEP) || ".";
}

/** The folder part of a path (`/a/b` -> `/a`), like node:path's `dirname`. */
export function dirnamePath(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, "");
  const i = Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\"));
  if (i < 0) return ".";
  return i === 0 ? trimmed[0] : trimmed.slice(0, i);
}

/** The last part of a path (`/a/b.sif` -> `b.sif`), like node:path's `basename`. */
export function basenamePath(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, "");
  return trimmed.slice(Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\")) + 1);
}

/**
 * `to` resolved against the folder `from` (`/a/b` + `../c` -> `/a/c`), like node:path's
 * `resolve(from, to)` for absolute `from`: `.` and `..` segments are folded.
 */
export function resolvePath(from: string, to: string): string {
  const start = to.startsWith("/") ? to : `${from}/${to}`;
  const out: string[] = [];
  for (const part of start.split(/[\\/]+/)) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return `/${out.join("/")}`;
}
