/**
 * OCI image references with docker's rules: `ubuntu` is `index.docker.io/library/ubuntu:latest`, a
 * first component with a `.` or `:` (or `localhost`) is a registry host, and `@sha256:...` pins a
 * digest. Unlike sregistry-cli, a registry named in the reference is always honoured.
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { parseBoolean } from "../../core/settings.ts";
import { isLoopback } from "../../core/http.ts";

/** A parsed reference. */
export interface Reference {
  /** The registry host (with port), e.g. `index.docker.io`, `127.0.0.1:5000`. */
  registry: string;
  /** The repository path inside the registry, e.g. `library/ubuntu`. */
  repository: string;
  /** The tag (`latest` when neither tag nor digest was given). */
  tag?: string;
  /** `sha256:<hex>` when the reference pins a digest. */
  digest?: string;
  /** Whether the registry came from the reference (not from a default). */
  explicitRegistry: boolean;
}

/** Defaults applied by {@link parseReference}. */
export interface ReferenceDefaults {
  /** Registry host when the reference has none (default `index.docker.io`). */
  registry?: string;
  /** Namespace prepended to one-component repositories on the default registry (default `library`). */
  namespace?: string;
}

/** Docker Hub's API host. */
export const DOCKER_HUB = "index.docker.io";
const HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;

/** Whether a first path component names a registry host (docker's rule). */
export function looksLikeRegistry(component: string): boolean {
  return component.includes(".") || component.includes(":") || component === "localhost";
}

/**
 * Parse a reference.
 * @throws {UsageError} for an empty reference, an invalid repository component, tag or digest.
 */
export function parseReference(input: string, defaults: ReferenceDefaults = {}): Reference {
  const original = input;
  const s = input.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").trim();
  const fail = (why: string): never => {
    throw new UsageError(`Cannot parse image reference ${JSON.stringify(original)}: ${why}`);
  };
  if (s === "") fail("it is empty");
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) fail(`${JSON.stringify(digest)} is not a digest (sha256:<64 hex>)`);
    if (digest.startsWith("sha256:") && !SHA256.test(digest)) {
      fail(`${JSON.stringify(digest)} is not a sha256 digest (64 lower-case hex digits)`);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(`${JSON.stringify(tag)} is not a valid tag`);
  }
  const parts = rest.split("/");
  let registry: string | undefined;
  if (parts.length > 1 && looksLikeRegistry(parts[0])) registry = parts.shift()!;
  const explicitRegistry = registry !== undefined;
  registry ??= defaults.registry ?? DOCKER_HUB;
  if (HUB_ALIASES.has(registry.toLowerCase())) registry = DOCKER_HUB;
  const namespace = defaults.namespace ?? (registry === DOCKER_HUB ? "library" : undefined);
  if (parts.length === 1 && namespace && (!explicitRegistry || registry === DOCKER_HUB)) {
    parts.unshift(namespace);
  }
  for (const p of parts) {
    if (!COMPONENT.test(p)) {
      fail(
        `repository component ${
          JSON.stringify(p)
        } must be lower-case letters, digits and separators (. _ __ -)`,
      );
    }
  }
  if (!tag && !digest) tag = "latest";
  return { registry, repository: parts.join("/"), tag, digest, explicitRegistry };
}

/** The tag or digest to ask the registry for (the digest wins when both are given). */
export function referenceTarget(ref: Reference): string {
  return ref.digest ?? ref.tag ?? "latest";
}

/** `registry/repository[:tag][@digest]`. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ""}${
    ref.digest ? `@${ref.digest}` : ""
  }`;
}

/**
 * `http` or `https` for a registry: an explicit NOHTTPS setting wins (true: http, false: https);
 * otherwise loopback registries speak plain http, as docker does, and everything else https.
 */
export function registryScheme(host: string, noHttps: string | undefined): "http" | "https" {
  if (noHttps !== undefined && noHttps.trim() !== "") {
    return parseBoolean(noHttps) ? "http" : "https";
  }
  return isLoopback(host) ? "http" : "https";
}

/** The catalog name of a reference: the registry is dropped when it is the client's default. */
export function catalogName(ref: Reference, defaultRegistry: string): string {
  const prefix = ref.registry === defaultRegistry ? "" : `${ref.registry}/`;
  return `${prefix}${ref.repository}:${ref.tag ?? "latest"}`;
}
