/**
 * Cloud Build v1: the build configuration made from a JSON template (templates/google-build/), its
 * submission (`POST /v1/projects/{project}/builds`, answered with a long-running Operation whose
 * `metadata.build` is the new build) and its status (`GET /v1/projects/{project}/builds/{id}`).
 * @module
 */

import type { Authorizer } from "../../core/auth/types.ts";
import { ConfigError, NetworkError, NotFoundError, UsageError } from "../../core/errors.ts";
import { serviceBase } from "../../core/base_url.ts";
import { type Http, MAX_JSON_BYTES, readBody } from "../../core/http.ts";

/** Google's Cloud Build origin. */
export const CLOUD_BUILD_ORIGIN = "https://cloudbuild.googleapis.com";

/** Build states that end a build. */
export const TERMINAL_STATES: ReadonlySet<string> = new Set([
  "SUCCESS",
  "FAILURE",
  "INTERNAL_ERROR",
  "TIMEOUT",
  "CANCELLED",
  "EXPIRED",
]);

/** One step of a build. */
export interface BuildStep {
  name: string;
  args?: string[];
  entrypoint?: string;
  status?: string;
  [key: string]: unknown;
}

/** A Build resource (the fields we read). */
export interface Build {
  id: string;
  projectId?: string;
  status?: string;
  statusDetail?: string;
  logUrl?: string;
  logsBucket?: string;
  createTime?: string;
  startTime?: string;
  finishTime?: string;
  steps?: BuildStep[];
  results?: Record<string, unknown>;
  source?: { storageSource?: { bucket?: string; object?: string } };
  timeout?: string;
}

/** What the calls need. */
export interface CloudBuild {
  http: Http;
  /** `https://cloudbuild.googleapis.com` or SREGISTRY_GOOGLE_BUILD_BASE. */
  origin: string;
  project: string;
  auth: Authorizer;
  signal?: AbortSignal;
}

/** The Cloud Build origin for SREGISTRY_GOOGLE_BUILD_BASE (plain http only for loopback). */
export function cloudBuildOrigin(value: string | undefined, setting: string): string {
  const v = value?.trim();
  if (!v) return CLOUD_BUILD_ORIGIN;
  const url = new URL(serviceBase(setting, v));
  if (url.pathname !== "/") {
    throw new ConfigError(`${setting} ${JSON.stringify(v)} must be an origin, without a path`);
  }
  return url.origin;
}

/**
 * Fill a template: every `{{NAME}}` in a string value becomes `values[NAME]` (an unknown name is a
 * ConfigError naming the template), steps with `"_when": "NAME"` are kept only when `NAME` has a
 * value, and keys starting with `_` are dropped (Cloud Build refuses unknown fields).
 */
export function fillTemplate(
  template: unknown,
  values: Record<string, string | undefined>,
  source: string,
): Record<string, unknown> {
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") {
      return v.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_m, k: string) => {
        const got = values[k];
        if (got === undefined) {
          throw new ConfigError(
            `The build template ${source} uses {{${k}}}, which has no value here; known: ${
              Object.keys(values).filter((n) => values[n] !== undefined).join(", ")
            }`,
          );
        }
        return got;
      });
    }
    if (Array.isArray(v)) {
      return v
        .filter((x) => {
          const when = (x as Record<string, unknown> | null)?._when;
          return typeof when !== "string" || values[when] !== undefined;
        })
        .map(walk);
    }
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v).filter(([k]) => !k.startsWith("_")).map(([k, x]) => [k, walk(x)]),
      );
    }
    return v;
  };
  if (!template || typeof template !== "object" || Array.isArray(template)) {
    throw new ConfigError(`The build template ${source} is not a JSON object`);
  }
  const out = walk(template) as Record<string, unknown>;
  if (!Array.isArray(out.steps) || out.steps.length === 0) {
    throw new ConfigError(`The build template ${source} has no steps`);
  }
  return out;
}

/** The `gs://bucket/object` a build copies its image to: the last argument of its `cp` step. */
export function copyTarget(build: Pick<Build, "steps">): { bucket: string; object: string } {
  for (const s of [...(build.steps ?? [])].reverse()) {
    const args = s.args ?? [];
    if (/gsutil/.test(s.name) && args[0] === "cp") {
      const m = /^gs:\/\/([^/]+)\/(.+)$/.exec(args.at(-1) ?? "");
      if (m) return { bucket: m[1], object: m[2] };
    }
  }
  throw new ConfigError(
    "The build has no `gsutil cp <image> gs://<bucket>/<object>` step, so its image cannot be found; keep that step in the template",
  );
}

async function readJson<T>(c: CloudBuild, res: Response, what: string): Promise<T> {
  const bytes = await readBody(c.http, res, { limit: MAX_JSON_BYTES, what, signal: c.signal });
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch {
    throw new NetworkError(`${what} is not JSON`);
  }
}

/** Google's error message of a refused call. */
function googleMessage(data: unknown): string {
  const e = (data as { error?: { message?: unknown; status?: unknown } })?.error;
  return typeof e?.message === "string" ? e.message : "no message";
}

const base = (c: CloudBuild) => `${c.origin}/v1/projects/${encodeURIComponent(c.project)}/builds`;

/**
 * Submit a build; returns the new Build (the Operation's `metadata.build`).
 * @throws {UsageError} when Cloud Build refuses the configuration (400 INVALID_ARGUMENT).
 */
export async function submitBuild(c: CloudBuild, config: Record<string, unknown>): Promise<Build> {
  const res = await c.http.request(base(c), {
    method: "POST",
    headers: { "content-type": "application/json; charset=UTF-8", accept: "application/json" },
    body: JSON.stringify(config),
    auth: c.auth,
    signal: c.signal,
    accept: (s) => s === 200 || s === 400,
  });
  const data = await readJson<{ metadata?: { build?: Build } }>(c, res, "The build's operation");
  if (res.status === 400) {
    throw new UsageError(
      `Cloud Build refused the build configuration: ${
        googleMessage(data)
      }; check the template (see it with --preview)`,
    );
  }
  const build = data.metadata?.build;
  if (!build || typeof build.id !== "string") {
    throw new NetworkError("Cloud Build accepted the build but its operation names no build id");
  }
  return build;
}

/** A build's current state. */
export async function getBuild(c: CloudBuild, id: string): Promise<Build> {
  if (!/^[A-Za-z0-9-]+$/.test(id)) {
    throw new UsageError(`${JSON.stringify(id)} is not a Cloud Build id (a UUID)`);
  }
  const res = await c.http.request(`${base(c)}/${id}`, {
    auth: c.auth,
    signal: c.signal,
    headers: { accept: "application/json" },
    accept: (s) => s === 200 || s === 404,
  });
  if (res.status === 404) {
    await res.body?.cancel();
    throw new NotFoundError(`No build ${id} in project ${c.project}; check the id and project`);
  }
  const b = await readJson<Build>(c, res, `The state of build ${id}`);
  if (typeof b?.id !== "string") throw new NetworkError(`The state of build ${id} has no id`);
  return b;
}
