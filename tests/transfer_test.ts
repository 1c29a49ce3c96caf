import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { IntegrityError, InterruptedError, NetworkError, NotFoundError } from "../core/errors.ts";
import { createHttp, type Http } from "../core/http.ts";
import { createLogger, Level, memorySink } from "../core/log.ts";
import { envFrom } from "../core/settings.ts";
import { hashFile } from "../core/hasher.ts";
import { download, multipartUpload, upload, uploadChunked } from "../core/transfer/mod.ts";
import type { Authorizer } from "../core/auth/types.ts";
import type { ProgressEvent, ProgressSink } from "../core/progress_events.ts";
import { makeData, startFaultServer } from "./servers/fault_server.ts";

/**
 * A sink that keeps the events; `replay` follows them as a renderer would (a part's bytes count
 * towards its parent) and fails on any position past the total or any event out of order.
 */
function recorder(): ProgressSink & {
  events: ProgressEvent[];
  replay(): { done: number[]; starts: ProgressEvent[]; restarts: number };
} {
  const events: ProgressEvent[] = [];
  return {
    events,
    emit: (e) => void events.push(e),
    replay() {
      const bars = new Map<string, { value: number; total?: number; parent?: string }>();
      const done: number[] = [];
      let restarts = 0;
      const check = (id: string) => {
        const b = bars.get(id)!;
        if (b.total !== undefined) {
          assert.ok(b.value <= b.total, `${id} at ${b.value} of ${b.total}`);
        }
        assert.ok(b.value >= 0, `${id} at ${b.value}`);
      };
      const move = (id: string, d: number) => {
        const b = bars.get(id)!;
        b.value += d;
        check(id);
        if (b.parent) {
          bars.get(b.parent)!.value += d;
          check(b.parent);
        }
      };
      for (const e of events) {
        if (e.type === "start") {
          assert.ok(!bars.has(e.id), `started twice: ${e.id}`);
          bars.set(e.id, { value: e.resumedFrom ?? 0, total: e.total, parent: e.parent });
          check(e.id);
          continue;
        }
        const b = bars.get(e.id);
        assert.ok(b, `${e.type} before start: ${e.id}`);
        if (e.type === "advance") move(e.id, e.bytes);
        else if (e.type === "position") move(e.id, e.bytes - b.value);
        else if (e.type === "total") b.total = e.total;
        else if (e.type === "restart") {
          restarts++;
          b.value = 0;
        } else {
          if (!b.parent) done.push(b.value);
          bars.delete(e.id);
        }
      }
      assert.equal(bars.size, 0, "every start has its end");
      return { done, starts: events.filter((e) => e.type === "start" && !e.parent), restarts };
    },
  };
}

function http(extra: Partial<Parameters<typeof createHttp>[0]> = {}): Http {
  const log = createLogger({ level: Level.DEBUG, sink: memorySink() });
  return createHttp({
    log,
    env: envFrom({}),
    sleep: () => Promise.resolve(),
    stallTimeoutMs: 400,
    ...extra,
  });
}

function sha(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

async function withEnv(
  fn: (dir: string, srv: ReturnType<typeof startFaultServer>) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "sreg-transfer-" });
  const srv = startFaultServer();
  try {
    await fn(dir, srv);
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("download streams, verifies and renames into place", async () => {
  await withEnv(async (dir, srv) => {
    const data = makeData(3 * 1024 * 1024 + 17);
    await srv.setFile("/a.bin", data);
    const dest = join(dir, "a.bin");
    const r = await download({
      http: http(),
      url: `${srv.url}/a.bin`,
      dest,
      expectedDigest: sha(data),
    });
    assert.equal(r.size, data.length);
    assert.equal(r.digest, sha(data));
    assert.equal(r.resumedFrom, 0);
    assert.deepEqual(await Deno.readFile(dest), data);
    assert.deepEqual(await files(dir), ["a.bin"]);
    assert.match(srv.requests[0].userAgent ?? "", /^sregistry\/\d/);
  });
});

Deno.test("a dropped connection resumes with Range and If-Range", async () => {
  await withEnv(async (dir, srv) => {
    const data = makeData(2 * 1024 * 1024);
    const f = await srv.setFile("/d.bin", data);
    srv.setFault("/d.bin", { drop: { after: 700_000, times: 2 } });
    const events = recorder();
    const r = await download({
      http: http(),
      url: `${srv.url}/d.bin`,
      dest: join(dir, "d.bin"),
      expectedDigest: sha(data),
      progress: events,
      label: "d",
    });
    assert.equal(r.digest, sha(data));
    const seen = events.replay();
    assert.deepEqual(seen.starts, [{
      type: "start",
      id: seen.starts[0].id,
      label: "d",
      total: undefined,
      resumedFrom: 0,
      parent: undefined,
    }]);
    assert.deepEqual(seen.done, [data.length]);
    const ranged = srv.requests.filter((q) => q.range);
    assert.equal(ranged.length, 2);
    assert.equal(ranged[0].range, "bytes=700000-");
    assert.equal(ranged[0].ifRange, f.etag);
    // Bytes on the wire: the file once, plus nothing re-sent.
    assert.equal(srv.bytesSent, data.length);
  });
});

Deno.test("a wrong body is exit 6 and leaves no file at all", async () => {
  await withEnv(async (dir, srv) => {
    const data = makeData(500_000);
    await srv.setFile("/w.bin", data);
    srv.setFault("/w.bin", { wrong: true });
    const err = await download({
      http: http(),
      url: `${srv.url}/w.bin`,
      dest: join(dir, "w.bin"),
      expectedDigest: sha(data),
    })
      .catch((e) => e);
    assert.ok(err instanceof IntegrityError, String(err));
    assert.equal(err.exitCode, 6);
    assert.match(err.message, /Digest mismatch/);
    assert.deepEqual(await files(dir), []);
  });
});

Deno.test("a request that fails before any byte leaves no partial file behind", async () => {
  await withEnv(async (dir, srv) => {
    const err = await download({
      http: http(),
      url: `${srv.url}/missing.bin`,
      dest: join(dir, "m.bin"),
    }).catch((e) => e);
    assert.ok(err instanceof NotFoundError, String(err));
    assert.deepEqual(await files(dir), []);
  });
});

Deno.test("a size mismatch against expectedSize is an IntegrityError", async () => {
  await withEnv(async (dir, srv) => {
    await srv.setFile("/s.bin", makeData(1000));
    const err = await download({
      http: http(),
      url: `${srv.url}/s.bin`,
      dest: join(dir, "s.bin"),
      expectedSize: 999,
    }).catch((e) => e);
    assert.ok(err instanceof IntegrityError);
    assert.deepEqual(await files(dir), []);
  });
});

Deno.test("a stalled body is detected by lack of progress and resumed", async () => {
  await withEnv(async (dir, srv) => {
    const data = makeData(1_000_000);
    await srv.setFile("/st.bin", data);
    srv.setFault("/st.bin", { stall: { after: 300_000, times: 1 } });
    const t0 = Date.now();
    const r = await download({
      http: http(),
      url: `${srv.url}/st.bin`,
      dest: join(dir, "st.bin"),
      expectedDigest: sha(data),
    });
    assert.equal(r.digest, sha(data));
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(srv.requests.filter((q) => q.range === "bytes=300000-").length, 1);
  });
});

Deno.test("persistent drops give a NetworkError and keep the partial for the next run", async () => {
  await withEnv(async (dir, srv) => {
    const data = makeData(1_000_000);
    await srv.setFile("/p.bin", data);
    srv.setFault("/p.bin", { drop: { after: 0, times: 100 } });
    const dest = join(dir, "p.bin");
    srv.setFault("/p.bin", { drop: { after: 400_000, times: 1 } });
    // First run: one drop, but no retries allowed.
    const err = await download({ http: http({ retries: 0 }), url: `${srv.url}/p.bin`, dest }).catch(
      (e) => e,
    );
    assert.ok(err instanceof NetworkError, String(err));
    assert.equal(err.exitCode, 5);
    assert.deepEqual(await files(dir), ["p.bin.partial", "p.bin.partial.json"]);
    const before = srv.bytesSent;
    const events = recorder();
    const r = await download({
      http: http(),
      url: `${srv.url}/p.bin`,
      dest,
      expectedDigest: sha(data),
      progress: events,
    });
    assert.equal(r.resumedFrom, 400_000);
    // The bar starts where the partial file ends and stops at the size: never above 100%.
    const seen = events.replay();
    assert.equal(seen.starts.length, 1);
    assert.equal((seen.starts[0] as { resumedFrom?: number }).resumedFrom, 400_000);
    assert.deepEqual(seen.done, [data.length]);
    assert.equal(srv.bytesSent - before, data.length - 400_000);
    assert.deepEqual(await files(dir), ["p.bin"]);
  });
});

Deno.test("a changed remote object (If-Range mismatch) starts over", async () => {
  await withEnv(async (dir, srv) => {
    const dest = join(dir, "c.bin");
    await srv.setFile("/c.bin", makeData(800_000, 5));
    srv.setFault("/c.bin", { drop: { after: 300_000, times: 1 } });
    await download({ http: http({ retries: 0 }), url: `${srv.url}/c.bin`, dest }).catch(() => {});
    const data = makeData(800_000, 6);
    await srv.setFile("/c.bin", data);
    const events = recorder();
    const r = await download({ http: http(), url: `${srv.url}/c.bin`, dest, progress: events });
    assert.equal(r.digest, sha(data));
    // Resumed at 300 000, told to start over: the count restarts instead of passing the size.
    const seen = events.replay();
    assert.equal((seen.starts[0] as { resumedFrom?: number }).resumedFrom, 300_000);
    assert.equal(seen.restarts, 1);
    assert.deepEqual(seen.done, [800_000]);
    assert.deepEqual(await Deno.readFile(dest), data);
  });
});

Deno.test("parallel ranged download covers the whole file and survives a drop", async () => {
  await withEnv(async (dir, srv) => {
    const data = makeData(40 * 1024 * 1024 + 3);
    await srv.setFile("/big.bin", data);
    srv.setFault("/big.bin", { drop: { after: 5_000_000, times: 1 } });
    const r = await download({
      http: http(),
      url: `${srv.url}/big.bin`,
      dest: join(dir, "big.bin"),
      parallel: 3,
      parallelThreshold: 1024 * 1024,
      expectedDigest: sha(data),
    });
    assert.equal(r.streams, 3);
    assert.equal(r.digest, sha(data));
    const ranges = srv.requests.filter((q) => q.range).map((q) => q.range);
    assert.ok(ranges.length >= 3, ranges.join(","));
  });
});

Deno.test("parallel parts are fetched in order by a few streams and hashed as they land", async () => {
  await withEnv(async (dir, srv) => {
    const data = makeData(23 * 1024 * 1024 + 5, 8);
    await srv.setFile("/many.bin", data);
    const part = 5 * 1024 * 1024;
    const r = await download({
      http: http(),
      url: `${srv.url}/many.bin`,
      dest: join(dir, "many.bin"),
      parallel: 2,
      parallelThreshold: 1,
      partSize: part,
    });
    assert.equal(r.digest, sha(data));
    assert.equal(r.size, data.length);
    assert.equal(r.streams, 2);
    const want = [0, 1, 2, 3, 4].map((i) =>
      `bytes=${i * part}-${Math.min(data.length, (i + 1) * part) - 1}`
    );
    const ranges = srv.requests.filter((q) => q.range).map((q) => q.range!);
    assert.deepEqual([...ranges].sort(), [...want].sort());
    // In order, give or take the two streams racing to the server.
    for (const [i, r] of ranges.entries()) assert.ok(Math.abs(want.indexOf(r) - i) <= 1, r);
    assert.deepEqual(await Deno.readFile(join(dir, "many.bin")), data);
    // A corrupt body in ranged mode is caught by the followed hash too.
    srv.setFault("/many.bin", { wrong: true });
    const err = await download({
      http: http(),
      url: `${srv.url}/many.bin`,
      dest: join(dir, "bad.bin"),
      parallel: 2,
      parallelThreshold: 1,
      partSize: part,
      expectedDigest: sha(data),
    }).catch((e) => e);
    assert.ok(err instanceof IntegrityError, String(err));
    assert.deepEqual(await files(dir), ["many.bin"]);
  });
});

Deno.test("the job's authorizer signs every request: the first, each ranged part, each retry", async () => {
  await withEnv(async (dir, srv) => {
    const data = makeData(12 * 1024 * 1024 + 1, 3);
    await srv.setFile("/auth.bin", data);
    // The probe's body is cancelled unread and takes the first drop; a part takes the second.
    srv.setFault("/auth.bin", { drop: { after: 1_000_000, times: 2 } });
    const seen: string[] = [];
    const auth: Authorizer = {
      authorize(req) {
        seen.push(req.headers.get("range") ?? "whole");
        req.headers.set("x-signed", "1");
      },
    };
    const r = await download({
      http: http(),
      url: `${srv.url}/auth.bin`,
      dest: join(dir, "auth.bin"),
      auth,
      parallel: 2,
      parallelThreshold: 1,
      partSize: 4 * 1024 * 1024,
    });
    assert.equal(r.digest, sha(data));
    // The probe, four parts, and the retry of the part whose connection dropped; under load the
    // probe may be cancelled before its body starts, and then two parts take a drop each.
    assert.equal(seen[0], "whole");
    assert.equal(seen.length, srv.requests.length);
    assert.ok(seen.length === 6 || seen.length === 7, seen.join(","));
    // Whichever part took the drop resumed 1,000,000 bytes into itself.
    const resumedInPart = (r: string) => {
      const m = r.match(/^bytes=(\d+)-/);
      return m !== null && Number(m[1]) % (4 * 1024 * 1024) === 1_000_000;
    };
    assert.ok(seen.some(resumedInPart), seen.join(","));
  });
});

Deno.test("parallel download resumes per part after an interrupt", async () => {
  await withEnv(async (dir, srv) => {
    const data = makeData(24 * 1024 * 1024);
    await srv.setFile("/pp.bin", data);
    srv.setFault("/pp.bin", { rate: 8 * 1024 * 1024 });
    const dest = join(dir, "pp.bin");
    const ac = new AbortController();
    let got = 0;
    const opts = { parallel: 2, parallelThreshold: 1024 * 1024, expectedDigest: sha(data) };
    const err = await download({
      http: http(),
      url: `${srv.url}/pp.bin`,
      dest,
      ...opts,
      signal: ac.signal,
      progress: {
        emit: (e) => {
          if (e.type === "advance" && (got += e.bytes) > 6 * 1024 * 1024) ac.abort();
        },
      },
    }).catch((e) => e);
    assert.ok(err instanceof InterruptedError, String(err));
    srv.setFault("/pp.bin", {});
    const before = srv.bytesSent;
    const events = recorder();
    const r = await download({
      http: http(),
      url: `${srv.url}/pp.bin`,
      dest,
      ...opts,
      progress: events,
    });
    assert.ok(r.resumedFrom > 4 * 1024 * 1024, `resumed from ${r.resumedFrom}`);
    const seen = events.replay();
    assert.equal((seen.starts[0] as { resumedFrom?: number }).resumedFrom, r.resumedFrom);
    assert.deepEqual(seen.done, [data.length]);
    assert.ok(events.events.some((e) => e.type === "start" && e.parent === seen.starts[0].id));
    assert.ok(srv.bytesSent - before <= data.length - r.resumedFrom + 2 * 64 * 1024);
    assert.equal(r.digest, sha(data));
  });
});

Deno.test("hashFile streams a sha256", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = makeData(5 * 1024 * 1024 + 1);
    await Deno.writeFile(join(dir, "x"), data);
    assert.deepEqual(await hashFile(join(dir, "x")), { digest: sha(data), size: data.length });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upload streams a file body (chunked); chunked and multipart helpers", async () => {
  const dir = await Deno.makeTempDir();
  const got: { method: string; len: string | null; range: string | null; body: Uint8Array }[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const body = new Uint8Array(await req.arrayBuffer());
      got.push({
        method: req.method,
        len: req.headers.get("content-length"),
        range: req.headers.get("content-range"),
        body,
      });
      if (req.method === "PATCH") {
        return new Response(null, { status: 202, headers: { location: `/upload/${got.length}` } });
      }
      return new Response(null, { status: 201 });
    },
  );
  try {
    const data = makeData(2_500_000);
    const file = join(dir, "up.bin");
    await Deno.writeFile(file, data);
    const base = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
    const res = await upload({ http: http(), url: `${base}/put`, file });
    assert.equal(res.status, 201);
    assert.deepEqual(got[0].body, data);
    // Deno sends a stream body chunked; servers that need a length get parts (uploadChunked/multipart).
    assert.equal(got[0].method, "PUT");

    got.length = 0;
    const r = await uploadChunked({
      http: http(),
      url: `${base}/upload/start`,
      file,
      chunkSize: 1_000_000,
    });
    assert.deepEqual(got.map((g) => g.range), ["0-999999", "1000000-1999999", "2000000-2499999"]);
    assert.equal(r.digest, sha(data));
    assert.equal(r.location, `${base}/upload/3`);

    const sent = recorder();
    const parts = await multipartUpload({
      file,
      progress: sent,
      partSize: 1_000_000,
      concurrency: 2,
      uploadPart: ({ index, body }) => Promise.resolve(`${index}:${body.length}`),
    });
    assert.deepEqual(parts, ["0:1000000", "1:1000000", "2:500000"]);
    assert.deepEqual(sent.replay().done, [data.length]);
  } finally {
    ac.abort();
    await server.finished;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ranged parts share one retry budget: small gains spend it, large gains earn more", async () => {
  await withEnv(async (dir, srv) => {
    const data = makeData(4 * 1024 * 1024, 21);
    await srv.setFile("/parts.bin", data);
    const job = {
      url: `${srv.url}/parts.bin`,
      parallel: 2,
      parallelThreshold: 1,
      partSize: 1024 * 1024,
    };
    // Every response breaks after 100 kB. Each part resumes, but 100 kB is far below the default
    // allowance: four failures across all parts end the download, however many parts moved.
    srv.setFault("/parts.bin", { drop: { after: 100_000, times: 1000 } });
    const err = await download({ ...job, http: http({ retries: 3 }), dest: join(dir, "a.bin") })
      .catch((e) => e);
    assert.ok(err instanceof NetworkError, String(err));
    assert.match(err.message, /failed after \d+ attempts/);
    // The probe, four parts started, and at most one retry in flight per stream past the budget.
    assert.ok(srv.requests.length <= 1 + 4 + 3 + 2, String(srv.requests.length));
    // With an allowance below what each attempt gains, every drop earns the next attempt.
    srv.requests.length = 0;
    const r = await download({
      ...job,
      http: http({ retries: 3 }),
      dest: join(dir, "b.bin"),
      progressAllowance: 64 * 1024,
    });
    assert.equal(r.digest, sha(data));
    assert.ok(srv.requests.length > 40, String(srv.requests.length));
  });
});

Deno.test("a restart that cannot resume spends the budget: exit 5 after retries + 1 attempts", async () => {
  await withEnv(async (dir, srv) => {
    await srv.setFile("/r.bin", makeData(500_000, 22));
    srv.setFault("/r.bin", { noRanges: true, drop: { after: 100_000, times: 1000 } });
    const err = await download({
      http: http({ retries: 2 }),
      url: `${srv.url}/r.bin`,
      dest: join(dir, "r.bin"),
    })
      .catch((e) => e);
    assert.ok(err instanceof NetworkError, String(err));
    assert.equal(err.exitCode, 5);
    assert.match(err.message, /failed after 3 attempts/);
    assert.match(err.message, /cannot resume/);
    assert.equal(srv.requests.length, 3);
  });
});

Deno.test("an object that changes under every ranged request ends as a NetworkError, not a loop", async () => {
  await withEnv(async (dir, srv) => {
    await srv.setFile("/moving.bin", makeData(2 * 1024 * 1024, 23));
    srv.setFault("/moving.bin", { changingValidator: true });
    const err = await download({
      http: http(),
      url: `${srv.url}/moving.bin`,
      dest: join(dir, "moving.bin"),
      parallel: 2,
      parallelThreshold: 1,
      partSize: 512 * 1024,
    }).catch((e) => e);
    assert.ok(err instanceof NetworkError, String(err));
    assert.equal(err.exitCode, 5);
    assert.match(err.message, /failed after \d+ attempts: The remote object changed/);
    assert.ok(srv.requests.length <= 8, String(srv.requests.length));
  });
});
