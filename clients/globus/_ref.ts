/**
 * Globus references: `globus://<endpoint>:<path>` (the original took only the bare
 * `<endpoint>:<path>` and broke on the prefix; both work here), `globus://<endpoint>`, and
 * `globus://task/<task id>` for a task started earlier (to watch it again).
 * @module
 */

import { UsageError } from "../../core/errors.ts";

/** A parsed reference. */
export type GlobusRef =
  | { kind: "path"; endpoint: string; path?: string }
  | { kind: "task"; task: string };

const ENDPOINT = /^[A-Za-z0-9][A-Za-z0-9._#@-]*$/;
const TASK = /^task\/([0-9a-fA-F-]{8,64})$/;

/** Parse `[globus://]<endpoint>[:<path>]` or `[globus://]task/<id>`. */
export function parseRef(text: string): GlobusRef {
  const s = text.replace(/^globus:\/\//i, "").trim();
  const task = s.match(TASK);
  if (task) return { kind: "task", task: task[1].toLowerCase() };
  const colon = s.indexOf(":");
  const endpoint = colon < 0 ? s : s.slice(0, colon);
  const path = colon < 0 ? undefined : s.slice(colon + 1);
  if (!ENDPOINT.test(endpoint)) {
    throw new UsageError(
      `${JSON.stringify(text)} is not a Globus reference; use globus://<endpoint id>:<path>`,
    );
  }
  if (path !== undefined && /(^|\/)\.\.(\/|$)/.test(path)) {
    throw new UsageError(`${JSON.stringify(text)}: a Globus path may not contain ".."`);
  }
  // A relative path (the original's `.singularity/shub/x.simg`) is relative to the home folder.
  const full = path && !path.startsWith("/") && !path.startsWith("~") ? `~/${path}` : path;
  return { kind: "path", endpoint, ...(full ? { path: full } : {}) };
}

/** The folder part of a Globus path (`/a/b.sif` -> `/a/`, `b.sif` -> `` i.e. the default folder). */
export function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i + 1);
}

/** The base name of a Globus path. */
export function baseOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
