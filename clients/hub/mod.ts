/**
 * Singularity Hub (`shub://`, `hub://`), the default client: `sregistry pull vsoch/hello-world`.
 *
 * The API as sregistry-cli and Apptainer spoke it: `GET <base>/container/<collection>/<image>:<tag>
 * [@<version>]` answers a manifest `{image, name, tag, version, commit, ...}` whose `image` is the
 * download URL (a signed storage URL on the live service, a DataLad URL on the archive), and
 * `GET <base>/collections/` lists collections with their containers. Singularity Hub has been a
 * read-only archive since 2021, so the base is a setting (SREGISTRY_HUB_BASE).
 *
 * Fixed from the original: a manifest without `version` no longer crashes; the file is verified
 * against the manifest's hash (sha256, or the md5 the hub used as version) and size when given;
 * the collections listing follows `next` pages and ends; the download follows redirects.
 * @module
 */

import type {
  Client,
  ClientFactory,
  Context,
  PulledImage,
  PullTarget,
  RemoteRecord,
  SearchHit,
} from "../types.ts";
import { IntegrityError, NetworkError, NotFoundError, UsageError } from "../../core/errors.ts";
import { readBody } from "../../core/http.ts";
import { parseImageName, removeUri } from "../../core/names.ts";
import { download } from "../../core/transfer/mod.ts";
import type { Metadata } from "../../db/types.ts";
import { hexDigestOfFile } from "../../core/hasher.ts";

/** The original's hard-coded API base. */
export const HUB_DEFAULT_BASE = "https://www.singularity-hub.org/api";

/** The most listing pages followed (10 collections a page): a server that never ends stops here. */
export const MAX_PAGES = 1000;

/** A container manifest, as the hub answers it. */
export interface HubManifest {
  /** Download URL. */
  image?: string;
  /** `collection/container`. */
  name?: string;
  /** Tag. */
  tag?: string;
  /** The image's hash (md5 on the hub; `sha256:`/`sha256.` forms are accepted too). */
  version?: string;
  /** The git commit it was built from. */
  commit?: string;
  /** Size in bytes, when given. */
  size?: number;
  /** Anything else. */
  [key: string]: unknown;
}

/** What a hash in a manifest says, and how to check it. */
export function expectedHash(
  version: string | undefined,
): { sha256?: string; md5?: string } {
  if (!version) return {};
  const v = version.trim().toLowerCase();
  const sha = /^(?:sha256[:.])?([0-9a-f]{64})$/.exec(v);
  if (sha) return { sha256: sha[1] };
  const md5 = /^(?:md5[:.])?([0-9a-f]{32})$/.exec(v);
  if (md5) return { md5: md5[1] };
  return {};
}

/** md5 of a file, streamed (the hex version Singularity Hub and Registry Server publish). */
export function md5File(path: string): Promise<string> {
  return hexDigestOfFile(path, "md5");
}

function apiBase(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw.replace(/\/+$/, "") + "/");
  } catch {
    throw new UsageError(
      `SREGISTRY_HUB_BASE ${JSON.stringify(raw)} is not a URL: use https://host/api`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(
      `SREGISTRY_HUB_BASE ${JSON.stringify(raw)} is not an http(s) URL: use https://host/api`,
    );
  }
  return url;
}

/** The manifest URL of an image: `<base>/container/<collection>/<image>:<tag>[@<version>]`. */
export function manifestUrl(base: string, image: string): URL {
  // The hub URL keeps the case the user typed (the original parsed it with lowercase=False).
  const names = parseImageName(removeUri(image), { lowercase: false });
  const path = `container/${names.collection}/${names.image}:${names.tag}${
    names.version ? `@${names.version}` : ""
  }`;
  return new URL(path, apiBase(base));
}

/** Search hits from a listing: `{results, next}` pages, or a bare list. */
function collectionsOf(body: unknown): { items: unknown[]; next?: string } {
  if (Array.isArray(body)) return { items: body };
  if (body && typeof body === "object") {
    const o = body as { results?: unknown; next?: unknown };
    return {
      items: Array.isArray(o.results) ? o.results : [],
      next: typeof o.next === "string" && o.next ? o.next : undefined,
    };
  }
  return { items: [] };
}

/** Whether `text` matches a search query: a regular expression as in the original, else a substring. */
function matcher(query: string): (text: string) => boolean {
  const q = query.toLowerCase().replaceAll("/", "");
  try {
    const re = new RegExp(q);
    return (t) => re.test(t.toLowerCase());
  } catch {
    return (t) => t.toLowerCase().includes(q);
  }
}

/** The hub client factory. */
export const hubFactory: ClientFactory = {
  scheme: "hub",
  aliases: ["shub"],
  description: "Singularity Hub and its archive (the default client): pull, search, record",
  settings: [
    {
      name: "SREGISTRY_HUB_BASE",
      description: "API base URL (the secrets file's legacy hub.base is read too)",
      default: HUB_DEFAULT_BASE,
    },
  ],
  create(ctx: Context): Client {
    const base = () => {
      const legacy = ctx.settings.all().base;
      return ctx.settings.get(
        "SREGISTRY_HUB_BASE",
        typeof legacy === "string" && legacy ? legacy : HUB_DEFAULT_BASE,
      )!;
    };

    async function manifest(image: string): Promise<{ url: URL; m: HubManifest }> {
      const url = manifestUrl(base(), image);
      const res = await ctx.http.request(url, {
        headers: { accept: "application/json" },
        signal: ctx.signal,
      });
      const text = new TextDecoder().decode(
        await readBody(ctx.http, res, {
          limit: 1024 * 1024,
          what: `The manifest of ${removeUri(image)}`,
          signal: ctx.signal,
        }),
      );
      let m: unknown;
      try {
        m = JSON.parse(text);
      } catch {
        throw new NetworkError(
          `The hub at ${url.host} answered something that is not a manifest for ${
            JSON.stringify(removeUri(image))
          }; check SREGISTRY_HUB_BASE`,
        );
      }
      if (!m || typeof m !== "object" || Array.isArray(m)) {
        throw new NetworkError(
          `The hub at ${url.host} answered ${
            JSON.stringify(text.slice(0, 40))
          } instead of a manifest for ${JSON.stringify(removeUri(image))}`,
        );
      }
      return { url, m: m as HubManifest };
    }

    function describe(image: string, url: URL, m: HubManifest): RemoteRecord {
      if (typeof m.image !== "string" || m.image === "") {
        throw new NotFoundError(
          `The hub has no image file for ${
            JSON.stringify(removeUri(image))
          } (its manifest at ${url.href} names none)`,
        );
      }
      const asked = parseImageName(removeUri(image));
      const named = typeof m.name === "string" && m.name.includes("/")
        ? parseImageName(m.name)
        : asked;
      const tag = typeof m.tag === "string" && m.tag ? m.tag : asked.tag;
      const version = typeof m.version === "string" && m.version ? m.version : asked.version;
      const hash = expectedHash(version);
      const metadata: Metadata = { ...(m as Metadata), selfLink: url.href };
      return {
        url: m.image,
        ...(hash.sha256 ? { digest: `sha256:${hash.sha256}` } : {}),
        ...(typeof m.size === "number" && m.size >= 0 ? { size: m.size } : {}),
        metadata,
        suggestedName: parseImageName(`${named.collection}/${named.image}:${tag}`, {
          version,
        }).uri,
        format: "sif",
      };
    }

    return {
      name: "hub",

      async pull(image: string, into: PullTarget): Promise<PulledImage> {
        const { url, m } = await manifest(image);
        const rec = describe(image, url, m);
        const hash = expectedHash(typeof m.version === "string" ? m.version : undefined);
        const r = await download({
          http: ctx.http,
          url: rec.url!,
          dest: into.resumable,
          expectedDigest: rec.digest,
          expectedSize: rec.size,
          progress: ctx.progress,
          signal: ctx.signal,
          label: removeUri(image),
        });
        if (hash.md5) {
          const got = await md5File(r.path);
          if (got !== hash.md5) {
            await Deno.remove(r.path).catch(() => {});
            throw new IntegrityError(
              `The file of ${
                JSON.stringify(removeUri(image))
              } has md5 ${got}, not the ${hash.md5} its manifest gives; it was removed, pull again`,
            );
          }
        }
        await Deno.rename(r.path, into.path);
        return { ...rec, file: into.path, format: "sif", digest: r.digest, size: r.size };
      },

      async record(image: string): Promise<RemoteRecord> {
        const { url, m } = await manifest(image);
        return describe(image, url, m);
      },

      async search(query: string | undefined): Promise<SearchHit[]> {
        const root = apiBase(base());
        const match = query ? matcher(query) : () => true;
        const hits: SearchHit[] = [];
        const seen = new Set<string>();
        let next: string | undefined = new URL("collections/", root).href;
        for (let page = 0; next && page < MAX_PAGES; page++) {
          // A `next` that repeats a page or leaves the hub ends the listing (the original
          // re-fetched the first page forever).
          if (seen.has(next) || new URL(next).origin !== root.origin) break;
          seen.add(next);
          const body: unknown = await ctx.http.json(next, { signal: ctx.signal });
          const { items, next: after } = collectionsOf(body);
          for (const c of items) {
            const containers = (c as { containers?: unknown })?.containers;
            if (!Array.isArray(containers)) continue;
            for (const k of containers as Record<string, unknown>[]) {
              const name = String(k.name ?? k.uri ?? "");
              if (!name) continue;
              const tag = String(k.tag ?? "latest");
              const full = name.includes(":") ? name : `${name}:${tag}`;
              if (!match(full)) continue;
              hits.push({
                uri: `shub://${full}`,
                details: { tag, ...(k.detail ? { detail: String(k.detail) } : {}) },
              });
            }
          }
          next = after;
        }
        return hits;
      },
    };
  },
};
