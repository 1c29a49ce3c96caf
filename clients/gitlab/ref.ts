/**
 * GitLab job identifiers: the original's `<job_id>,<group/project>[,<job_name>]` (its docs wrote
 * `|`, its code split on `,`: both are read), with or without `gitlab://`, and the readable
 * `<group/project>[:tag]@<job_id>` (also written `<group/project>/-/jobs/<job_id>`, the path of the
 * job's web page). A `:tag` on the project picks `Singularity.<tag>.sif` as the original did.
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { removeUri } from "../../core/names.ts";

/** A parsed job identifier. */
export interface JobRef {
  /** The project's full path, subgroups included (`group/sub/project`). */
  project: string;
  /** The job id (digits). */
  jobId: string;
  /** The job name the user expects, when given (the original's third field). */
  jobName?: string;
  /** The tag (default `latest`): `Singularity.<tag>.sif` unless `latest`. */
  tag: string;
}

/** The forms an identifier may take, for messages. */
export const JOB_FORMS =
  "gitlab://<group/project>[:tag]@<job_id>, gitlab://<group/project>/-/jobs/<job_id> or <job_id>,<group/project>[,<job_name>]";

// GitLab path segments: letters, digits, `_`, `-` and `.` (not starting with `.` or `-`).
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * Check a project path (`group[/subgroup...]/project`) and return it without surrounding slashes.
 * @throws {UsageError} for an empty path, a single segment, `..` or characters GitLab refuses.
 */
export function checkProject(path: string, original: string): string {
  const p = path.trim().replace(/^\/+|\/+$/g, "");
  const parts = p.split("/");
  if (parts.length < 2 || parts.some((s) => !SEGMENT.test(s) || s.endsWith(".git"))) {
    throw new UsageError(
      `GitLab project ${JSON.stringify(p)} in ${
        JSON.stringify(original)
      } is not a <group>/<project> path (letters, digits, _ - . per level); use ${JOB_FORMS}`,
    );
  }
  return p;
}

function splitTag(project: string, original: string): { project: string; tag: string } {
  const m = project.match(/^(.*?):([^:/@]+)$/);
  if (!m) return { project, tag: "latest" };
  if (!TAG.test(m[2])) {
    throw new UsageError(
      `Tag ${JSON.stringify(m[2])} in ${
        JSON.stringify(original)
      } holds characters a file name cannot (use letters, digits, _ - .)`,
    );
  }
  return { project: m[1], tag: m[2].toLowerCase() };
}

/**
 * Parse a job identifier in any of the accepted forms.
 * @throws {UsageError} (exit 2) naming the accepted forms when it matches none.
 */
export function parseJobRef(input: string): JobRef {
  const s = removeUri(input.trim());
  const bad = () =>
    new UsageError(`Cannot read GitLab job ${JSON.stringify(input)}: use ${JOB_FORMS}`);
  if (/[,|]/.test(s)) {
    const [id, rest, name, ...more] = s.split(/[,|]/).map((p) => p.trim());
    if (!/^\d+$/.test(id ?? "") || !rest || more.length > 0 || name === "") throw bad();
    const { project, tag } = splitTag(rest, input);
    return {
      project: checkProject(project, input),
      jobId: id,
      ...(name ? { jobName: name } : {}),
      tag,
    };
  }
  const web = s.match(/^(.+?)\/-\/jobs\/(\d+)\/?$/);
  if (web) return { project: checkProject(web[1], input), jobId: web[2], tag: "latest" };
  const at = s.match(/^(.+)@(\d+)$/);
  if (at) {
    const { project, tag } = splitTag(at[1], input);
    return { project: checkProject(project, input), jobId: at[2], tag };
  }
  throw bad();
}

/**
 * A search query: `<group/project>` or `<group/project>,<job_name>` (also with `|`).
 * @throws {UsageError} (exit 2) without a project.
 */
export function parseProjectQuery(
  query: string | undefined,
): { project: string; jobName?: string } {
  const s = query === undefined ? "" : removeUri(query.trim());
  if (s === "") {
    throw new UsageError(
      'GitLab search needs a project: "sregistry search gitlab://<group/project>[,<job_name>]"',
    );
  }
  const [project, name, ...more] = s.split(/[,|]/).map((p) => p.trim());
  if (more.length > 0 || name === "") {
    throw new UsageError(
      `Cannot read GitLab search ${
        JSON.stringify(query)
      }: use gitlab://<group/project>[,<job_name>]`,
    );
  }
  return { project: checkProject(project, query ?? ""), ...(name ? { jobName: name } : {}) };
}

/** The artifact file names tried for a tag, in order: `.sif` first, then the original's `.simg`. */
export function artifactNames(tag: string): string[] {
  const stem = tag === "latest" ? "Singularity" : `Singularity.${tag}`;
  return [`${stem}.sif`, `${stem}.simg`];
}

/** The project path as GitLab's API wants it in a URL: one segment, `/` as `%2F`. */
export function encodeProject(project: string): string {
  return encodeURIComponent(project);
}
