/**
 * A strict fake of the Cloud Build v1 REST API (Deno.serve on 127.0.0.1, a free port), written from
 * Google's reference (projects.builds.create / get, the Build and Operation resources, the
 * google.rpc error model). It shares tokens and buckets with the GCS fake (tests/servers/gcs_fake.ts):
 *
 * - Every call needs `Authorization: Bearer <token>` issued by the GCS fake's token endpoint and not
 *   expired: otherwise 401 `{"error": {"code": 401, "message", "status": "UNAUTHENTICATED",
 *   "errors": [...]}}`; a token without the cloud-platform scope is 403 PERMISSION_DENIED. An
 *   unknown project is 403 PERMISSION_DENIED too (as Google answers), an unknown build 404.
 * - `POST /v1/projects/{project}/builds` checks the Build as the service does: JSON content type,
 *   `steps` a non-empty array of `{name, args?, entrypoint?, ...}` with string values, no unknown
 *   fields (`Invalid JSON payload received. Unknown name ...`), `timeout` a duration (`"600s"`),
 *   a `source.storageSource` that exists in the GCS fake; anything else is 400 INVALID_ARGUMENT.
 *   It answers an Operation whose `metadata.build` is the new build (QUEUED).
 * - `GET /v1/projects/{project}/builds/{id}` walks the build through its states, one per call:
 *   QUEUED, WORKING (for `workingPolls` calls, each appending lines to the log object
 *   `log-<id>.txt` of the logs bucket), then the planned end: SUCCESS (the `gsutil cp` step's object
 *   is written to the GCS fake with the `sha256sum` metadata the setmeta step sets, and
 *   `results.buildStepImages` is filled) or FAILURE / TIMEOUT / CANCELLED / INTERNAL_ERROR with a
 *   `statusDetail`; EXPIRED ends a build still QUEUED (its `queueTtl` passed) without WORKING.
 * @module
 */

import { createHash } from "node:crypto";
import type { GcsFake } from "./gcs_fake.ts";

const CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform";

/** How a build submitted next ends. */
export interface BuildPlan {
  /** The terminal status (default SUCCESS). */
  status?: "SUCCESS" | "FAILURE" | "TIMEOUT" | "CANCELLED" | "INTERNAL_ERROR" | "EXPIRED";
  /** Its statusDetail (a default per status otherwise). */
  statusDetail?: string;
  /** GETs answered WORKING before the end (default 2). */
  workingPolls?: number;
  /** The image bytes the build produces (default: a few bytes naming the build). */
  image?: Uint8Array;
  /** Never end: stay WORKING (Ctrl-C tests). */
  endless?: boolean;
}

/** One build the fake holds. */
export interface FakeBuild {
  /** The Build resource as last answered. */
  resource: Record<string, unknown>;
  /** Its plan. */
  plan: BuildPlan;
  /** GETs so far. */
  polls: number;
}

/** A running fake. */
export interface CloudBuildFake {
  /** `http://127.0.0.1:<port>` (SREGISTRY_GOOGLE_BUILD_BASE). */
  readonly url: string;
  /** The project it knows. */
  readonly project: string;
  /** The logs bucket (`<number>.cloudbuild-logs.googleusercontent.com`). */
  readonly logsBucket: string;
  /** Builds by id. */
  readonly builds: Map<string, FakeBuild>;
  /** The bodies of accepted create calls, in order. */
  readonly submitted: Record<string, unknown>[];
  /** Every request line. */
  readonly requests: string[];
  /** How the next builds end (one plan per build, then SUCCESS). */
  plan(...plans: BuildPlan[]): void;
  /** Stop it. */
  stop(): Promise<void>;
}

const BUILD_FIELDS = new Set([
  "steps",
  "source",
  "timeout",
  "images",
  "artifacts",
  "logsBucket",
  "options",
  "substitutions",
  "tags",
  "secrets",
  "availableSecrets",
  "serviceAccount",
  "queueTtl",
]);
const STEP_FIELDS = new Set([
  "name",
  "args",
  "env",
  "dir",
  "id",
  "waitFor",
  "entrypoint",
  "secretEnv",
  "volumes",
  "timeout",
  "script",
  "allowFailure",
  "allowExitCodes",
]);

const DETAILS: Record<string, string> = {
  FAILURE:
    'Build step 0 "singularityware/singularity" failed: step exited with non-zero status: 255',
  TIMEOUT: "Build timed out",
  CANCELLED: "Build was cancelled",
  INTERNAL_ERROR: "Internal error encountered",
  EXPIRED: "Build expired: it stayed queued longer than its queueTtl (3600s)",
};

function rpcError(code: number, status: string, message: string, extra: object = {}): Response {
  return Response.json({ error: { code, message, status, ...extra } }, {
    status: code,
    headers: code === 401
      ? { "www-authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"' }
      : {},
  });
}

const invalid = (message: string) => rpcError(400, "INVALID_ARGUMENT", message);

/** Start the fake next to a GCS fake (whose tokens and buckets it uses). */
export function startCloudBuildFake(
  gcs: GcsFake,
  options: { project?: string; projectNumber?: string } = {},
): CloudBuildFake {
  const project = options.project ?? "fake-project";
  const number = options.projectNumber ?? "123456789012";
  const logsBucket = `${number}.cloudbuild-logs.googleusercontent.com`;
  gcs.addBucket(logsBucket);
  const builds = new Map<string, FakeBuild>();
  const submitted: Record<string, unknown>[] = [];
  const requests: string[] = [];
  const plans: BuildPlan[] = [];
  const ac = new AbortController();

  const appendLog = (id: string, lines: string[]) => {
    const name = `log-${id}.txt`;
    const old = gcs.buckets.get(logsBucket)!.objects.get(name)?.data ?? new Uint8Array();
    const add = new TextEncoder().encode(lines.map((l) => `${l}\n`).join(""));
    const next = new Uint8Array(old.length + add.length);
    next.set(old);
    next.set(add, old.length);
    gcs.put(logsBucket, name, next);
  };

  function checkBuild(body: Record<string, unknown>): string | undefined {
    for (const k of Object.keys(body)) {
      if (!BUILD_FIELDS.has(k)) {
        return `Invalid JSON payload received. Unknown name "${k}" at 'build': Cannot find field.`;
      }
    }
    const steps = body.steps;
    if (!Array.isArray(steps) || steps.length === 0) {
      return "Request contains an invalid argument: build.steps: at least one step is required";
    }
    for (const [i, s] of steps.entries()) {
      if (!s || typeof s !== "object" || Array.isArray(s)) {
        return `Invalid JSON payload received. Invalid value at 'build.steps[${i}]'`;
      }
      for (const k of Object.keys(s)) {
        if (!STEP_FIELDS.has(k)) {
          return `Invalid JSON payload received. Unknown name "${k}" at 'build.steps[${i}]': Cannot find field.`;
        }
      }
      const step = s as Record<string, unknown>;
      if (typeof step.name !== "string" || step.name === "") {
        return `Request contains an invalid argument: build.steps[${i}].name: must be specified`;
      }
      if (
        step.args !== undefined &&
        !(Array.isArray(step.args) && step.args.every((a) => typeof a === "string"))
      ) {
        return `Invalid value at 'build.steps[${i}].args' (TYPE_STRING)`;
      }
      if (step.entrypoint !== undefined && typeof step.entrypoint !== "string") {
        return `Invalid value at 'build.steps[${i}].entrypoint' (TYPE_STRING)`;
      }
    }
    if (
      body.timeout !== undefined &&
      (typeof body.timeout !== "string" || !/^\d+(\.\d{1,9})?s$/.test(body.timeout))
    ) {
      return `Invalid value at 'build.timeout' (type.googleapis.com/google.protobuf.Duration), ${
        JSON.stringify(body.timeout)
      }`;
    }
    const src = (body.source as { storageSource?: { bucket?: unknown; object?: unknown } })
      ?.storageSource;
    if (body.source !== undefined) {
      if (typeof src?.bucket !== "string" || typeof src.object !== "string") {
        return "Request contains an invalid argument: build.source.storage_source: bucket and object are required";
      }
      if (!gcs.buckets.get(src.bucket)?.objects.has(src.object)) {
        return `Request contains an invalid argument: could not find source gs://${src.bucket}/${src.object}`;
      }
    }
    return undefined;
  }

  function advance(b: FakeBuild) {
    const r = b.resource;
    const id = r.id as string;
    b.polls++;
    const working = b.plan.workingPolls ?? 2;
    const steps = r.steps as { name: string; args?: string[]; status?: string }[];
    if (b.polls === 1) {
      r.status = "QUEUED";
      return;
    }
    if (b.plan.status === "EXPIRED") {
      // It never left the queue: no step ran, no log was written.
      r.finishTime = new Date().toISOString();
      r.status = "EXPIRED";
      r.statusDetail = b.plan.statusDetail ?? DETAILS.EXPIRED;
      return;
    }
    if (b.plan.endless || b.polls <= working + 1) {
      if (r.status !== "WORKING") {
        r.status = "WORKING";
        r.startTime = new Date().toISOString();
      }
      const n = b.polls - 1;
      appendLog(id, [`Step #${n % steps.length}: working (${n})`]);
      return;
    }
    const status = b.plan.status ?? "SUCCESS";
    r.finishTime = new Date().toISOString();
    r.status = status;
    if (status !== "SUCCESS") {
      r.statusDetail = b.plan.statusDetail ?? DETAILS[status];
      appendLog(id, [`ERROR: ${r.statusDetail}`, "DONE"]);
      return;
    }
    // Run the steps' effect: gsutil cp, then setmeta of the sha256sum.
    const cp = [...steps].reverse().find((s) => /gsutil/.test(s.name) && s.args?.[0] === "cp");
    const target = /^gs:\/\/([^/]+)\/(.+)$/.exec(cp?.args?.at(-1) ?? "");
    if (target) {
      const bytes = b.plan.image ?? new TextEncoder().encode(`image built by ${id}\n`);
      if (!gcs.buckets.has(target[1])) {
        r.status = "FAILURE";
        r.statusDetail =
          `Build step 2 "gcr.io/cloud-builders/gsutil" failed: BucketNotFoundException: 404 gs://${
            target[1]
          } bucket does not exist.`;
        appendLog(id, [`ERROR: ${r.statusDetail}`]);
        return;
      }
      gcs.put(target[1], target[2], bytes, {
        sha256sum: createHash("sha256").update(bytes).digest("hex"),
      });
    }
    r.results = { buildStepImages: steps.map(() => `sha256:${"0".repeat(64)}`) };
    for (const s of steps) s.status = "SUCCESS";
    appendLog(id, ["PUSH", "DONE"]);
  }

  function authorize(req: Request): Response | undefined {
    const scopes = gcs.tokenScopes(req.headers.get("authorization"));
    if (!scopes) {
      return rpcError(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        {
          errors: [{
            message: "Invalid Credentials",
            domain: "global",
            reason: "authError",
            location: "Authorization",
            locationType: "header",
          }],
        },
      );
    }
    if (!scopes.includes(CLOUD_PLATFORM)) {
      return rpcError(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.");
    }
    return undefined;
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    requests.push(`${req.method} ${url.pathname}`);
    const m = /^\/v1\/projects\/([^/]+)\/builds(?:\/([^/:]+))?$/.exec(url.pathname);
    if (!m) {
      await req.body?.cancel();
      return rpcError(404, "NOT_FOUND", `The requested URL ${url.pathname} was not found.`);
    }
    const denied = authorize(req);
    if (denied) {
      await req.body?.cancel();
      return denied;
    }
    const p = decodeURIComponent(m[1]);
    if (p !== project) {
      await req.body?.cancel();
      return rpcError(
        403,
        "PERMISSION_DENIED",
        `The caller does not have permission (project ${p})`,
      );
    }
    if (m[2] === undefined) {
      if (req.method !== "POST") {
        return rpcError(405, "METHOD_NOT_ALLOWED", `Method ${req.method} not allowed`);
      }
      if (!/^application\/json/i.test(req.headers.get("content-type") ?? "")) {
        await req.body?.cancel();
        return invalid("Invalid JSON payload received. Expected application/json");
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(await req.text());
        if (!body || typeof body !== "object" || Array.isArray(body)) throw new Error();
      } catch {
        return invalid("Invalid JSON payload received. Unexpected token.");
      }
      const why = checkBuild(body);
      if (why) return invalid(why);
      submitted.push(structuredClone(body));
      const id = crypto.randomUUID();
      const resource: Record<string, unknown> = {
        id,
        projectId: project,
        status: "QUEUED",
        steps: structuredClone(body.steps),
        ...(body.source ? { source: structuredClone(body.source) } : {}),
        timeout: body.timeout ?? "600s",
        createTime: new Date().toISOString(),
        logsBucket: `gs://${logsBucket}`,
        logUrl: `https://console.cloud.google.com/cloud-build/builds/${id}?project=${number}`,
        options: { logging: "LEGACY" },
        queueTtl: "3600s",
      };
      builds.set(id, { resource, plan: plans.shift() ?? {}, polls: 0 });
      const opId = btoa(id).replaceAll("=", "");
      return Response.json({
        name: `operations/build/${project}/${opId}`,
        metadata: {
          "@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata",
          build: structuredClone(resource),
        },
      });
    }
    if (req.method !== "GET") {
      await req.body?.cancel();
      return rpcError(405, "METHOD_NOT_ALLOWED", `Method ${req.method} not allowed`);
    }
    const b = builds.get(m[2]);
    if (!b) return rpcError(404, "NOT_FOUND", "Requested entity was not found.");
    if (
      !["SUCCESS", "FAILURE", "TIMEOUT", "CANCELLED", "INTERNAL_ERROR", "EXPIRED"].includes(
        String(b.resource.status),
      ) || b.polls === 0
    ) advance(b);
    return Response.json(b.resource);
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => handle(req),
  );
  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    project,
    logsBucket,
    builds,
    submitted,
    requests,
    plan: (...p) => void plans.push(...p),
    async stop() {
      ac.abort();
      await server.finished.catch(() => {});
    },
  };
}
