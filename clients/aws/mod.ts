/**
 * aws://: Amazon ECR. The registry password comes from ECR's GetAuthorizationToken API, signed with
 * SigV4 from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; the registry is then
 * spoken to with Basic auth `AWS:<password>`.
 * @module
 */

import type { Client, ClientFactory, Context } from "../types.ts";
import { AuthError, ConfigError, NetworkError } from "../../core/errors.ts";
import type { Credentials } from "../oci/auth.ts";
import {
  type OciClientConfig,
  type OciDeps,
  pullImage,
  recordImage,
  searchRegistry,
} from "../oci/client.ts";
import { type AwsCredentials, sigV4Auth } from "../../core/auth/sigv4.ts";
import { MAX_JSON_BYTES, readBody } from "../../core/http.ts";

/** The ECR JSON API target prefix. */
export const ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921";

/** What GetAuthorizationToken gave. */
export interface EcrToken {
  /** Decoded credentials (user `AWS`). */
  credentials: Credentials;
  /** The registry endpoint host it is valid for. */
  proxyEndpoint?: string;
  /** Expiry, when given. */
  expiresAt?: Date;
}

/** Call ECR GetAuthorizationToken. */
export async function getEcrToken(
  ctx: Context,
  options: {
    endpoint: string;
    region: string;
    creds: AwsCredentials;
    registryId?: string;
    now?: Date;
  },
): Promise<EcrToken> {
  const body = JSON.stringify(options.registryId ? { registryIds: [options.registryId] } : {});
  const url = options.endpoint;
  const now = options.now;
  const res = await ctx.http.request(url, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": `${ECR_TARGET}.GetAuthorizationToken`,
    },
    body,
    // Signed per attempt: a retry after a slow 5xx still carries a date ECR accepts.
    auth: sigV4Auth({
      credentials: options.creds,
      region: options.region,
      service: "ecr",
      log: ctx.log,
      ...(now ? { now: () => now } : {}),
    }),
    accept: (s) => s < 500 && s !== 429 && s !== 408,
    signal: ctx.signal,
  });
  const text = new TextDecoder().decode(
    await readBody(ctx.http, res, {
      limit: MAX_JSON_BYTES,
      what: "The ECR token answer",
      signal: ctx.signal,
    }),
  );
  let data: {
    __type?: string;
    message?: string;
    Message?: string;
    authorizationData?: {
      authorizationToken?: string;
      proxyEndpoint?: string;
      expiresAt?: number;
    }[];
  } = {};
  try {
    data = JSON.parse(text);
  } catch {
    // reported below
  }
  if (!res.ok) {
    const why = `${data.__type?.split("#").at(-1) ?? `HTTP ${res.status}`}: ${
      data.message ?? data.Message ?? ""
    }`;
    if (res.status === 400 || res.status === 401 || res.status === 403) {
      throw new AuthError(
        `ECR GetAuthorizationToken in ${options.region} was refused (${why}); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN`,
      );
    }
    throw new NetworkError(`ECR GetAuthorizationToken failed (${why})`, { status: res.status });
  }
  const auth = data.authorizationData?.[0];
  if (!auth?.authorizationToken) {
    throw new AuthError(`ECR GetAuthorizationToken in ${options.region} returned no token`);
  }
  const decoded = atob(auth.authorizationToken);
  const colon = decoded.indexOf(":");
  if (colon < 0) throw new AuthError("ECR returned a token that is not base64 of user:password");
  const credentials = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  ctx.log.addSecret(credentials.password);
  ctx.log.addSecret(auth.authorizationToken);
  return {
    credentials,
    proxyEndpoint: auth.proxyEndpoint?.replace(/^https?:\/\//, "").replace(/\/+$/, ""),
    expiresAt: auth.expiresAt ? new Date(auth.expiresAt * 1000) : undefined,
  };
}

/** The aws client's OCI configuration. */
export function awsConfig(ctx: Context): OciClientConfig {
  const cs = ctx.clientSettings;
  const env = ctx.env;
  const region = cs.get("SREGISTRY_AWS_ZONE") ?? env.get("AWS_REGION") ??
    env.get("AWS_DEFAULT_REGION");
  const id = cs.get("SREGISTRY_AWS_ID");
  const base = cs.get("SREGISTRY_AWS_BASE") ??
    (id && region ? `${id}.dkr.ecr.${region}.amazonaws.com` : undefined);
  const need = () => {
    if (!region) {
      throw new ConfigError(
        "The aws client needs a region: export SREGISTRY_AWS_ZONE or AWS_REGION (e.g. us-east-1)",
      );
    }
    if (!base) {
      throw new ConfigError(
        "The aws client needs the registry: export SREGISTRY_AWS_ID (the account id) or SREGISTRY_AWS_BASE",
      );
    }
    return { region, base };
  };
  return {
    scheme: "aws",
    get defaultRegistry() {
      return need().base;
    },
    defaultNamespace: "aws",
    noHttps: cs.get("SREGISTRY_AWS_NOHTTPS"),
    preemptiveBasic: true,
    credentialHint: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    async credentials() {
      const { region } = need();
      const accessKeyId = env.get("AWS_ACCESS_KEY_ID");
      const secretAccessKey = env.get("AWS_SECRET_ACCESS_KEY");
      if (!accessKeyId || !secretAccessKey) {
        throw new ConfigError(
          "The aws client needs AWS credentials: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)",
        );
      }
      const endpoint = cs.get("SREGISTRY_AWS_ENDPOINT") ??
        `https://api.ecr.${region}.amazonaws.com/`;
      const token = await getEcrToken(ctx, {
        endpoint,
        region,
        creds: { accessKeyId, secretAccessKey, sessionToken: env.get("AWS_SESSION_TOKEN") },
        registryId: id,
      });
      return token.credentials;
    },
  };
}

/** Build an aws client. */
export function createAwsClient(ctx: Context, deps: OciDeps = {}): Client {
  const config = awsConfig(ctx);
  return {
    name: "aws",
    pull: (image, into) => pullImage(ctx, config, image, into, deps),
    record: (image, options) => recordImage(ctx, config, image, deps, options?.platform),
    search: (query) => searchRegistry(ctx, config, query, deps),
  };
}

/** The aws:// client. */
export const awsFactory: ClientFactory = {
  scheme: "aws",
  description: "Amazon ECR: pull images (to SIF or OCI archive) with a SigV4-signed registry token",
  settings: [
    { name: "SREGISTRY_AWS_ID", description: "AWS account id (the registry)" },
    { name: "SREGISTRY_AWS_ZONE", description: "Region (else AWS_REGION)" },
    {
      name: "SREGISTRY_AWS_BASE",
      description: "Registry host",
      default: "<id>.dkr.ecr.<zone>.amazonaws.com",
    },
    {
      name: "SREGISTRY_AWS_ENDPOINT",
      description: "ECR API endpoint",
      default: "https://api.ecr.<zone>.amazonaws.com/",
    },
    { name: "SREGISTRY_AWS_NOHTTPS", description: "true: plain http" },
    { name: "AWS_ACCESS_KEY_ID", description: "AWS access key", required: true },
    { name: "AWS_SECRET_ACCESS_KEY", description: "AWS secret key", secret: true, required: true },
    {
      name: "AWS_SESSION_TOKEN",
      description: "Session token for temporary credentials",
      secret: true,
    },
  ],
  create: (ctx) => createAwsClient(ctx),
};
