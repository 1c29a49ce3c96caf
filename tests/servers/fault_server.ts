/**
 * A fault-injecting HTTP file server (Deno.serve on 127.0.0.1, a free port) for transfer tests: it
 * drops connections mid-body, answers 500/429 with Retry-After, sends a wrong body, stalls, demands a
 * bearer token that expires, and redirects to another origin. Faults are per path and counted, so a
 * test says "drop the first two attempts" and checks the client recovers.
 *
 * Strict on purpose: Range must be a single `bytes=a-b`/`bytes=a-` range, If-Range must match the
 * ETag or the full body is sent (as RFC 9110 requires), and every request is recorded.
 * @module
 */

/** Faults applied to one path. Counters decrease as faults fire. */
export interface Fault {
  /** Close the connection after this many body bytes, `times` times. */
  drop?: { after: number; times: number };
  /** Answer this status (with Retry-After when given) `times` times before serving. */
  status?: { code: number; times: number; retryAfter?: string };
  /** Send these bytes instead of the file (same length); the Repr-Digest still names the real file. */
  wrong?: boolean;
  /** Stop sending (keep the connection open) after this many bytes, `times` times. */
  stall?: { after: number; times: number };
  /** Require `Authorization: Bearer <token>` from GET /token; a token serves `uses` requests. */
  token?: { uses: number };
  /** Ignore Range headers (always 200 with the whole body). */
  noRanges?: boolean;
  /** Redirect (307) to this URL instead of serving. */
  redirectTo?: string;
  /** Do not send ETag/Last-Modified (no validator to resume with). */
  noValidators?: boolean;
  /** Bytes per second (0 = unlimited), to make a transfer slow enough to interrupt. */
  rate?: number;
  /**
   * Serve only the first `truncate` bytes as if they were the whole file: a Content-Length shorter
   * than the real body and no Repr-Digest, so only the image's own header can tell.
   */
  truncate?: number;
  /** A new ETag and Last-Modified on every request: the object "changed", so If-Range never matches. */
  changingValidator?: boolean;
}

/** A served file. */
export interface ServedFile {
  /** The content. */
  data: Uint8Array;
  /** Its ETag. */
  etag: string;
  /** sha256 hex. */
  sha256: string;
}

/** One recorded request. */
export interface RecordedRequest {
  /** Method. */
  method: string;
  /** Path. */
  path: string;
  /** Range header. */
  range?: string;
  /** If-Range header. */
  ifRange?: string;
  /** Authorization header (tests assert it is absent after a cross-origin redirect). */
  authorization?: string;
  /** User-Agent. */
  userAgent?: string;
}

/** A running fault server. */
export interface FaultServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The port. */
  readonly port: number;
  /** Every request, in order. */
  readonly requests: RecordedRequest[];
  /** Body bytes sent so far (all paths). */
  readonly bytesSent: number;
  /** Tokens issued by GET /token. */
  readonly tokensIssued: number;
  /** Serve `data` at `path`. */
  setFile(path: string, data: Uint8Array): Promise<ServedFile>;
  /** Set (replace) the faults of a path. */
  setFault(path: string, fault: Fault): void;
  /** Stop the server and any stalled responses. */
  close(): Promise<void>;
}

async function sha256Hex(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

function b64(hex: string): string {
  return btoa(String.fromCharCode(...hex.match(/../g)!.map((h) => parseInt(h, 16))));
}

/** Deterministic pseudo-random bytes (fast, no crypto needed). */
export function makeData(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  const view = new DataView(out.buffer);
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view.setUint32(i, x >>> 0);
  }
  for (; i < size; i++) out[i] = i & 0xff;
  return out;
}

/** Start a fault server on 127.0.0.1 with a free port. */
export function startFaultServer(): FaultServer {
  const files = new Map<string, ServedFile>();
  const faults = new Map<string, Fault>();
  const requests: RecordedRequest[] = [];
  const pending = new Set<{ close(): void }>();
  let bytesSent = 0;
  let tokensIssued = 0;
  let token: string | undefined;
  let tokenUses = 0;
  const lastModified = new Date(Date.UTC(2024, 0, 1)).toUTCString();
  const ac = new AbortController();

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const url = new URL(req.url);
      requests.push({
        method: req.method,
        path: url.pathname,
        range: req.headers.get("range") ?? undefined,
        ifRange: req.headers.get("if-range") ?? undefined,
        authorization: req.headers.get("authorization") ?? undefined,
        userAgent: req.headers.get("user-agent") ?? undefined,
      });
      if (url.pathname === "/token") {
        tokensIssued++;
        token = `tok-${tokensIssued}-${crypto.randomUUID()}`;
        tokenUses = 0;
        return Response.json({ token, expires_in: 60 });
      }
      const fault = faults.get(url.pathname) ?? {};
      if (fault.redirectTo) {
        return new Response(null, { status: 307, headers: { location: fault.redirectTo } });
      }
      if (fault.token) {
        const auth = req.headers.get("authorization");
        if (!token || auth !== `Bearer ${token}` || tokenUses >= fault.token.uses) {
          return new Response("token expired", {
            status: 401,
            headers: {
              "www-authenticate": `Bearer realm="${url.origin}/token",service="fault",scope="pull"`,
            },
          });
        }
        tokenUses++;
      }
      if (fault.status && fault.status.times > 0) {
        fault.status.times--;
        const headers = new Headers();
        if (fault.status.retryAfter) headers.set("retry-after", fault.status.retryAfter);
        return new Response(`fault ${fault.status.code}`, { status: fault.status.code, headers });
      }
      const served = files.get(url.pathname);
      if (!served) return new Response("not found", { status: 404 });
      const file = fault.truncate === undefined
        ? served
        : { ...served, data: served.data.subarray(0, fault.truncate) };
      const size = file.data.length;
      const headers = new Headers({
        "content-type": "application/octet-stream",
        "accept-ranges": fault.noRanges ? "none" : "bytes",
      });
      if (fault.truncate === undefined) headers.set("repr-digest", `sha-256=:${b64(file.sha256)}:`);
      let etag = file.etag, modified = lastModified;
      if (fault.changingValidator) {
        etag = `"${file.sha256.slice(0, 8)}-${requests.length}"`;
        modified = new Date(Date.UTC(2024, 0, 1) + requests.length * 1000).toUTCString();
      }
      if (!fault.noValidators) {
        headers.set("etag", etag);
        headers.set("last-modified", modified);
      }
      let start = 0, end = size;
      let status = 200;
      const range = req.headers.get("range");
      const ifRange = req.headers.get("if-range");
      const rangeApplies = range && !fault.noRanges &&
        (!ifRange || (!fault.noValidators && (ifRange === etag || ifRange === modified)));
      if (rangeApplies) {
        const m = range.match(/^bytes=(\d+)-(\d*)$/);
        if (!m) return new Response("bad range", { status: 400 });
        start = Number(m[1]);
        end = m[2] ? Math.min(size, Number(m[2]) + 1) : size;
        if (start >= size) {
          return new Response(null, {
            status: 416,
            headers: { "content-range": `bytes */${size}` },
          });
        }
        status = 206;
        headers.set("content-range", `bytes ${start}-${end - 1}/${size}`);
      }
      headers.set("content-length", String(end - start));
      if (req.method === "HEAD") return new Response(null, { status, headers });
      const data = fault.wrong ? makeData(size, 99) : file.data;
      let dropAt = Infinity, stallAt = Infinity;
      if (fault.drop && fault.drop.times > 0) {
        fault.drop.times--;
        dropAt = fault.drop.after;
      }
      if (fault.stall && fault.stall.times > 0) {
        fault.stall.times--;
        stallAt = fault.stall.after;
      }
      let pos = start;
      let sent = 0;
      const chunk = 64 * 1024;
      const rate = fault.rate ?? 0;
      let handle: { close(): void } | undefined;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (pos >= end) {
            controller.close();
            return;
          }
          if (sent >= dropAt) {
            // Ending the body short of its Content-Length makes the server cut the connection,
            // which the client sees as a drop. Erroring the stream would too, but Deno's server
            // then prints the error's stack trace, and passing runs would look like failures.
            controller.close();
            return;
          }
          if (sent >= stallAt) {
            // Never answer again; closed by the client's cancel or by close().
            await new Promise<void>((resolve) => {
              handle = { close: resolve };
              pending.add(handle);
            });
            controller.close(); // short of Content-Length: a cut connection, quietly
            return;
          }
          const n = Math.min(chunk, end - pos, dropAt - sent, stallAt - sent);
          if (rate > 0) await new Promise((r) => setTimeout(r, (n / rate) * 1000));
          controller.enqueue(data.slice(pos, pos + n));
          pos += n;
          sent += n;
          bytesSent += n;
        },
        cancel() {
          if (handle) {
            handle.close();
            pending.delete(handle);
          }
        },
      });
      return new Response(body, { status, headers });
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get bytesSent() {
      return bytesSent;
    },
    get tokensIssued() {
      return tokensIssued;
    },
    async setFile(path, data) {
      const sha256 = await sha256Hex(data);
      const f = { data, sha256, etag: `"${sha256.slice(0, 16)}"` };
      files.set(path, f);
      return f;
    },
    setFault(path, fault) {
      faults.set(path, fault);
    },
    async close() {
      for (const h of pending) h.close();
      pending.clear();
      ac.abort();
      await server.finished;
    },
  };
}
