/**
 * A strict fake of ECR's GetAuthorizationToken (the one cloud-only call aws:// needs). It rejects
 * a wrong content type or target, a request older than 5 minutes, an unknown access key and a bad
 * SigV4 signature, as ECR does; a good call returns `base64("AWS:<password>")` for the real
 * (htpasswd) registry behind it.
 * @module
 */

import { signatureParts } from "../../core/auth/sigv4.ts";

/** Options of {@link startEcrFake}. */
export interface EcrFakeOptions {
  /** Access key id -> secret. */
  keys: Record<string, string>;
  /** Region the fake lives in. */
  region: string;
  /** The registry password it hands out (user AWS). */
  password: string;
  /** The registry host for proxyEndpoint. */
  registryHost: string;
}

/** A running fake. */
export interface EcrFake {
  /** `http://127.0.0.1:<port>/`. */
  endpoint: string;
  /** Calls accepted / rejected. */
  readonly stats: { ok: number; rejected: number };
  /** Stop it. */
  stop(): Promise<void>;
}

const fail = (status: number, type: string, message: string) =>
  Response.json({ __type: type, message }, {
    status,
    headers: { "content-type": "application/x-amz-json-1.1" },
  });

/** Start the fake. */
export function startEcrFake(options: EcrFakeOptions): EcrFake {
  const stats = { ok: 0, rejected: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const r = await handle(req);
    if (r.ok) stats.ok++;
    else stats.rejected++;
    return r;
  });
  async function handle(req: Request): Promise<Response> {
    const body = await req.text();
    if (req.method !== "POST") return fail(405, "UnknownOperationException", "POST only");
    if (req.headers.get("content-type") !== "application/x-amz-json-1.1") {
      return fail(400, "SerializationException", "wrong content type");
    }
    if (
      req.headers.get("x-amz-target") !==
        "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
    ) return fail(400, "UnknownOperationException", "unknown target");
    const auth = req.headers.get("authorization") ?? "";
    const m = auth.match(
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/ecr\/aws4_request, SignedHeaders=([^,]+), Signature=([a-f0-9]{64})$/,
    );
    if (!m) return fail(403, "MissingAuthenticationTokenException", "missing or malformed auth");
    const [, key, , region, signed, signature] = m;
    const secret = options.keys[key];
    if (!secret) return fail(403, "UnrecognizedClientException", "unknown access key");
    if (region !== options.region) return fail(403, "InvalidSignatureException", "wrong region");
    const stamp = req.headers.get("x-amz-date") ?? "";
    const when = Date.parse(
      stamp.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"),
    );
    if (!Number.isFinite(when) || Math.abs(Date.now() - when) > 300_000) {
      return fail(403, "InvalidSignatureException", "Signature expired");
    }
    const headers: Record<string, string> = {};
    for (const h of signed.split(";")) headers[h] = req.headers.get(h) ?? "";
    if (!signed.includes("host") || !signed.includes("x-amz-target")) {
      return fail(403, "InvalidSignatureException", "host and x-amz-target must be signed");
    }
    const expected = signatureParts(
      { method: req.method, url: req.url, headers, body },
      { accessKeyId: key, secretAccessKey: secret },
      region,
      "ecr",
      new Date(when),
    ).signature;
    if (expected !== signature) {
      return fail(
        403,
        "InvalidSignatureException",
        "The request signature we calculated does not match",
      );
    }
    return Response.json({
      authorizationData: [{
        authorizationToken: btoa(`AWS:${options.password}`),
        expiresAt: Math.floor(Date.now() / 1000) + 43200,
        proxyEndpoint: `http://${options.registryHost}`,
      }],
    }, { headers: { "content-type": "application/x-amz-json-1.1" } });
  }
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}/`,
    stats,
    stop: () => server.shutdown(),
  };
}
