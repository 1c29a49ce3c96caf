/**
 * The OCI distribution API over `ctx.http`: manifests, blobs (HEAD, GET URL, upload), tag lists, the
 * catalog and deletes. Every request carries the registry's bearer-challenge authorizer scoped to
 * its repository (core/http answers the 401 challenge), and error bodies become typed one-line
 * errors.
 * @module
 */

import { createHash } from "node:crypto";
import {
  AuthError,
  IntegrityError,
  NetworkError,
  NotFoundError,
  UnsupportedError,
} from "../../core/errors.ts";
import type { BearerChallengeAuthorizer } from "../../core/auth/bearer_challenge.ts";
import type { Authorizer } from "../../core/auth/types.ts";
import { assertFetchable, type Http, readBody } from "../../core/http.ts";
import type { Logger } from "../../core/log.ts";
import type { ProgressSink } from "../../core/progress_events.ts";
import { upload, uploadChunked } from "../../core/transfer/mod.ts";
import { MANIFEST_ACCEPT } from "./manifest.ts";

/** Options of {@link createRegistry}. */
export interface RegistryOptions {
  /** The HTTP client. */
  http: Http;
  /** Logger. */
  log: Logger;
  /** Host with port. */
  host: string;
  /** `http` or `https`. */
  scheme: "http" | "https";
  /** Authentication for this host. */
  auth: BearerChallengeAuthorizer;
  /** Cancels requests. */
  signal?: AbortSignal;
  /** Where credentials come from, for error messages. */
  credentialHint?: string;
}

/** A fetched manifest. */
export interface FetchedManifest {
  /** The exact bytes (their sha256 is the digest). */
  bytes: Uint8Array;
  /** The parsed JSON. */
  body: unknown;
  /** Media type from Content-Type or the body. */
  mediaType: string;
  /** `sha256:<hex>` of the bytes. */
  digest: string;
  /** The URL it came from. */
  url: string;
}

/** A registry endpoint. */
export interface Registry {
  /** `scheme://host`. */
  readonly base: string;
  /** The host. */
  readonly host: string;
  /** The host's authorizer (tokens cached per scope). */
  readonly auth: BearerChallengeAuthorizer;
  /** `repository:<repo>:<actions>`. */
  scope(repo: string, push?: boolean): string;
  /** Send a request with the scope's authorizer. Statuses < 500 are returned. */
  send(url: string, scope: string, init?: SendInit): Promise<Response>;
  /** GET a manifest or index; verified against a pinned digest and Docker-Content-Digest. */
  getManifest(repo: string, ref: string): Promise<FetchedManifest>;
  /** HEAD a manifest: its digest, or undefined when missing. */
  headManifest(repo: string, ref: string): Promise<string | undefined>;
  /** Whether a blob exists. */
  hasBlob(repo: string, digest: string, push?: boolean): Promise<boolean>;
  /** The blob URL. */
  blobUrl(repo: string, digest: string): string;
  /** The authorizer for requests needing `scope` (pass it to download() and upload()). */
  authorizer(scope: string): Authorizer;
  /** Upload a file as a blob (monolithic, or chunked when chunkSize > 0), skipping existing ones. */
  uploadBlob(
    repo: string,
    file: string,
    blob: { digest: string; size: number },
    options?: { chunkSize?: number; progress?: ProgressSink; label?: string },
  ): Promise<{ skipped: boolean }>;
  /** PUT a manifest; returns its digest. */
  putManifest(
    repo: string,
    ref: string,
    bytes: Uint8Array<ArrayBuffer>,
    mediaType: string,
  ): Promise<string>;
  /** DELETE a manifest by digest. */
  deleteManifest(repo: string, digest: string): Promise<void>;
  /** Every repository in the registry's catalog (paginated). */
  catalog(): Promise<string[]>;
  /** Every tag of a repository (paginated). */
  tags(repo: string): Promise<string[]>;
}

/** Options of {@link Registry.send}. */
export interface SendInit {
  /** Method (GET). */
  method?: string;
  /** Headers. */
  headers?: Record<string, string>;
  /** A body that can be sent twice. */
  body?: string | Uint8Array<ArrayBuffer> | null;
}

/** 4 MiB: the largest manifest or index read (the distribution spec's own recommended limit). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The largest page of a tag list or catalog read (registries that ignore `n` send everything). */
const MAX_LIST_BYTES = 4 * 1024 * 1024;

/** `sha256:<hex>` of bytes. */
export function sha256Digest(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** The first error of a registry error body, as `CODE: message`, or "". */
export async function registryError(
  res: Response,
  http: Pick<Http, "stallTimeoutMs"> = { stallTimeoutMs: 60_000 },
): Promise<string> {
  try {
    // Error bodies are for a message: 64 KiB is plenty, and a huge one must not fill memory.
    const text = await readBody(http, res, {
      limit: 64 * 1024,
      what: "The error body",
    }).then((b) => new TextDecoder().decode(b));
    const data = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const e = data.errors?.[0];
    if (e) return `${e.code ?? "ERROR"}: ${e.message ?? ""}`.trim();
    return text.slice(0, 200);
  } catch {
    return "";
  }
}

/** Build a registry endpoint. */
export function createRegistry(options: RegistryOptions): Registry {
  const { http, log, host, auth } = options;
  const base = `${options.scheme}://${host}`;
  const hint = options.credentialHint ?? "the registry credentials";

  const reg: Registry = {
    base,
    host,
    auth,
    scope: (repo, push = false) => `repository:${repo}:${push ? "pull,push" : "pull"}`,
    authorizer: (scope) => auth.scoped(scope),
    async send(url, scope, init = {}) {
      const res = await http.request(url, {
        method: init.method ?? "GET",
        headers: init.headers,
        body: init.body ?? undefined,
        signal: options.signal,
        auth: auth.scoped(scope),
        accept: (s) => s < 500 && s !== 429 && s !== 408,
      });
      const remaining = res.headers.get("ratelimit-remaining");
      if (remaining) log.debug(`Rate limit of ${host}: RateLimit-Remaining ${remaining}`);
      return res;
    },
    async getManifest(repo, ref) {
      const url = `${base}/v2/${repo}/manifests/${ref}`;
      const res = await reg.send(url, reg.scope(repo), { headers: { Accept: MANIFEST_ACCEPT } });
      await check(res, `manifest ${host}/${repo}:${ref}`, "manifest");
      const bytes = await readBody(http, res, {
        limit: MAX_MANIFEST_BYTES,
        what: `The manifest of ${host}/${repo}:${ref}`,
        signal: options.signal,
      });
      const digest = sha256Digest(bytes);
      if (ref.startsWith("sha256:") && ref !== digest) {
        throw new IntegrityError(
          `Manifest ${host}/${repo}@${ref} has digest ${digest}: the registry sent other content; retry, or report it to the registry's operator`,
        );
      }
      const claimed = res.headers.get("docker-content-digest");
      if (claimed && claimed.startsWith("sha256:") && claimed !== digest) {
        throw new IntegrityError(
          `Manifest ${host}/${repo}:${ref} has digest ${digest} but the registry says ${claimed}; the content was altered in transit`,
        );
      }
      let body: unknown;
      try {
        body = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        throw new NetworkError(`Manifest ${host}/${repo}:${ref} is not JSON`);
      }
      const ct = (res.headers.get("content-type") ?? "").split(";")[0].trim();
      const mediaType = (body as { mediaType?: string }).mediaType ??
        (ct && ct !== "application/json" ? ct : "application/vnd.oci.image.manifest.v1+json");
      return { bytes, body, mediaType, digest, url };
    },
    async headManifest(repo, ref) {
      const url = `${base}/v2/${repo}/manifests/${ref}`;
      const res = await reg.send(url, reg.scope(repo), {
        method: "HEAD",
        headers: { Accept: MANIFEST_ACCEPT },
      });
      await res.body?.cancel();
      if (res.status === 404) return undefined;
      await check(res, `manifest ${host}/${repo}:${ref}`, "manifest");
      return res.headers.get("docker-content-digest") ?? undefined;
    },
    async hasBlob(repo, digest, push = false) {
      const res = await reg.send(reg.blobUrl(repo, digest), reg.scope(repo, push), {
        method: "HEAD",
      });
      await res.body?.cancel();
      if (res.status === 404) return false;
      await check(res, `blob ${digest} in ${host}/${repo}`, "blob");
      return true;
    },
    blobUrl: (repo, digest) => `${base}/v2/${repo}/blobs/${digest}`,
    async uploadBlob(repo, file, blob, opts = {}) {
      const scope = reg.scope(repo, true);
      if (await reg.hasBlob(repo, blob.digest, true)) {
        log.verbose(`Blob ${blob.digest} is already in ${host}/${repo}; not uploading it again`);
        return { skipped: true };
      }
      for (let attempt = 0;; attempt++) {
        try {
          await uploadOnce(repo, scope, file, blob, opts);
          return { skipped: false };
        } catch (e) {
          // A token can expire during a long upload: start the blob again with a fresh one.
          if (e instanceof AuthError && attempt === 0) {
            log.verbose(`Upload of ${blob.digest} was refused (${e.message}); retrying once`);
            continue;
          }
          throw e;
        }
      }
    },
    async putManifest(repo, ref, bytes, mediaType) {
      const url = `${base}/v2/${repo}/manifests/${ref}`;
      const res = await reg.send(url, reg.scope(repo, true), {
        method: "PUT",
        headers: { "Content-Type": mediaType },
        body: bytes,
      });
      await check(res, `manifest ${host}/${repo}:${ref}`, "manifest", true);
      await res.body?.cancel();
      const digest = sha256Digest(bytes);
      const claimed = res.headers.get("docker-content-digest");
      if (claimed && claimed !== digest) {
        throw new IntegrityError(
          `Registry ${host} stored manifest ${repo}:${ref} as ${claimed}, not ${digest}`,
        );
      }
      return digest;
    },
    async deleteManifest(repo, digest) {
      const url = `${base}/v2/${repo}/manifests/${digest}`;
      const res = await reg.send(url, `repository:${repo}:delete`, { method: "DELETE" });
      if (res.status === 405) {
        await res.body?.cancel();
        throw new UnsupportedError(
          `Registry ${host} does not allow deleting manifests (HTTP 405); ask its operator to enable deletes`,
        );
      }
      await check(res, `manifest ${host}/${repo}@${digest}`, "manifest", true);
      await res.body?.cancel();
    },
    async catalog() {
      return await paginate(`${base}/v2/_catalog?n=1000`, "registry:catalog:*", "repositories");
    },
    async tags(repo) {
      return await paginate(`${base}/v2/${repo}/tags/list?n=1000`, reg.scope(repo), "tags", repo);
    },
  };

  async function uploadOnce(
    repo: string,
    scope: string,
    file: string,
    blob: { digest: string; size: number },
    opts: { chunkSize?: number; progress?: ProgressSink; label?: string },
  ) {
    const start = await reg.send(`${base}/v2/${repo}/blobs/uploads/`, scope, {
      method: "POST",
      headers: { "Content-Length": "0" },
    });
    await check(start, `upload to ${host}/${repo}`, "repository", true);
    await start.body?.cancel();
    let location = absolute(start.headers.get("location"), `upload to ${host}/${repo}`);
    const auth = reg.authorizer(scope);
    if (opts.chunkSize && opts.chunkSize > 0 && blob.size > opts.chunkSize) {
      const minChunk = Number(start.headers.get("oci-chunk-min-length") ?? 0);
      const chunkSize = Math.max(opts.chunkSize, minChunk);
      const r = await uploadChunked({
        http,
        url: location,
        file,
        chunkSize,
        auth,
        contentType: "application/octet-stream",
        progress: opts.progress,
        label: opts.label,
        signal: options.signal,
      });
      if (r.digest !== blob.digest) {
        throw new IntegrityError(`File ${file} changed while it was uploaded; push it again`);
      }
      location = absolute(r.location, `upload to ${host}/${repo}`);
      const sep = location.includes("?") ? "&" : "?";
      const fin = await reg.send(`${location}${sep}digest=${blob.digest}`, scope, {
        method: "PUT",
        headers: { "Content-Length": "0" },
      });
      await check(fin, `blob ${blob.digest} in ${host}/${repo}`, "blob", true);
      await fin.body?.cancel();
      return;
    }
    const sep = location.includes("?") ? "&" : "?";
    const res = await upload({
      http,
      url: `${location}${sep}digest=${blob.digest}`,
      file,
      method: "PUT",
      auth,
      contentType: "application/octet-stream",
      progress: opts.progress,
      label: opts.label,
      signal: options.signal,
    });
    await check(res, `blob ${blob.digest} in ${host}/${repo}`, "blob", true);
    await res.body?.cancel();
  }

  function absolute(location: string | null, what: string): string {
    if (!location) throw new NetworkError(`Registry ${host} gave no Location for the ${what}`);
    const url = new URL(location, base);
    assertFetchable(url, `the Location of the ${what}`);
    if (url.origin !== new URL(base).origin) {
      // Fine (storage behind the registry), but it gets no credentials: say so when debugging.
      log.debug(`The ${what} continues at ${url.origin}, which gets no credentials of ${host}`);
    }
    return url.toString();
  }

  async function paginate(first: string, scope: string, key: string, repo?: string) {
    const out: string[] = [];
    let url: string | undefined = first;
    for (let pages = 0; url && pages < 1000; pages++) {
      const res = await reg.send(url, scope, { headers: { Accept: "application/json" } });
      if (res.status === 404 && !repo) {
        await res.body?.cancel();
        throw new UnsupportedError(
          `Registry ${host} does not offer a catalog (/v2/_catalog); search for a repository's tags instead (host/repository)`,
        );
      }
      await check(res, repo ? `repository ${host}/${repo}` : `catalog of ${host}`, "repository");
      const what = repo ? `The tag list of ${host}/${repo}` : `The catalog of ${host}`;
      let data: Record<string, unknown>;
      const bytes = await readBody(http, res, {
        limit: MAX_LIST_BYTES,
        what,
        signal: options.signal,
      });
      try {
        data = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        throw new NetworkError(`${what} is not JSON`);
      }
      const list = data[key];
      // The distribution registry answers `"tags": null` for a repository whose tags were deleted.
      if (Array.isArray(list)) out.push(...list.map(String));
      const link = res.headers.get("link");
      const next = link?.match(/<([^>]+)>\s*;\s*rel="?next"?/);
      url = next ? new URL(next[1], base).toString() : undefined;
    }
    return out;
  }

  async function check(res: Response, what: string, kind: string, write = false) {
    if (res.ok) return;
    const detail = await registryError(res, http);
    const suffix = detail ? ` (${detail})` : "";
    if (res.status === 401) {
      throw new AuthError(
        auth.authenticated
          ? `Registry ${host} rejected the credentials for ${what}${suffix}; check ${hint}`
          : `Registry ${host} requires authentication for ${what}${suffix}; set ${hint}`,
      );
    }
    if (res.status === 403) {
      throw new AuthError(
        `Registry ${host} denied ${
          write ? "write " : ""
        }access to ${what}${suffix}; check the account's permissions`,
      );
    }
    if (res.status === 404) {
      throw new NotFoundError(
        `${what[0].toUpperCase()}${
          what.slice(1)
        } was not found${suffix}; check the ${kind} name and tag`,
      );
    }
    if (/DIGEST_INVALID/.test(detail)) {
      throw new IntegrityError(`Registry ${host} refused ${what} as corrupt${suffix}`);
    }
    throw new NetworkError(`Registry ${host} answered HTTP ${res.status} for ${what}${suffix}`, {
      status: res.status,
    });
  }

  return reg;
}
