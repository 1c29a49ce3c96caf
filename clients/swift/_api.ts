/**
 * The few Swift API calls the client makes, every one through ctx.http with the session's
 * authorizer: HEAD and PUT of containers, HEAD and DELETE of objects, full listings (marker
 * pagination), static large object manifests.
 * @module
 */

import { NetworkError, NotFoundError } from "../../core/errors.ts";
import { readBody } from "../../core/http.ts";
import type { Context } from "../types.ts";
import type { SwiftAuth } from "./_auth.ts";
import { objectUrl } from "./_layout.ts";

/** The default listing page (Swift's own maximum, `container_listing_limit`). */
export const LISTING_LIMIT = 10_000;
/** A listing page larger than this is refused (10,000 names of up to 1 KiB, with JSON around). */
const MAX_LISTING_BYTES = 32 * 1024 * 1024;

/** One entry of a container or account listing (`?format=json`). */
export interface ListingEntry {
  /** The object or container name. */
  name: string;
  /** Size in bytes. */
  bytes?: number;
  /** MD5 ETag of an object. */
  hash?: string;
  /** `2026-12-01T20:27:54.444730` (UTC, no zone). */
  last_modified?: string;
  /** The object's Content-Type. */
  content_type?: string;
  /** Objects in a container (account listings). */
  count?: number;
}

/** Swift calls bound to one session. */
export interface SwiftApi {
  /** The session's account URL. */
  storageUrl(): Promise<string>;
  /** A request to a URL under the account, authorized. */
  request(
    path: (storageUrl: string) => URL,
    init?: Parameters<Context["http"]["request"]>[1],
  ): Promise<Response>;
  /** HEAD of an object or container; undefined on 404. */
  head(container: string, object?: string): Promise<Response | undefined>;
  /** Every entry of the account (`container` undefined) or a container, page after page. */
  list(container?: string, options?: { prefix?: string; limit?: number }): Promise<ListingEntry[]>;
  /** Create a container unless it exists. */
  ensureContainer(container: string): Promise<void>;
}

/** The API over a session. */
export function swiftApi(ctx: Context, auth: SwiftAuth, pageSize = LISTING_LIMIT): SwiftApi {
  const storageUrl = async () => (await auth.session()).storageUrl;
  const request: SwiftApi["request"] = async (path, init = {}) =>
    await ctx.http.request(path(await storageUrl()), {
      signal: ctx.signal,
      ...init,
      auth: auth.authorizer,
    });
  const api: SwiftApi = {
    storageUrl,
    request,
    async head(container, object) {
      const res = await request((s) => objectUrl(s, container, object), {
        method: "HEAD",
        accept: (st) => (st >= 200 && st < 300) || st === 404,
      });
      await res.body?.cancel().catch(() => {});
      return res.status === 404 ? undefined : res;
    },
    async list(container, options = {}) {
      const out: ListingEntry[] = [];
      const limit = options.limit ?? pageSize;
      let marker: string | undefined;
      for (;;) {
        const res = await request((base) => {
          const url = container === undefined ? new URL(base) : objectUrl(base, container);
          url.searchParams.set("format", "json");
          url.searchParams.set("limit", String(limit));
          if (options.prefix) url.searchParams.set("prefix", options.prefix);
          if (marker !== undefined) url.searchParams.set("marker", marker);
          return url;
        }, { headers: { accept: "application/json" } });
        const bytes = await readBody(ctx.http, res, {
          limit: MAX_LISTING_BYTES,
          what: `The listing of ${container === undefined ? "the Swift account" : container}`,
          signal: ctx.signal,
          deadlineMs: 120_000,
        });
        // An empty account or container may answer 204 with no body.
        let page: ListingEntry[] = [];
        if (bytes.length) {
          try {
            page = JSON.parse(new TextDecoder().decode(bytes));
          } catch {
            throw new NetworkError(`Swift answered a listing with malformed JSON`);
          }
        }
        if (!Array.isArray(page) || page.length === 0) break;
        out.push(...page.filter((e) => e && typeof e.name === "string"));
        // Swift may cap a page below the limit asked for: only an empty page ends the listing.
        marker = page.at(-1)!.name;
      }
      return out;
    },
    async ensureContainer(container) {
      if (await api.head(container)) return;
      ctx.log.info(`Creating Swift container ${container}`);
      const res = await request((s) => objectUrl(s, container), { method: "PUT" });
      await res.body?.cancel().catch(() => {});
    },
  };
  return api;
}

/** A missing container: exit 3, listing the containers that exist. */
export async function missingContainer(api: SwiftApi, container: string): Promise<NotFoundError> {
  let names: string[] = [];
  try {
    names = (await api.list()).map((e) => e.name).filter((n) => !n.endsWith("_segments"));
  } catch {
    // The listing is a courtesy; the error stands without it.
  }
  const shown = names.slice(0, 10).map((n) => JSON.stringify(n)).join(", ");
  return new NotFoundError(
    `Swift container ${JSON.stringify(container)} does not exist${
      names.length
        ? `; containers: ${shown}${names.length > 10 ? ` and ${names.length - 10} more` : ""}`
        : "; the account has no containers"
    }`,
  );
}
