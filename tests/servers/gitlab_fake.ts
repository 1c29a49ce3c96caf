/**
 * A strict GitLab REST API v4 fake (Deno.serve on 127.0.0.1), written from GitLab's public API
 * docs (Jobs API, Job artifacts API, REST API pagination and authentication):
 *
 * - `PRIVATE-TOKEN` (or `Authorization: Bearer`) must be a known token, else 401
 *   `{"message":"401 Unauthorized"}`; without one only public projects are visible, and a private
 *   project is `404 Project Not Found` (GitLab hides what the caller may not see);
 * - the project is one path segment: its numeric id or its full path URL-encoded (`group%2Fproject`);
 *   an unencoded `/` does not match any route (404 `{"error":"404 Not Found"}`);
 * - `GET /projects/:id/jobs` takes `scope[]` (checked against GitLab's job statuses: 400
 *   `{"error":"scope does not have a valid value"}`), `per_page` (at most 100, default 20) and
 *   `page`, and answers newest first with `X-Page`, `X-Per-Page`, `X-Next-Page`, `X-Total`,
 *   `X-Total-Pages` and `Link`;
 * - `GET /projects/:id/jobs/:job_id` answers the job, `404 Not found` for an unknown one;
 * - `GET /projects/:id/jobs/:job_id/artifacts/*artifact_path` answers a file of the archive:
 *   directly (ranges allowed), or by default as a 302 to a second "object storage" server with a
 *   presigned URL, which refuses any `PRIVATE-TOKEN` or `Authorization` (S3 answers 400
 *   `InvalidArgument` to a presigned URL that also carries credentials).
 *
 * A path prefix before `/api/v4` is ignored, so a fault proxy can tell routes apart by a base-URL
 * prefix.
 * @module
 */

/** A job in the fake. */
export interface FakeJob {
  /** The job id. */
  id: number;
  /** The job name (default `build`). */
  name?: string;
  /** The status (default `success`). */
  status?: string;
  /** The ref (default `main`). */
  ref?: string;
  /** Files of the artifacts archive, by path (`build/Singularity.sif`); none: no artifacts. */
  files?: Record<string, Uint8Array>;
  /** Serve artifact files directly instead of redirecting to object storage. */
  direct?: boolean;
}

/** A running fake. */
export interface GitlabFake {
  /** `http://127.0.0.1:<port>` (the GitLab server). */
  readonly url: string;
  /** The object storage server artifacts redirect to. */
  readonly storageUrl: string;
  /** Accept a token. */
  addToken(token: string): void;
  /** Add a project (`group/sub/project`), private unless `public`. */
  addProject(path: string, options?: { public?: boolean }): void;
  /** Add a job to a project. */
  addJob(project: string, job: FakeJob): void;
  /** Requests seen by the GitLab server, `METHOD path?query`. */
  readonly calls: string[];
  /** Requests seen by object storage, with the credential headers they carried. */
  readonly storageCalls: {
    path: string;
    privateToken: string | null;
    authorization: string | null;
    range: string | null;
  }[];
  /** Make the next full GET from object storage end after this many bytes (short of its length). */
  dropStorageOnce(bytes: number): void;
  /** Stop both servers. */
  stop(): Promise<void>;
}

const JOB_SCOPES = new Set([
  "created",
  "pending",
  "running",
  "failed",
  "success",
  "canceled",
  "skipped",
  "waiting_for_resource",
  "manual",
]);

const json = (status: number, body: unknown, headers: HeadersInit = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

/** Serve bytes with single-range support, as GitLab (and object storage) do. */
function serveBytes(req: Request, data: Uint8Array, etag: string): Response {
  const headers = new Headers({
    "content-type": "application/octet-stream",
    "accept-ranges": "bytes",
    etag,
  });
  const range = req.headers.get("range");
  if (range) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    const start = m ? Number(m[1]) : NaN;
    const end = m && m[2] ? Math.min(Number(m[2]), data.length - 1) : data.length - 1;
    if (!m || start >= data.length || end < start) {
      headers.set("content-range", `bytes */${data.length}`);
      return new Response(null, { status: 416, headers });
    }
    headers.set("content-range", `bytes ${start}-${end}/${data.length}`);
    headers.set("content-length", String(end - start + 1));
    return new Response(req.method === "HEAD" ? null : data.slice(start, end + 1), {
      status: 206,
      headers,
    });
  }
  headers.set("content-length", String(data.length));
  return new Response(req.method === "HEAD" ? null : data.slice(), { status: 200, headers });
}

/** Start the fake (two servers: GitLab and its object storage). */
export function startGitlabFake(): GitlabFake {
  const tokens = new Set<string>();
  const projects = new Map<string, { id: number; public: boolean; jobs: Map<number, FakeJob> }>();
  const objects = new Map<string, { bytes: Uint8Array; etag: string }>();
  const calls: string[] = [];
  const storageCalls: GitlabFake["storageCalls"] = [];
  let dropAt: number | undefined;
  const ac = new AbortController();
  let nextProjectId = 1000;
  let nextObject = 0;

  const storage = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      await req.body?.cancel();
      const u = new URL(req.url);
      const privateToken = req.headers.get("private-token");
      const authorization = req.headers.get("authorization");
      storageCalls.push({
        path: u.pathname,
        privateToken,
        authorization,
        range: req.headers.get("range"),
      });
      const xml = (status: number, code: string, message: string) =>
        new Response(
          `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`,
          { status, headers: { "content-type": "application/xml" } },
        );
      if (privateToken !== null || authorization !== null) {
        return xml(400, "InvalidArgument", "Only one auth mechanism allowed");
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        return xml(405, "MethodNotAllowed", "The specified method is not allowed");
      }
      const obj = objects.get(u.pathname);
      if (!obj || u.searchParams.get("X-Amz-Signature") !== `sig${u.pathname.length}`) {
        return xml(403, "AccessDenied", "Request has expired or the signature does not match");
      }
      if (dropAt !== undefined && !req.headers.has("range") && req.method === "GET") {
        const cut = obj.bytes.slice(0, dropAt);
        dropAt = undefined;
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(cut);
            c.close();
          },
        });
        return new Response(body, {
          headers: {
            "content-type": "application/octet-stream",
            "content-length": String(obj.bytes.length),
            "accept-ranges": "bytes",
            etag: obj.etag,
          },
        });
      }
      return serveBytes(req, obj.bytes, obj.etag);
    },
  );
  const storageUrl = `http://127.0.0.1:${storage.addr.port}`;

  const jobJson = (project: string, j: FakeJob) => {
    const files = Object.entries(j.files ?? {});
    const size = files.reduce((n, [, b]) => n + b.length, 0);
    const sha = (j.id * 7919).toString(16).padStart(40, "0");
    return {
      id: j.id,
      name: j.name ?? "build",
      status: j.status ?? "success",
      stage: "build",
      ref: j.ref ?? "main",
      tag: false,
      created_at: "2026-01-01T00:00:00.000Z",
      started_at: "2026-01-01T00:00:10.000Z",
      finished_at: "2026-01-01T00:05:00.000Z",
      duration: 290,
      web_url: `${gitlabUrl}/${project}/-/jobs/${j.id}`,
      commit: { id: sha, short_id: sha.slice(0, 8), title: "Build the image" },
      pipeline: { id: j.id + 50_000, ref: j.ref ?? "main", sha, status: "success" },
      artifacts_file: files.length ? { filename: "artifacts.zip", size } : null,
      artifacts: files.length
        ? [
          { file_type: "archive", size, filename: "artifacts.zip", file_format: "zip" },
          { file_type: "metadata", size: 150, filename: "metadata.gz", file_format: "gzip" },
          { file_type: "trace", size: 2000, filename: "job.log", file_format: null },
        ]
        : [{ file_type: "trace", size: 2000, filename: "job.log", file_format: null }],
      artifacts_expire_at: files.length ? "2026-02-01T00:00:00.000Z" : null,
    };
  };

  async function handle(req: Request): Promise<Response> {
    await req.body?.cancel();
    const u = new URL(req.url);
    const at = u.pathname.indexOf("/api/v4/");
    if (at < 0) return json(404, { error: "404 Not Found" });
    const path = u.pathname.slice(at + "/api/v4".length);
    calls.push(`${req.method} ${path}${u.search}`);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return json(405, { error: "405 Not Allowed" });
    }
    const token = req.headers.get("private-token") ??
      req.headers.get("authorization")?.replace(/^Bearer /, "") ?? null;
    if (token !== null && !tokens.has(token)) return json(401, { message: "401 Unauthorized" });
    // The raw path: `%2F` stays encoded, so the project is exactly one segment.
    const m = path.match(/^\/projects\/([^/]+)\/jobs(?:\/([^/]+)(?:\/artifacts\/(.+))?)?\/?$/);
    if (!m) return json(404, { error: "404 Not Found" });
    const key = decodeURIComponent(m[1]);
    const project = [...projects.entries()].find(([p, v]) =>
      p.toLowerCase() === key.toLowerCase() || String(v.id) === key
    );
    if (!project || (!project[1].public && token === null)) {
      return json(404, { message: "404 Project Not Found" });
    }
    const [name, p] = project;
    if (m[2] === undefined) {
      const scopes = u.searchParams.getAll("scope[]").concat(u.searchParams.getAll("scope"));
      if (scopes.some((s) => !JOB_SCOPES.has(s))) {
        return json(400, { error: "scope does not have a valid value" });
      }
      const perPageRaw = u.searchParams.get("per_page") ?? "20";
      const pageRaw = u.searchParams.get("page") ?? "1";
      if (!/^\d+$/.test(perPageRaw) || !/^\d+$/.test(pageRaw)) {
        return json(400, { error: "per_page is invalid, page is invalid" });
      }
      const perPage = Math.min(Math.max(Number(perPageRaw), 1), 100);
      const page = Math.max(Number(pageRaw), 1);
      const all = [...p.jobs.values()]
        .filter((j) => scopes.length === 0 || scopes.includes(j.status ?? "success"))
        .sort((a, b) => b.id - a.id);
      const pages = Math.max(1, Math.ceil(all.length / perPage));
      const slice = all.slice((page - 1) * perPage, page * perPage);
      const link = (n: number) => {
        const l = new URL(`${gitlabUrl}/api/v4/projects/${p.id}/jobs`);
        for (const s of scopes) l.searchParams.append("scope[]", s);
        l.searchParams.set("page", String(n));
        l.searchParams.set("per_page", String(perPage));
        return l.href;
      };
      const links = [
        ...(page < pages ? [`<${link(page + 1)}>; rel="next"`] : []),
        `<${link(1)}>; rel="first"`,
        `<${link(pages)}>; rel="last"`,
      ];
      return json(200, slice.map((j) => jobJson(name, j)), {
        "x-page": String(page),
        "x-per-page": String(perPage),
        "x-next-page": page < pages ? String(page + 1) : "",
        "x-prev-page": page > 1 ? String(page - 1) : "",
        "x-total": String(all.length),
        "x-total-pages": String(pages),
        link: links.join(", "),
      });
    }
    if (!/^\d+$/.test(m[2])) return json(404, { error: "404 Not Found" });
    const job = p.jobs.get(Number(m[2]));
    if (!job) return json(404, { message: "404 Not found" });
    if (m[3] === undefined) return json(200, jobJson(name, job));
    const file = m[3].split("/").map(decodeURIComponent).join("/");
    const data = job.files?.[file];
    if (!data) return json(404, { message: "404 Not found" });
    const etag = `"${job.id}-${data.length}"`;
    if (job.direct) return serveBytes(req, data, etag);
    const objectPath = `/gitlab-artifacts/${(nextObject++).toString(16).padStart(4, "0")}/${
      encodeURIComponent(file.split("/").pop()!)
    }`;
    objects.set(objectPath, { bytes: data, etag });
    const location = new URL(`${storageUrl}${objectPath}`);
    location.searchParams.set("X-Amz-Expires", "540");
    location.searchParams.set("X-Amz-Signature", `sig${objectPath.length}`);
    return new Response(null, { status: 302, headers: { location: location.href } });
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    handle,
  );
  const gitlabUrl = `http://127.0.0.1:${server.addr.port}`;

  return {
    url: gitlabUrl,
    storageUrl,
    calls,
    storageCalls,
    addToken: (t) => void tokens.add(t),
    dropStorageOnce: (n) => void (dropAt = n),
    addProject(path, options = {}) {
      projects.set(path, { id: nextProjectId++, public: options.public ?? false, jobs: new Map() });
    },
    addJob(project, job) {
      const p = projects.get(project);
      if (!p) throw new Error(`no project ${project} in the fake`);
      p.jobs.set(job.id, job);
    },
    async stop() {
      ac.abort();
      await Promise.all([server.finished, storage.finished]);
    },
  };
}
