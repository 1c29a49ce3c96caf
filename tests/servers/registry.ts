/**
 * The distribution registry (Debian's `docker-registry`) for tests, on 127.0.0.1 and a free port,
 * with a generated config: anonymous, htpasswd basic auth, token auth (with tests/servers/
 * token_server.ts) or TLS with a test CA made by openssl. Also a small independent pusher that
 * builds test images (real gzip'd tar layers, multi-platform indexes, SIF artifacts) with plain
 * fetch, so the code under test is not used to seed itself.
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { startTokenServer, type TokenServer } from "./token_server.ts";
import { freePort } from "./_port.ts";

/** Whether the registry binary is installed. */
export const REGISTRY_BIN = "docker-registry";

/** Whether a program is on PATH. */
export function onPath(program: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(join(dir, program)).isFile) return true;
    } catch {
      // next
    }
  }
  return false;
}

/** Registry test flavours. */
export type RegistryMode = "none" | "htpasswd" | "token" | "tls";

/** Options of {@link startRegistry}. */
export interface StartOptions {
  /** Auth mode (default none). */
  mode?: RegistryMode;
  /** Users for htpasswd/token (default testuser:testpass). */
  users?: Record<string, string>;
  /** Token lifetime for token mode. */
  tokenExpiresIn?: number;
  /** Token server lets anonymous users pull. */
  anonymousPull?: boolean;
}

/** A running registry. */
export interface RegistryServer {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** `http(s)://127.0.0.1:<port>`. */
  url: string;
  /** State folder. */
  dir: string;
  /** The test CA (tls mode). */
  caFile?: string;
  /** The token server (token mode). */
  tokens?: TokenServer;
  /** Users. */
  users: Record<string, string>;
  /** Stop the registry (and token server) and remove its state. */
  stop(): Promise<void>;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

export { freePort };

/** Start a registry. */
export async function startRegistry(options: StartOptions = {}): Promise<RegistryServer> {
  const mode = options.mode ?? "none";
  const users = options.users ?? { testuser: "testpass" };
  const dir = await Deno.makeTempDir({ prefix: "sregistry-registry-" });
  let host = "";
  let tokens: TokenServer | undefined;
  let caFile: string | undefined;
  let auth = "";
  let tls = "";
  try {
    if (mode === "htpasswd") {
      let lines = "";
      for (const [u, p] of Object.entries(users)) lines += await run("htpasswd", ["-Bbn", u, p]);
      await Deno.writeTextFile(join(dir, "htpasswd"), lines);
      auth = `auth:\n  htpasswd:\n    realm: basic-realm\n    path: ${join(dir, "htpasswd")}\n`;
    } else if (mode === "token") {
      await run("openssl", [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "token.key",
        "-out",
        "token.crt",
        "-days",
        "2",
        "-subj",
        "/CN=test-token-issuer",
      ], dir);
      tokens = await startTokenServer({
        keyPem: await Deno.readTextFile(join(dir, "token.key")),
        certPem: await Deno.readTextFile(join(dir, "token.crt")),
        issuer: "test-issuer",
        users,
        expiresIn: options.tokenExpiresIn,
        anonymousPull: options.anonymousPull,
      });
      auth = `auth:\n  token:\n    realm: ${tokens.realm}\n    service: test-registry\n` +
        `    issuer: test-issuer\n    rootcertbundle: ${join(dir, "token.crt")}\n`;
    } else if (mode === "tls") {
      await run("openssl", [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=sregistry test CA",
      ], dir);
      await run("openssl", [
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
      ], dir);
      await Deno.writeTextFile(
        join(dir, "ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
      );
      await run("openssl", [
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
      ], dir);
      caFile = join(dir, "ca.crt");
      tls = `  tls:\n    certificate: ${join(dir, "server.crt")}\n    key: ${
        join(dir, "server.key")
      }\n`;
    }
    const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, "data")}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: @HOST@
  secret: test-secret-not-random
${tls}${auth}`;
    await Deno.writeTextFile(join(dir, "config.tmpl"), config);
  } catch (e) {
    await tokens?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  const client = caFile
    ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(caFile)] })
    : undefined;
  const template = await Deno.readTextFile(join(dir, "config.tmpl"));
  let child: Deno.ChildProcess | undefined;
  let url = "";
  const stopChild = async () => {
    try {
      child?.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child?.status;
  };
  const stop = async () => {
    await stopChild();
    await tokens?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    // The port is picked just before the start, and the answer must come from a registry: under a
    // parallel test run another server can take a port between freePort() and the bind.
    for (let attempt = 0;; attempt++) {
      host = `127.0.0.1:${freePort()}`;
      url = `${mode === "tls" ? "https" : "http"}://${host}`;
      await Deno.writeTextFile(join(dir, "config.yml"), template.replace("@HOST@", host));
      child = new Deno.Command(REGISTRY_BIN, {
        args: ["serve", join(dir, "config.yml")],
        stdout: "null",
        stderr: "null",
        stdin: "null",
      }).spawn();
      let exited = false;
      child.status.then(() => exited = true);
      let ready = false;
      for (let i = 0; i <= 100 && !exited; i++) {
        try {
          const res = await fetch(`${url}/v2/`, client ? { client } : {});
          await res.body?.cancel();
          ready = res.headers.has("docker-distribution-api-version");
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      if (ready && !exited) break;
      await stopChild();
      if (attempt >= 4) throw new Error(`registry did not start (last port ${host})`);
    }
  } catch (e) {
    await stop();
    throw e;
  } finally {
    client?.close();
  }
  return { host, url, dir, caFile, tokens, users, stop };
}

// ---------------------------------------------------------------------------------------------
// An independent pusher for test content.

/** sha256 digest. */
export function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A tiny tar (ustar) with the given files, gzip'd. */
export async function makeLayer(files: Record<string, Uint8Array | string>): Promise<Uint8Array> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const [name, content] of Object.entries(files)) {
    const body = typeof content === "string" ? enc.encode(content) : content;
    const h = new Uint8Array(512);
    const put = (off: number, s: string) => h.set(enc.encode(s), off);
    put(0, name);
    put(100, "0000644\0");
    put(108, "0000000\0");
    put(116, "0000000\0");
    put(124, body.length.toString(8).padStart(11, "0") + "\0");
    put(136, "00000000000\0");
    put(148, "        ");
    put(156, "0");
    put(257, "ustar\0");
    put(263, "00");
    let sum = 0;
    for (const b of h) sum += b;
    put(148, sum.toString(8).padStart(6, "0") + "\0 ");
    parts.push(h, body, new Uint8Array((512 - body.length % 512) % 512));
  }
  parts.push(new Uint8Array(1024));
  const tar = new Blob(parts as BlobPart[]);
  const gz = tar.stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(gz).arrayBuffer());
}

/** Push helper options: a base URL and optional Authorization. */
export interface PushTarget {
  /** `http://127.0.0.1:port`. */
  url: string;
  /** Authorization header value. */
  authorization?: string;
  /** HTTP client (TLS). */
  client?: Deno.HttpClient;
}

async function req(t: PushTarget, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (t.authorization) headers.set("authorization", t.authorization);
  const url = path.startsWith("http") ? path : `${t.url}${path}`;
  return await fetch(url, { ...init, headers, ...(t.client ? { client: t.client } : {}) });
}

/** Upload a blob (POST then PUT), returning its descriptor fields. */
export async function pushBlob(
  t: PushTarget,
  repo: string,
  bytes: Uint8Array,
): Promise<{ digest: string; size: number }> {
  const digest = digestOf(bytes);
  const start = await req(t, `/v2/${repo}/blobs/uploads/`, { method: "POST" });
  await start.body?.cancel();
  if (start.status !== 202) throw new Error(`POST upload: ${start.status}`);
  const loc = new URL(start.headers.get("location")!, t.url);
  loc.searchParams.set("digest", digest);
  const put = await req(t, loc.toString(), {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: bytes as BodyInit,
  });
  await put.body?.cancel();
  if (put.status !== 201) throw new Error(`PUT blob: ${put.status}`);
  return { digest, size: bytes.length };
}

/** PUT a manifest; returns its digest. */
export async function pushManifest(
  t: PushTarget,
  repo: string,
  ref: string,
  manifest: unknown,
  mediaType: string,
): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(manifest));
  const res = await req(t, `/v2/${repo}/manifests/${ref}`, {
    method: "PUT",
    headers: { "content-type": mediaType },
    body: bytes,
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT manifest: ${res.status} ${text}`);
  return digestOf(bytes);
}

/** A pushed test image. */
export interface PushedImage {
  /** Manifest digest. */
  digest: string;
  /** Layer digests. */
  layers: string[];
  /** Config digest. */
  config: string;
}

/** Push an image with the given layers and config. */
export async function pushImage(
  t: PushTarget,
  repo: string,
  tag: string | undefined,
  layers: Uint8Array[],
  config: Record<string, unknown> = {},
  options: { docker?: boolean } = {},
): Promise<PushedImage> {
  const descs = [];
  for (const l of layers) descs.push({ ...(await pushBlob(t, repo, l)) });
  const cfg = {
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: descs.map((d) => d.digest) },
    ...config,
  };
  const cfgDesc = await pushBlob(t, repo, new TextEncoder().encode(JSON.stringify(cfg)));
  const docker = options.docker ?? false;
  const manifest = {
    schemaVersion: 2,
    mediaType: docker
      ? "application/vnd.docker.distribution.manifest.v2+json"
      : "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: docker
        ? "application/vnd.docker.container.image.v1+json"
        : "application/vnd.oci.image.config.v1+json",
      ...cfgDesc,
    },
    layers: descs.map((d) => ({
      mediaType: docker
        ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
        : "application/vnd.oci.image.layer.v1.tar+gzip",
      ...d,
    })),
  };
  const digest = await pushManifest(
    t,
    repo,
    tag ?? digestOf(new TextEncoder().encode(JSON.stringify(manifest))),
    manifest,
    manifest.mediaType,
  );
  return { digest, layers: descs.map((d) => d.digest), config: cfgDesc.digest };
}

/** Push an OCI index over per-platform images; returns the index digest and the images. */
export async function pushIndex(
  t: PushTarget,
  repo: string,
  tag: string,
  platforms: { os: string; architecture: string; variant?: string; layers: Uint8Array[] }[],
): Promise<{ digest: string; images: PushedImage[] }> {
  const images: PushedImage[] = [];
  const manifests = [];
  for (const p of platforms) {
    const img = await pushImage(t, repo, undefined, p.layers, {
      architecture: p.architecture,
      os: p.os,
      ...(p.variant ? { variant: p.variant } : {}),
      config: { Labels: { platform: `${p.os}/${p.architecture}` } },
    });
    images.push(img);
    const res = await req(t, `/v2/${repo}/manifests/${img.digest}`, {
      method: "HEAD",
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    await res.body?.cancel();
    manifests.push({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: img.digest,
      size: Number(res.headers.get("content-length")),
      platform: {
        os: p.os,
        architecture: p.architecture,
        ...(p.variant ? { variant: p.variant } : {}),
      },
    });
  }
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests,
  };
  const digest = await pushManifest(t, repo, tag, index, index.mediaType);
  return { digest, images };
}

/** A fake SIF: a launch line, SIF_MAGIC at offset 32, then random bytes. */
export function fakeSif(size = 4096): Uint8Array {
  const out = new Uint8Array(size);
  const enc = new TextEncoder();
  out.set(enc.encode("#!/usr/bin/env run-singularity\n"), 0);
  out.set(enc.encode("SIF_MAGIC\0"), 32);
  const rnd = new Uint8Array(size - 64);
  for (let i = 0; i < rnd.length; i += 65536) crypto.getRandomValues(rnd.subarray(i, i + 65536));
  out.set(rnd, 64);
  return out;
}

/** Get a token from a token server (for seeding token-auth registries). */
export async function tokenFor(
  realm: string,
  user: string,
  password: string,
  scope: string,
): Promise<string> {
  const u = new URL(realm);
  u.searchParams.set("service", "test-registry");
  u.searchParams.set("scope", scope);
  const res = await fetch(u, {
    headers: { authorization: `Basic ${btoa(`${user}:${password}`)}` },
  });
  const data = await res.json();
  return data.token;
}

/** Push a SIF as an ORAS artifact (the layout SingularityCE and Apptainer write), independently. */
export async function pushSifArtifact(
  t: PushTarget,
  repo: string,
  tag: string,
  sif: Uint8Array,
): Promise<string> {
  const config = await pushBlob(t, repo, new TextEncoder().encode("{}"));
  const layer = await pushBlob(t, repo, sif);
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.sylabs.sif.config.v1+json", ...config },
    layers: [{
      mediaType: "application/vnd.sylabs.sif.layer.v1.sif",
      ...layer,
      annotations: { "org.opencontainers.image.title": `${tag}.sif` },
    }],
  };
  return await pushManifest(t, repo, tag, manifest, manifest.mediaType);
}
