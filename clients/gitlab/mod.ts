/**
 * The gitlab:// client: Singularity images that CI jobs keep as artifacts. Pull fetches
 * `<folder>/Singularity[.<tag>].sif` (then `.simg`) through the API route
 * `GET /api/v4/projects/<url-encoded path>/jobs/<id>/artifacts/<path>`, not the original's web
 * route, following GitLab's redirect to object storage without the token (the authorizer is bound
 * to the GitLab origin). Search lists a project's successful jobs that kept artifacts, every page;
 * record keeps the job's metadata. Auth: `PRIVATE-TOKEN` from SREGISTRY_GITLAB_TOKEN (anonymous
 * without it, which public projects allow).
 * @module
 */

import type { Authorizer } from "../../core/auth/types.ts";
import { serviceBase } from "../../core/base_url.ts";
import { AuthError, NetworkError, NotFoundError } from "../../core/errors.ts";
import { isLoopback, MAX_JSON_BYTES, readBody } from "../../core/http.ts";
import { parseImageName } from "../../core/names.ts";
import { download, MAX_STREAMS } from "../../core/transfer/mod.ts";
import type { Metadata } from "../../db/types.ts";
import type {
  Client,
  ClientFactory,
  Context,
  PulledImage,
  PullTarget,
  RemoteRecord,
  SearchHit,
} from "../types.ts";
import {
  artifactNames,
  encodeProject,
  type JobRef,
  parseJobRef,
  parseProjectQuery,
} from "./ref.ts";

const SCHEME = "gitlab";
const TOKEN = "SREGISTRY_GITLAB_TOKEN";
const BASE = "SREGISTRY_GITLAB_BASE";
const FOLDER = "SREGISTRY_GITLAB_FOLDER";
const JOB = "SREGISTRY_GITLAB_JOB";

/** The public service. */
export const DEFAULT_BASE = "https://gitlab.com";
/** GitLab's largest page. */
const PER_PAGE = 100;
/** A bound on pages read by one search (100 jobs each), so a broken `X-Next-Page` cannot loop. */
const MAX_PAGES = 1000;

/** A job as `GET /projects/:id/jobs[/:job_id]` returns it (the fields read). */
export interface GitlabJob {
  /** The job id. */
  id: number;
  /** The job name (`build`). */
  name: string;
  /** `success`, `failed`... */
  status: string;
  /** The stage. */
  stage?: string;
  /** Branch or tag. */
  ref?: string;
  /** Whether `ref` is a tag. */
  tag?: boolean;
  /** When it finished. */
  finished_at?: string | null;
  /** The job's web page. */
  web_url?: string;
  /** The commit. */
  commit?: { id?: string; short_id?: string; title?: string };
  /** The pipeline. */
  pipeline?: { id?: number; ref?: string; sha?: string; status?: string };
  /** The artifacts archive, when the job kept one. */
  artifacts_file?: { filename?: string; size?: number } | null;
  /** Every artifact (archive, metadata, trace...). */
  artifacts?: { file_type?: string; size?: number; filename?: string; file_format?: string }[];
  /** When the artifacts expire. */
  artifacts_expire_at?: string | null;
}

/** Whether a job kept an artifacts archive (a trace alone is not one). */
export function hasArtifacts(job: GitlabJob): boolean {
  return Boolean(job.artifacts_file?.filename) ||
    (job.artifacts ?? []).some((a) => a.file_type === "archive");
}

/** The catalog name of a job's image: `<group/project>:<tag>@<job_id>`. */
export function catalogName(ref: JobRef): string {
  // The original stored collection `<job_id>,<namespace>`; `,` is not a name character here, so
  // the job id moves to the version: every job's image gets its own row.
  return parseImageName(`${ref.project}:${ref.tag}@${ref.jobId}`).uri;
}

/** The job's metadata as the catalog keeps it. */
export function jobMetadata(ref: JobRef, job: GitlabJob, base: string): Metadata {
  const m: Metadata = {
    gitlab_base: base,
    project: ref.project,
    job_id: job.id,
    job_name: job.name,
    status: job.status,
  };
  const put = (k: string, v: unknown) => {
    if (v !== undefined && v !== null && v !== "") m[k] = v as Metadata[string];
  };
  put("stage", job.stage);
  put("ref", job.ref);
  put("commit", job.commit?.id ?? job.pipeline?.sha);
  put("commit_title", job.commit?.title);
  put("pipeline_id", job.pipeline?.id);
  put("finished_at", job.finished_at);
  put("web_url", job.web_url);
  put("artifacts_expire_at", job.artifacts_expire_at);
  if (job.artifacts?.length) {
    m.artifacts = job.artifacts.map((a) => ({
      ...(a.file_type ? { file_type: a.file_type } : {}),
      ...(a.filename ? { filename: a.filename } : {}),
      ...(typeof a.size === "number" ? { size: a.size } : {}),
    }));
  }
  return m;
}

/** The next page of a job listing: `X-Next-Page`, else a `Link: <...>; rel="next"`. */
export function nextPage(res: Response, current: URL): URL | undefined {
  const n = res.headers.get("x-next-page")?.trim();
  if (n && /^\d+$/.test(n)) {
    const u = new URL(current);
    u.searchParams.set("page", n);
    return u;
  }
  const link = res.headers.get("link");
  const m = link?.split(",").map((p) => p.match(/<([^>]+)>\s*;\s*rel="?next"?/)).find(Boolean);
  if (!m) return undefined;
  const u = new URL(m[1], current);
  // GitLab names its own host; the next page must stay on the configured one (a gateway).
  if (u.origin !== current.origin) {
    const same = new URL(current);
    same.search = u.search;
    return same;
  }
  return u;
}

function createGitlabClient(ctx: Context): Client {
  const base = () =>
    serviceBase(BASE, ctx.settings.getAndUpdate(BASE) ?? DEFAULT_BASE, DEFAULT_BASE);
  const api = () => `${base()}/api/v4`;
  const tokenSet = () => Boolean(ctx.settings.getAndUpdate(TOKEN));

  /** `PRIVATE-TOKEN` for the GitLab origin only: object storage behind a redirect gets nothing. */
  const authorizer = (): Authorizer | undefined => {
    const token = ctx.settings.getAndUpdate(TOKEN);
    if (!token) return undefined;
    ctx.log.addSecret(token);
    return {
      origin: new URL(base()).origin,
      authorize(request) {
        request.headers.set("private-token", token);
      },
    };
  };

  const tokenHint = () =>
    tokenSet()
      ? `check ${TOKEN} (an access token with the read_api scope that can see the project)`
      : `set ${TOKEN} (an access token with the read_api scope) for a private project`;

  /** GET JSON from the API; 401 and 404 become messages that name the project and the fix. */
  async function getJson<T>(
    url: URL,
    what: string,
    ref: { project: string },
  ): Promise<{ data: T; res: Response }> {
    let res: Response;
    try {
      res = await ctx.http.request(url, {
        auth: authorizer(),
        accept: (s) => (s >= 200 && s < 300) || s === 404,
        signal: ctx.signal,
      });
    } catch (e) {
      if (e instanceof AuthError) {
        throw new AuthError(
          `GitLab refused ${what} of ${JSON.stringify(ref.project)}: ${tokenHint()}`,
          {
            cause: e,
          },
        );
      }
      throw e;
    }
    const text = new TextDecoder().decode(
      await readBody(ctx.http, res, { limit: MAX_JSON_BYTES, what, signal: ctx.signal }),
    );
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new NetworkError(`GitLab answered ${what} with HTTP ${res.status} and no JSON`, {
        status: res.status,
      });
    }
    if (res.status === 404) {
      const message = String((data as { message?: unknown })?.message ?? "404 Not Found");
      if (/project/i.test(message)) {
        throw new NotFoundError(
          `GitLab has no project ${
            JSON.stringify(ref.project)
          } at ${base()} (${message}): check the path, or ${tokenHint()}`,
        );
      }
      throw new NotFoundError(
        `GitLab found no ${what} (${message}) in ${JSON.stringify(ref.project)}`,
      );
    }
    return { data: data as T, res };
  }

  async function job(ref: JobRef): Promise<GitlabJob> {
    const url = new URL(`${api()}/projects/${encodeProject(ref.project)}/jobs/${ref.jobId}`);
    const { data } = await getJson<GitlabJob>(url, `job ${ref.jobId}`, ref);
    if (ref.jobName !== undefined && data.name !== ref.jobName) {
      throw new NotFoundError(
        `GitLab job ${ref.jobId} of ${JSON.stringify(ref.project)} is named ${
          JSON.stringify(data.name)
        }, not ${JSON.stringify(ref.jobName)}: check the job id, or leave out the job name`,
      );
    }
    return data;
  }

  function record(ref: JobRef, j: GitlabJob): RemoteRecord {
    return {
      url: j.web_url ?? `${base()}/${ref.project}/-/jobs/${ref.jobId}`,
      metadata: jobMetadata(ref, j, base()),
      suggestedName: catalogName(ref),
    };
  }

  const folder = () =>
    (ctx.settings.getAndUpdate(FOLDER) ?? "build").split("/").filter((p) => p !== "" && p !== ".");

  return {
    name: SCHEME,

    async pull(image: string, into: PullTarget): Promise<PulledImage> {
      const ref = parseJobRef(image);
      const j = await job(ref);
      if (!hasArtifacts(j)) {
        throw new NotFoundError(
          `GitLab job ${ref.jobId} of ${JSON.stringify(ref.project)} kept no artifacts (status ${
            JSON.stringify(j.status)
          }); list jobs with artifacts with "sregistry search gitlab://${ref.project}"`,
        );
      }
      const dir = folder();
      const auth = authorizer();
      const tried: string[] = [];
      for (const file of artifactNames(ref.tag)) {
        const path = [...dir, file];
        const url = new URL(
          `${api()}/projects/${encodeProject(ref.project)}/jobs/${ref.jobId}/artifacts/${
            path.map(encodeURIComponent).join("/")
          }`,
        );
        tried.push(path.join("/"));
        let r;
        try {
          r = await download({
            http: ctx.http,
            url,
            dest: into.resumable,
            auth,
            parallel: isLoopback(url.host) ? 1 : Math.min(ctx.globals.workers, MAX_STREAMS),
            progress: ctx.progress,
            label: `${ref.project}@${ref.jobId}`,
            signal: ctx.signal,
          });
        } catch (e) {
          if (e instanceof NotFoundError) continue;
          if (e instanceof AuthError) {
            throw new AuthError(
              `GitLab refused the artifacts of job ${ref.jobId} of ${
                JSON.stringify(ref.project)
              }: ${tokenHint()}`,
              { cause: e },
            );
          }
          throw e;
        }
        await Deno.rename(into.resumable, into.path);
        const rec = record(ref, j);
        return {
          ...rec,
          url: url.href,
          metadata: { ...rec.metadata, artifact_path: path.join("/") },
          file: into.path,
          format: "unknown",
          digest: r.digest,
          size: r.size,
        };
      }
      throw new NotFoundError(
        `GitLab job ${ref.jobId} of ${JSON.stringify(ref.project)} has no artifact ${
          tried.map((t) => JSON.stringify(t)).join(" or ")
        }: set ${FOLDER} to the folder the job writes the image to`,
      );
    },

    async record(image: string): Promise<RemoteRecord> {
      const ref = parseJobRef(image);
      return record(ref, await job(ref));
    },

    async search(query: string | undefined): Promise<SearchHit[]> {
      const q = parseProjectQuery(query);
      const only = q.jobName ?? ctx.settings.getAndUpdate(JOB);
      let url: URL | undefined = new URL(`${api()}/projects/${encodeProject(q.project)}/jobs`);
      url.searchParams.append("scope[]", "success");
      url.searchParams.set("per_page", String(PER_PAGE));
      const hits: SearchHit[] = [];
      const seen = new Set<number>();
      for (let page = 0; url && page < MAX_PAGES; page++) {
        const got: { data: GitlabJob[]; res: Response } = await getJson<GitlabJob[]>(
          url,
          "jobs",
          q,
        );
        const { data, res } = got;
        if (!Array.isArray(data)) {
          throw new NetworkError(`GitLab answered the job list of ${q.project} with no list`);
        }
        for (const j of data) {
          if (seen.has(j.id) || j.status !== "success" || !hasArtifacts(j)) continue;
          if (only !== undefined && only !== "*" && j.name !== only) continue;
          seen.add(j.id);
          hits.push({
            uri: `${SCHEME}://${q.project}@${j.id}`,
            details: {
              job: j.name,
              ref: j.ref,
              finished: j.finished_at ?? undefined,
              artifacts: j.artifacts_file?.size,
            },
          });
        }
        url = data.length === 0 ? undefined : nextPage(res, url);
      }
      return hits;
    },
  };
}

/** The gitlab client factory. */
export const gitlabFactory: ClientFactory = {
  scheme: SCHEME,
  description: "GitLab CI job artifacts (gitlab://group/project@<job_id>)",
  settings: [
    { name: TOKEN, description: "an access token (read_api), sent as PRIVATE-TOKEN", secret: true },
    { name: BASE, description: "the GitLab server", default: DEFAULT_BASE },
    { name: FOLDER, description: "the artifacts folder holding the image", default: "build" },
    {
      name: JOB,
      description:
        "search keeps only jobs of this name (unset: every job; the original's default was build)",
    },
  ],
  create: createGitlabClient,
};
