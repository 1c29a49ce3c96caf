/**
 * The s3:// client beyond the conformance suite, against a real Swift s3api (region eu-test-1, so
 * signatures and LocationConstraint are checked): s3cmd interop both ways, refused keys, shared
 * profiles, a missing bucket, the sticky bucket name, a multipart push dropped mid-part and resumed,
 * a stale upload aborted, 2,500-object pagination, and the unit-level pieces (INI, errors).
 */

import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { requirement, runCli, tempHome } from "./_cli.ts";
import { onPath } from "./servers/registry.ts";
import { startS3FaultProxy } from "./servers/s3_fault_proxy.ts";
import { startSwift, type Swift, swiftAvailable } from "./servers/swift.ts";
import { parseIni } from "../clients/s3/credentials.ts";
import { listObjects, objectUrl, s3Request, type S3Target } from "../clients/s3/api.ts";
import { robotBucketName } from "../clients/s3/mod.ts";
import { createHttp } from "../core/http.ts";
import { createLogger, memorySink } from "../core/log.ts";

const { ignore } = requirement(
  "Swift, memcached and s3cmd (apt-get install swift swift-proxy swift-object swift-container swift-account memcached s3cmd)",
  swiftAvailable() && onPath("s3cmd"),
);

const REGION = "eu-test-1";
const MiB = 1024 * 1024;

function assertMatch(text: string, re: RegExp, message?: string): void {
  assert(re.test(text), message ?? `${JSON.stringify(text.slice(0, 500))} does not match ${re}`);
}

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

async function sha(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, "0")).join("");
}

async function s3cmd(swift: Swift, dir: string, ...args: string[]) {
  const cfg = join(dir, "s3cfg");
  await Deno.writeTextFile(
    cfg,
    `[default]\naccess_key = ${swift.s3.accessKeyId}\nsecret_key = ${swift.s3.secretAccessKey}\n` +
      `host_base = ${swift.host}\nhost_bucket = ${swift.host}\nuse_https = False\n` +
      `signature_v2 = False\nbucket_location = ${REGION}\n`,
  );
  const out = await new Deno.Command("s3cmd", {
    args: ["-c", cfg, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert(out.success, `s3cmd ${args.join(" ")}: ${text}`);
  return text;
}

async function findFiles(dir: string, name: RegExp): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await findFiles(p, name));
    else if (name.test(e.name)) out.push(p);
  }
  return out;
}

Deno.test("s3 INI profiles parse as the AWS tools write them", () => {
  const ini = parseIni("# c\n[default]\naws_access_key_id = A\n[profile work]\nRegion=eu-west-3\n");
  assertEquals(ini.default.aws_access_key_id, "A");
  assertEquals(ini["profile work"].region, "eu-west-3");
});

Deno.test("s3 generated bucket names follow the original's pattern", () => {
  assertMatch(robotBucketName(), /^sregistry-[a-z]+-[a-z]+-\d{4}$/);
});

Deno.test("s3 object URLs: path style with a base, virtual-hosted on AWS, keys encoded", () => {
  const t = { endpoint: "http://h:1", pathStyle: true, bucket: "b" } as S3Target;
  assertEquals(objectUrl(t, "c/i:t.sif").href, "http://h:1/b/c/i%3At.sif");
  const aws = {
    endpoint: "https://s3.eu-west-1.amazonaws.com",
    pathStyle: false,
    bucket: "b",
  } as S3Target;
  assertEquals(
    objectUrl(aws, "c/i:t.sif", { uploads: "" }).href,
    "https://b.s3.eu-west-1.amazonaws.com/c/i%3At.sif?uploads",
  );
});

Deno.test("s3 ExpiredToken and refused keys are exit 4 naming what to fix", async () => {
  // Swift's s3api ignores session tokens, so the AWS answer is played by a stub.
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const expired = new URL(req.url).pathname.includes("expired");
      const code = expired ? "ExpiredToken" : "InvalidAccessKeyId";
      return new Response(`<Error><Code>${code}</Code><Message>m</Message></Error>`, {
        status: expired ? 400 : 403,
      });
    },
  );
  const http = createHttp({ log: createLogger({ sink: memorySink() }), retries: 0 });
  const t: S3Target = {
    http,
    endpoint: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    pathStyle: true,
    bucket: "b",
    region: "us-east-1",
    credentialHint: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    auth: { authorize() {} },
  };
  try {
    for (
      const [key, re] of [["expired", /session token has expired.*AWS_SESSION_TOKEN/], [
        "x",
        /AWS_ACCESS_KEY_ID/,
      ]] as const
    ) {
      const e = await s3Request(t, { key }).then(() => undefined, (e) => e);
      assertEquals(e?.exitCode, 4);
      assertMatch(e.message, re);
    }
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test(
  { name: "s3 against Swift s3api", ignore, sanitizeResources: false, sanitizeOps: false },
  async (t) => {
    const swift = await startSwift({ region: REGION });
    const home = await tempHome();
    const bucket = "s3-extra";
    const env = {
      ...home.env,
      SREGISTRY_S3_BASE: swift.s3.endpoint,
      SREGISTRY_S3_BUCKET: bucket,
      AWS_ACCESS_KEY_ID: swift.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: swift.s3.secretAccessKey,
      AWS_DEFAULT_REGION: REGION,
      SREGISTRY_BACKOFF_MS: "10",
    };
    const cli = (args: string[], extra: Record<string, string> = {}, stdin?: string) =>
      runCli(args, { env: { ...env, ...extra }, stdin });
    // 2,500 objects take a while: created in the background while the other steps run.
    const many = (async () => {
      await swift.createBucket("s3-many");
      const objects = Array.from({ length: 2500 }, (_, i) => ({
        name: `many/o${String(i).padStart(4, "0")}.sif`,
        body: "x",
        headers: { "X-Object-Meta-Sizemb": "0", "X-Object-Meta-Type": "container" },
      }));
      await swift.putObjects("s3-many", objects);
    })();
    many.catch(() => {});
    try {
      await t.step(
        "a missing bucket: refused without an answer, created with --force and a LocationConstraint",
        async () => {
          const file = join(home.dir, "small.sif");
          await Deno.writeFile(file, randomBytes(300_000));
          const proxy = await startS3FaultProxy(swift.url, []);
          try {
            const no = await cli(["push", file, "--name", "s3://c/small:v1"], {
              SREGISTRY_S3_BASE: proxy.url,
            });
            assertEquals(no.code, 3, no.stderr);
            assertMatch(no.stderr, /Bucket "s3-extra" does not exist.*--force/);
            const pull = await cli(["pull", "s3://c/small:v1"]);
            assertEquals(pull.code, 3, pull.stderr);
            assertMatch(pull.stderr, /Bucket "s3-extra" does not exist/);
            const yes = await cli(["push", file, "--name", "s3://c/small:v1"], {
              SREGISTRY_S3_BASE: proxy.url,
            }, "y\n");
            assertEquals(yes.code, 0, yes.stderr);
            const create = proxy.bodies.find((b) => b.request === `PUT /${bucket}`);
            assertMatch(
              create?.body ?? "",
              new RegExp(`<LocationConstraint>${REGION}</LocationConstraint>`),
            );
          } finally {
            await proxy.stop();
          }
        },
      );

      await t.step(
        "s3cmd puts with the original's metadata: found, pulled (size checked); ours reads back with s3cmd get",
        async () => {
          const theirs = randomBytes(7 * MiB + 3);
          const src = join(home.dir, "theirs.sif");
          await Deno.writeFile(src, theirs);
          await s3cmd(
            swift,
            home.dir,
            "put",
            "--add-header=x-amz-meta-sizemb:7",
            "--add-header=x-amz-meta-client:sregistry",
            "--add-header=x-amz-meta-type:container",
            "--multipart-chunk-size-mb=5",
            src,
            `s3://${bucket}/vanessa/pusheena:tacos.sif`,
          );
          const search = await cli(["search", "--json", "s3://pusheena"]);
          assertEquals(search.code, 0, search.stderr);
          const hits = JSON.parse(search.stdout) as { uri: string; details: { size: string } }[];
          assertEquals(hits.map((h) => h.uri), ["s3://vanessa/pusheena:tacos"]);
          assertEquals(hits[0].details.size, "7MB");
          const out = join(home.dir, "pulled.sif");
          const pull = await cli([
            "pull",
            "--no-cache",
            "--file",
            out,
            "s3://vanessa/pusheena:tacos",
          ]);
          assertEquals(pull.code, 0, pull.stderr);
          assertEquals(await sha(await Deno.readFile(out)), await sha(theirs));

          const ours = randomBytes(2 * MiB);
          const mine = join(home.dir, "mine.sif");
          await Deno.writeFile(mine, ours);
          const push = await cli(["push", mine, "--name", "s3://vanessa/mine:v2"]);
          assertEquals(push.code, 0, push.stderr);
          const back = join(home.dir, "back.sif");
          await s3cmd(swift, home.dir, "get", `s3://${bucket}/vanessa/mine:v2.sif`, back);
          assertEquals(await sha(await Deno.readFile(back)), await sha(ours));
          const info = await s3cmd(swift, home.dir, "info", `s3://${bucket}/vanessa/mine:v2.sif`);
          for (
            const m of [
              "x-amz-meta-sizemb: 2",
              "x-amz-meta-client: sregistry",
              "x-amz-meta-type: container",
            ]
          ) {
            assert(info.includes(m), `s3cmd info lacks ${m}: ${info}`);
          }
          assert(info.includes(`x-amz-meta-digest: sha256:${await sha(ours)}`), info);
        },
      );

      await t.step(
        "refused keys are exit 4 naming the variables; a missing object suggests near names",
        async () => {
          const bad = await cli(["pull", "s3://vanessa/mine:v2"], {
            AWS_SECRET_ACCESS_KEY: "wrong",
          });
          assertEquals(bad.code, 4, bad.stderr);
          assertMatch(bad.stderr, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
          assert(!bad.stderr.includes("wrong"), "the wrong secret was printed");
          const who = await cli(["search", "s3://"], { AWS_ACCESS_KEY_ID: "nobody:none" });
          assertEquals(who.code, 4, who.stderr);
          const near = await cli(["pull", "s3://vanessa/mine:v3"]);
          assertEquals(near.code, 3, near.stderr);
          assertMatch(near.stderr, /did you mean s3:\/\/vanessa\/mine:v2/);
          const v2 = await cli(["search", "s3://"], { SREGISTRY_S3_SIGNATURE: "s3" });
          assertEquals(v2.code, 7, v2.stderr);
          assertMatch(v2.stderr, /SigV2, which is not supported/);
          const ca = await cli(["search", "s3://"], {
            AWS_CA_BUNDLE: join(home.dir, "no-such-ca.pem"),
          });
          assertEquals(ca.code, 2, ca.stderr);
          assertMatch(ca.stderr, /no-such-ca\.pem" named by AWS_CA_BUNDLE/);
        },
      );

      await t.step(
        "a profile in ~/.aws/credentials (AWS_PROFILE) signs; no credentials warns once",
        async () => {
          const aws = join(home.dir, ".aws");
          await Deno.mkdir(aws, { recursive: true });
          await Deno.writeTextFile(
            join(aws, "credentials"),
            `[work]\naws_access_key_id = ${swift.s3.accessKeyId}\naws_secret_access_key = ${swift.s3.secretAccessKey}\n`,
          );
          await Deno.writeTextFile(join(aws, "config"), `[profile work]\nregion = ${REGION}\n`);
          const noKeys = {
            AWS_ACCESS_KEY_ID: "",
            AWS_SECRET_ACCESS_KEY: "",
            AWS_DEFAULT_REGION: "",
          };
          const rec = await cli(["record", "s3://vanessa/mine:v2"], {
            ...noKeys,
            AWS_PROFILE: "work",
          });
          assertEquals(rec.code, 0, rec.stderr);
          const anon = await cli(["search", "s3://"], { ...noKeys, AWS_PROFILE: "nobody" });
          assertEquals(anon.code, 4, anon.stderr);
          assertEquals(anon.stderr.match(/No AWS credentials found/g)?.length, 1, anon.stderr);
        },
      );

      await t.step("the generated bucket name is saved and reused", async () => {
        const h = await tempHome();
        try {
          const { SREGISTRY_S3_BUCKET: _, ...rest } = { ...env, ...h.env };
          const run = () => runCli(["search", "s3://"], { env: rest });
          const first = await run();
          const name = /bucket name "([^"]+)"/.exec(first.stderr)?.[1];
          assertMatch(name ?? "", /^sregistry-[a-z]+-[a-z]+-\d{4}$/, first.stderr);
          const second = await run();
          assertEquals(second.code, 3, second.stderr);
          assert(second.stderr.includes(`"${name}"`), second.stderr);
          assert(!second.stderr.includes("new bucket name"), second.stderr);
        } finally {
          await h.cleanup();
        }
      });

      await t.step(
        "a connection dropped mid-part: retried in the run; retries used up, the next push resumes",
        async () => {
          const bytes = randomBytes(26 * MiB);
          const file = join(home.dir, "big.sif");
          await Deno.writeFile(file, bytes);
          const mp = {
            SREGISTRY_S3_MULTIPART_THRESHOLD: "5",
            SREGISTRY_S3_PART_SIZE: "5",
            SREGISTRY_S3_CONCURRENCY: "2",
          };
          // Dropped once: the http client's retry sends the part again.
          const once = await startS3FaultProxy(swift.url, [
            { method: "PUT", query: /partNumber=3&/, fault: { dropRequestAfter: MiB }, times: 1 },
          ]);
          try {
            const r = await cli(["push", file, "--name", "s3://c/once:v1"], {
              ...mp,
              SREGISTRY_S3_BASE: once.url,
            });
            assertEquals(r.code, 0, r.stderr);
            assertEquals(once.hits[0], 1);
          } finally {
            await once.stop();
          }
          // Dropped on every attempt: the push fails, keeping the upload for the next run.
          const always = await startS3FaultProxy(swift.url, [
            { method: "PUT", query: /partNumber=4&/, fault: { dropRequestAfter: MiB }, times: 4 },
          ]);
          try {
            const r = await cli(["push", file, "--name", "s3://c/big:v1"], {
              ...mp,
              SREGISTRY_S3_BASE: always.url,
              SREGISTRY_HTTP_RETRIES: "1",
            });
            assertEquals(r.code, 5, r.stderr);
            assertMatch(r.stderr, /parts are stored: run the same push again to resume/);
            assert(always.hits[0] >= 2, `part 4 was dropped ${always.hits[0]} times`);
          } catch (e) {
            await always.stop();
            throw e;
          }
          const [store] = await findFiles(home.dir, /^s3$/);
          assert(store, "no credential store file");
          assert((await Deno.readTextFile(store)).includes("uploadId"), "the upload was not kept");
          // The same endpoint (the upload is kept per endpoint, bucket and key), now without faults.
          const clean = always;
          clean.log.length = 0;
          try {
            const r = await cli(["push", file, "--name", "s3://c/big:v1"], {
              ...mp,
              SREGISTRY_S3_BASE: clean.url,
            });
            assertEquals(r.code, 0, r.stderr);
            const parts = [
              ...new Set(
                clean.log.filter((l) => l.startsWith("PUT ") && l.includes("partNumber="))
                  .map((l) => /partNumber=(\d+)/.exec(l)![1]),
              ),
            ];
            assert(
              parts.length >= 1 && parts.length < 6,
              `resumed push sent ${parts.length} parts: ${parts}`,
            );
            assert(
              clean.log.some((l) => l.startsWith("GET ") && /uploadId=/.test(l)),
              "no ListParts",
            );
            assert(!clean.log.some((l) => l.includes("?uploads")), "a new upload was started");
          } finally {
            await clean.stop();
          }
          assert(
            !(await Deno.readTextFile(store)).includes("uploadId"),
            "the finished upload was kept",
          );
          const out = join(home.dir, "big.out");
          const pull = await cli(["pull", "--no-cache", "--file", out, "s3://c/big:v1"]);
          assertEquals(pull.code, 0, pull.stderr);
          assertEquals(await sha(await Deno.readFile(out)), await sha(bytes));
        },
      );

      await t.step("a push whose file changed aborts the stale multipart upload", async () => {
        const file = join(home.dir, "stale.sif");
        await Deno.writeFile(file, randomBytes(12 * MiB));
        const mp = {
          SREGISTRY_S3_MULTIPART_THRESHOLD: "5",
          SREGISTRY_S3_PART_SIZE: "5",
          SREGISTRY_S3_CONCURRENCY: "1",
        };
        const drop = await startS3FaultProxy(swift.url, [
          { method: "PUT", query: /partNumber=2&/, fault: { dropRequestAfter: MiB }, times: 2 },
        ]);
        try {
          const r = await cli(["push", file, "--name", "s3://c/stale:v1"], {
            ...mp,
            SREGISTRY_S3_BASE: drop.url,
            SREGISTRY_HTTP_RETRIES: "0",
          });
          assertEquals(r.code, 5, r.stderr);
        } catch (e) {
          await drop.stop();
          throw e;
        }
        await Deno.writeFile(file, randomBytes(11 * MiB));
        const clean = drop;
        clean.log.length = 0;
        try {
          const r = await cli(["push", file, "--name", "s3://c/stale:v1"], {
            ...mp,
            SREGISTRY_S3_BASE: clean.url,
          });
          assertEquals(r.code, 0, r.stderr);
          assert(
            clean.log.some((l) => l.startsWith("DELETE ") && l.includes("uploadId=")),
            clean.log.join("\n"),
          );
        } finally {
          await clean.stop();
        }
      });

      await t.step(
        "2,500 objects: ListObjectsV2 follows continuation tokens; search HEADs only its rows",
        async () => {
          await many;
          const proxy = await startS3FaultProxy(swift.url, []);
          try {
            const http = createHttp({ log: createLogger({ sink: memorySink() }) });
            const { sigV4Auth } = await import("../core/auth/sigv4.ts");
            const target: S3Target = {
              http,
              endpoint: proxy.url,
              pathStyle: true,
              bucket: "s3-many",
              region: REGION,
              credentialHint: "",
              auth: sigV4Auth({ credentials: swift.s3, region: REGION, service: "s3" }),
            };
            const all = await listObjects(target);
            assertEquals(all.length, 2500);
            assertEquals(new Set(all.map((o) => o.key)).size, 2500);
            assertEquals(proxy.log.filter((l) => l.includes("list-type=2")).length, 3);
            proxy.log.length = 0;
            const r = await cli(["search", "--json", "s3://o24"], {
              SREGISTRY_S3_BASE: proxy.url,
              SREGISTRY_S3_BUCKET: "s3-many",
            });
            assertEquals(r.code, 0, r.stderr);
            const hits = JSON.parse(r.stdout) as { uri: string }[];
            assertEquals(hits.length, 100);
            assertEquals(hits[99].uri, "s3://many/o2499");
            assertEquals(
              proxy.log.filter((l) => l.startsWith("HEAD ") && l.includes("/many/")).length,
              100,
            );
          } finally {
            await proxy.stop();
          }
        },
      );
    } finally {
      await many.catch(() => {});
      await home.cleanup();
      await swift.stop();
    }
  },
);
