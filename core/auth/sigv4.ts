/**
 * AWS Signature Version 4 with node:crypto HMAC-SHA256, checked against AWS's published test
 * vectors, and {@link sigV4Auth}, the authorizer that signs every attempt with a fresh date (ECR's
 * GetAuthorizationToken today, S3 next).
 * @module
 */

import { createHash, createHmac } from "node:crypto";
import type { Logger } from "../log.ts";
import type { Authorizer } from "./types.ts";

/** AWS credentials. */
export interface AwsCredentials {
  /** AWS_ACCESS_KEY_ID. */
  accessKeyId: string;
  /** AWS_SECRET_ACCESS_KEY. */
  secretAccessKey: string;
  /** AWS_SESSION_TOKEN (temporary credentials). */
  sessionToken?: string;
}

/** A request to sign. */
export interface SignRequest {
  /** Method. */
  method: string;
  /** Full URL. */
  url: string;
  /** Headers (names any case); `host` is added from the URL when missing. */
  headers: Record<string, string>;
  /** The body ("" when none). */
  body: string | Uint8Array;
}

/** `YYYYMMDDTHHMMSSZ`. */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

const hex = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Uint8Array, data: string) =>
  new Uint8Array(createHmac("sha256", key).update(data).digest());

// RFC 3986 encoding as AWS wants it: everything but unreserved characters.
function uriEncode(s: string, slash = true): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  ).replace(/%2F/g, slash ? "%2F" : "/");
}

/** The canonical request, string to sign and signature, exposed for tests. */
export interface SignatureParts {
  /** Canonical request. */
  canonicalRequest: string;
  /** String to sign. */
  stringToSign: string;
  /** Hex signature. */
  signature: string;
  /** Signed header names, `;`-joined. */
  signedHeaders: string;
  /** The `Authorization` header value. */
  authorization: string;
}

/** Compute a SigV4 signature (headers must already include x-amz-date and, if any, the token). */
export function signatureParts(
  req: SignRequest,
  creds: AwsCredentials,
  region: string,
  service: string,
  date: Date,
): SignatureParts {
  const url = new URL(req.url);
  const stamp = amzDate(date);
  const day = stamp.slice(0, 8);
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(req.headers)) {
    headers.set(k.toLowerCase(), v.trim().replace(/\s+/g, " "));
  }
  if (!headers.has("host")) headers.set("host", url.host);
  const names = [...headers.keys()].sort();
  const canonicalHeaders = names.map((n) => `${n}:${headers.get(n)}\n`).join("");
  const signedHeaders = names.join(";");
  const query = [...url.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const path = url.pathname.split("/").map((p) => uriEncode(decodeURIComponent(p))).join("/") ||
    "/";
  const canonicalRequest = [
    req.method.toUpperCase(),
    path,
    query,
    canonicalHeaders,
    signedHeaders,
    headers.get("x-amz-content-sha256") ?? hex(req.body),
  ].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", stamp, scope, hex(canonicalRequest)].join("\n");
  let key = hmac(`AWS4${creds.secretAccessKey}`, day);
  key = hmac(key, region);
  key = hmac(key, service);
  key = hmac(key, "aws4_request");
  const signature = createHmac("sha256", key).update(stringToSign).digest("hex");
  const authorization =
    `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { canonicalRequest, stringToSign, signature, signedHeaders, authorization };
}

/** Sign a request: returns its headers plus `x-amz-date`, the session token and `authorization`. */
export function sign(
  req: SignRequest,
  creds: AwsCredentials,
  region: string,
  service: string,
  date: Date = new Date(),
): Record<string, string> {
  const headers: Record<string, string> = { ...req.headers, "x-amz-date": amzDate(date) };
  if (creds.sessionToken) headers["x-amz-security-token"] = creds.sessionToken;
  const parts = signatureParts({ ...req, headers }, creds, region, service, date);
  return { ...headers, authorization: parts.authorization };
}

/** The payload hash S3 accepts for a body that is streamed and not hashed up front. */
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

/** Options of {@link sigV4Auth}. */
export interface SigV4Options {
  /** The credentials, or a lookup run before each signature (temporary credentials rotate). */
  credentials: AwsCredentials | (() => AwsCredentials | Promise<AwsCredentials>);
  /** The region (`us-east-1`). */
  region: string;
  /** The service (`ecr`, `s3`). */
  service: string;
  /** Send `x-amz-content-sha256` (S3 requires it; default: only for s3). */
  contentSha256?: boolean;
  /** The clock (tests pin it). */
  now?: () => Date;
  /** Registers the secret key and session token as secrets. */
  log?: Logger;
}

// Headers a proxy or the transport may rewrite stay out of the signature.
const SIGNED = new Set(["host", "content-type", "content-md5", "range"]);

/**
 * SigV4 as an authorizer: every attempt (retries included) is signed with the current date, its
 * payload hash taken from the body bytes (or `UNSIGNED-PAYLOAD` for a stream body).
 */
export function sigV4Auth(options: SigV4Options): Authorizer {
  const now = options.now ?? (() => new Date());
  const contentSha = options.contentSha256 ?? options.service === "s3";
  return {
    async authorize(request) {
      const creds = typeof options.credentials === "function"
        ? await options.credentials()
        : options.credentials;
      options.log?.addSecret(creds.secretAccessKey);
      options.log?.addSecret(creds.sessionToken);
      const h = request.headers;
      const payload = h.get("x-amz-content-sha256") ??
        (request.streaming ? UNSIGNED_PAYLOAD : hex(request.body ?? ""));
      if (contentSha) h.set("x-amz-content-sha256", payload);
      const date = now();
      h.set("x-amz-date", amzDate(date));
      if (creds.sessionToken) h.set("x-amz-security-token", creds.sessionToken);
      else h.delete("x-amz-security-token");
      const signed: Record<string, string> = { host: request.url.host };
      h.forEach((v, k) => {
        if (SIGNED.has(k) || k.startsWith("x-amz-")) signed[k] = v;
      });
      const parts = signatureParts(
        {
          method: request.method,
          url: request.url.href,
          headers: signed,
          body: request.body ?? "",
        },
        creds,
        options.region,
        options.service,
        date,
      );
      h.set("authorization", parts.authorization);
    },
  };
}
