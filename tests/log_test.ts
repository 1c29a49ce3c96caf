import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  createLogger,
  createOutput,
  Level,
  memorySink,
  redact,
  sanitize,
  streamSink,
} from "../core/log.ts";

Deno.test("log: levels filter, prefixes, no colour off a TTY", () => {
  const sink = memorySink();
  const log = createLogger({ level: Level.INFO, sink });
  log.error("bad");
  log.warning("careful");
  log.info("hello");
  log.verbose("detail");
  log.debug("debugging");
  assertEquals(sink.text(), "ERROR bad\nWARNING careful\nhello\n");
  log.level = Level.DEBUG;
  log.debug("now");
  assert(sink.text().endsWith("DEBUG now\n"));
  assert(log.debugEnabled);
});

Deno.test("log: QUIET still shows errors (the original hid them)", () => {
  const sink = memorySink();
  const log = createLogger({ level: Level.QUIET, sink });
  log.info("x");
  log.warning("y");
  log.error("z");
  assertEquals(sink.text(), "ERROR z\n");
});

Deno.test("log: colours only on request or on a TTY", () => {
  const tty = memorySink(true);
  createLogger({ sink: tty }).error("x");
  assertEquals(tty.text(), "\x1b[91mERROR\x1b[0m x\n");
  const forcedOff = memorySink(true);
  createLogger({ sink: forcedOff, color: false }).error("x");
  assertEquals(forcedOff.text(), "ERROR x\n");
});

Deno.test("log: tokens and passwords are redacted, debug included", () => {
  const sink = memorySink();
  const log = createLogger({ level: Level.DEBUG, sink });
  log.addSecret("s3cr3t-value");
  log.debug("GET https://user:hunter22@host/x with password s3cr3t-value");
  log.debug("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def");
  log.debug('{"token": "abcdefgh12345", "other": 1}');
  log.debug("https://h/x?X-Amz-Signature=deadbeefcafe&y=1");
  log.debug("Authorization: Basic dXNlcjpwYXNz");
  const text = sink.text();
  for (
    const leaked of [
      "s3cr3t-value",
      "hunter22",
      "eyJhbGciOiJIUzI1NiJ9",
      "abcdefgh12345",
      "deadbeefcafe",
      "dXNlcjpwYXNz",
    ]
  ) {
    assert(!text.includes(leaked), `${leaked} leaked in ${text}`);
  }
  assert(text.includes("other"), "non-secret content stays");
  assertEquals(redact("nothing to hide here"), "nothing to hide here");
});

Deno.test("output: lines, JSON, aligned tables", () => {
  const sink = memorySink();
  const out = createOutput(sink);
  out.line("a");
  out.json({ b: 1 });
  out.table([["x", "long value", "z"], ["xyz", "v", ""]], ["H1", "H2", "H3"]);
  assertEquals(
    sink.text(),
    'a\n{\n  "b": 1\n}\nH1   H2          H3\nx    long value  z\nxyz  v           \n',
  );
});

Deno.test("log: redaction keeps the user's paths and names (issue 10, item 19)", () => {
  for (
    const kept of [
      "Cannot add /etc/passwd: absolute path is not allowed",
      "Image coll/secret:latest not found",
      "pull docker://host/token:1.0",
      "/home/me/passwords/x.sif",
    ]
  ) {
    assertEquals(redact(kept), kept);
  }
  for (
    const [given, want] of [
      [
        "GET https://s3/x?X-Amz-Signature=abc123&token=zzz9 ok",
        "GET https://s3/x?X-Amz-Signature=***&token=*** ok",
      ],
      ['{"password":"pw-1234"}', '{"password":"***"}'],
      ["x-auth-token: tok-5678", "x-auth-token: ***"],
      ["client_secret=s-9", "client_secret=***"],
    ]
  ) {
    assertEquals(redact(given), want);
  }
});

Deno.test("log: sanitize makes controls visible, keeps text and newlines (items 5, 20)", () => {
  assertEquals(sanitize("a\x1b]0;t\x07b\x1b[2Jc"), "a\\x1b]0;t\\x07b\\x1b[2Jc");
  assertEquals(sanitize("nul\0 del\x7f csi\x9b"), "nul\\x00 del\\x7f csi\\x9b");
  assertEquals(sanitize("line\n\ttab é ✓"), "line\n\ttab é ✓");
  assertEquals(sanitize("line\nnext", true), "line\\x0anext");
  // Data lines stay exact off a terminal (pipes), and are sanitized on one.
  const pipe = memorySink(false), tty = memorySink(true);
  createOutput(pipe).line("a\x1bb");
  createOutput(tty).line("a\x1bb");
  assertEquals(pipe.text(), "a\x1bb\n");
  assertEquals(tty.text(), "a\\x1bb\n");
});

Deno.test("streamSink: a reader that goes away (| head) ends the output quietly", () => {
  let calls = 0;
  const sink = streamSink({
    writeSync(p: Uint8Array) {
      calls++;
      if (calls > 1) throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
      return p.length;
    },
    isTerminal: () => false,
  });
  sink.write("first\n");
  sink.write("second\n"); // the pipe closes here: no error
  sink.write("third\n"); // and nothing more is attempted
  assertEquals(calls, 2);
  const other = streamSink({
    writeSync() {
      throw new Deno.errors.PermissionDenied("no");
    },
    isTerminal: () => false,
  });
  assertThrows(() => other.write("x"), Deno.errors.PermissionDenied);
});
