/**
 * AWS Signature Version 4 for the few AWS JSON calls sregistry makes (ECR GetAuthorizationToken),
 * with node:crypto HMAC-SHA256. Checked against AWS's published test vectors.
 * @module
 */

import { createHash, createHmac } from "node:crypto";

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
