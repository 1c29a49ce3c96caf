/**
 * The S3 REST calls the s3 client makes, signed with SigV4 (or unsigned for anonymous access):
 * addressing (path style for a custom endpoint, virtual-hosted on AWS), the small XML answers, and
 * S3 error codes turned into typed errors that name the variables to fix.
 * @module
 */

import type { Authorizer } from "../../core/auth/types.ts";
import { AuthError, NetworkError, NotFoundError, UsageError } from "../../core/errors.ts";
import { type Http, readBody } from "../../core/http.ts";

/** Where a bucket lives and how to reach it. */
export interface S3Target {
  /** The HTTP client. */
  http: Http;
  /** The endpoint, `https://s3.<region>.amazonaws.com` or SREGISTRY_S3_BASE. */
  endpoint: string;
  /** Path style (`<endpoint>/<bucket>/<key>`), always for a custom endpoint. */
  pathStyle: boolean;
  /** The bucket. */
  bucket: string;
  /** The region (signing scope; LocationConstraint). */
  region: string;
  /** The authorizer, undefined for anonymous (unsigned) requests. */
  auth?: Authorizer;
  /** What to tell the user when the keys are refused. */
  credentialHint: string;
  /** Cancels requests. */
  signal?: AbortSignal;
}

/** RFC 3986 encoding of one path segment, as SigV4 wants it. */
export function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The URL of the bucket (key undefined) or of an object, with an optional query. */
export function objectUrl(t: S3Target, key?: string, query?: Record<string, string>): URL {
  const base = new URL(t.endpoint);
  const prefix = base.pathname.replace(/\/+$/, "");
  const keyPath = key === undefined ? "" : key.split("/").map(encodeSegment).join("/");
  let url: URL;
  if (t.pathStyle) {
    url = new URL(
      `${base.origin}${prefix}/${encodeSegment(t.bucket)}${key === undefined ? "" : `/${keyPath}`}`,
    );
  } else {
    url = new URL(`${base.protocol}//${t.bucket}.${base.host}${prefix}/${keyPath}`);
  }
  if (query) {
    // `uploads` and friends are valueless sub-resources: `?uploads`, not `?uploads=`.
    url.search = Object.entries(query).map(([k, v]) =>
      v === "" ? encodeSegment(k) : `${encodeSegment(k)}=${encodeSegment(v)}`
    ).join("&");
  }
  return url;
}

/** Decode the five XML entities and numeric references. */
export function xmlText(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    const l = e.toLowerCase();
    if (l === "amp") return "&";
    if (l === "lt") return "<";
    if (l === "gt") return ">";
    if (l === "quot") return '"';
    if (l === "apos") return "'";
    return String.fromCodePoint(l.startsWith("#x") ? parseInt(l.slice(2), 16) : Number(l.slice(1)));
  });
}

/** The text of the first `<tag>` in `xml`, decoded. */
export function xmlValue(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m ? xmlText(m[1]) : undefined;
}

/** Every `<tag>…</tag>` block of `xml`. */
export function xmlBlocks(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]);
}

/** What the error means for the user, by S3 error code. */
function s3Error(
  t: S3Target,
  where: string,
  status: number,
  code: string | undefined,
  message: string,
) {
  const detail = `${code ?? status}${message ? `: ${message}` : ""}`;
  const authCodes = [
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AuthorizationHeaderMalformed",
    "InvalidToken",
    "TokenRefreshRequired",
  ];
  if (
    !t.auth && (status === 401 || status === 403 || status === 412 || (status === 400 && !code))
  ) {
    return new AuthError(
      `Anonymous access refused (${detail}) for ${where}; set ${
        t.credentialHint.replace(/ \(none.*\)$/, "")
      }`,
    );
  }
  if (code === "ExpiredToken") {
    return new AuthError(
      `The session token has expired (${detail}) for ${where}; renew the credentials and AWS_SESSION_TOKEN`,
    );
  }
  if (code && authCodes.includes(code) || status === 401) {
    return new AuthError(
      `S3 refused the credentials (${detail}) for ${where}; check ${t.credentialHint}`,
    );
  }
  if (status === 403) {
    return new AuthError(
      `Access denied (${detail}) for ${where}; check ${t.credentialHint} and that they may use bucket "${t.bucket}"`,
    );
  }
  if (code === "NoSuchBucket") {
    return new NotFoundError(
      `Bucket "${t.bucket}" does not exist at ${
        new URL(t.endpoint).host
      }; check SREGISTRY_S3_BUCKET, or push with --force to create it`,
    );
  }
  if (status === 404) return new NotFoundError(`Not found (${detail}) at ${where}`);
  if (status === 400 && code === "InvalidLocationConstraint") {
    return new UsageError(
      `The server refuses region "${t.region}" for new buckets (${detail}); set AWS_DEFAULT_REGION to the server's region`,
    );
  }
  return new NetworkError(`S3 answered ${status} (${detail}) to ${where}`, { status });
}

/** Options of {@link s3Request}. */
export interface S3RequestOptions {
  method?: string;
  key?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array<ArrayBuffer> | string;
  /** Statuses returned instead of raised (besides 2xx). */
  ok?: number[];
}

/**
 * One signed S3 request. 2xx (and `ok`) statuses are returned; others become typed errors from the
 * S3 error code. 5xx answers are retried by the http client first.
 */
export async function s3Request(t: S3Target, opts: S3RequestOptions): Promise<Response> {
  const method = opts.method ?? "GET";
  const url = objectUrl(t, opts.key, opts.query);
  const res = await t.http.request(url, {
    method,
    headers: opts.headers,
    body: opts.body,
    auth: t.auth,
    signal: t.signal,
    // 5xx stay with the http client, which retries them.
    accept: (s) => s < 500 || s === 501,
  });
  if ((res.status >= 200 && res.status < 300) || opts.ok?.includes(res.status)) return res;
  const text = method === "HEAD" ? "" : new TextDecoder().decode(
    await readBody(t.http, res, { limit: 64 * 1024, what: "an S3 error", signal: t.signal }).catch(
      () => new Uint8Array(),
    ),
  );
  await res.body?.cancel().catch(() => {});
  const where = `${method} ${t.bucket}${opts.key === undefined ? "" : `/${opts.key}`}`;
  throw s3Error(t, where, res.status, xmlValue(text, "Code"), xmlValue(text, "Message") ?? "");
}

/** A small XML answer as text. */
export async function s3Xml(t: S3Target, opts: S3RequestOptions): Promise<string> {
  const res = await s3Request(t, opts);
  return new TextDecoder().decode(
    await readBody(t.http, res, {
      limit: 16 * 1024 * 1024,
      what: "an S3 listing",
      signal: t.signal,
    }),
  );
}

/** One object of a listing. */
export interface ListedObject {
  key: string;
  size: number;
  lastModified: string;
  etag: string;
}

/** ListObjectsV2, following continuation tokens to the end. */
export async function listObjects(t: S3Target, prefix = ""): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  let token: string | undefined;
  for (;;) {
    const query: Record<string, string> = { "list-type": "2", "max-keys": "1000" };
    if (prefix) query.prefix = prefix;
    if (token) query["continuation-token"] = token;
    const xml = await s3Xml(t, { query });
    for (const c of xmlBlocks(xml, "Contents")) {
      out.push({
        key: xmlValue(c, "Key") ?? "",
        size: Number(xmlValue(c, "Size") ?? 0),
        lastModified: xmlValue(c, "LastModified") ?? "",
        etag: xmlValue(c, "ETag") ?? "",
      });
    }
    token = xmlValue(xml, "NextContinuationToken");
    if (xmlValue(xml, "IsTruncated") !== "true" || !token) return out;
  }
}

/** `x-amz-meta-*` headers, keys lowercased without the prefix (MinIO capitalises them). */
export function userMetadata(headers: Headers): Record<string, string> {
  const meta: Record<string, string> = {};
  headers.forEach((v, k) => {
    const l = k.toLowerCase();
    if (l.startsWith("x-amz-meta-")) meta[l.slice("x-amz-meta-".length)] = v;
  });
  return meta;
}
