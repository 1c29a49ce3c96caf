/**
 * Messages for people, on stderr. Data (paths, JSON, tables from cli/render) goes to stdout through
 * {@link Output};
 * the logger never writes there, so `sregistry get x | xargs ...` stays clean.
 *
 * Levels follow sregistry-cli's MESSAGELEVEL names; numbers are accepted too (the original crashed on
 * them). Every message passes through {@link redact}: tokens, passwords and signatures never print,
 * `--debug` included; then through {@link sanitize}, so control characters show as `\x1b`.
 * @module
 */

import { ConfigError } from "./errors.ts";

/** Message levels of sregistry-cli: a message prints when its level is <= the logger's. */
export const Level = {
  ABORT: -5,
  CRITICAL: -4,
  ERROR: -3,
  WARNING: -2,
  LOG: -1,
  QUIET: 0,
  INFO: 1,
  VERBOSE: 2,
  VERBOSE2: 3,
  VERBOSE3: 4,
  DEBUG: 5,
} as const;

/**
 * Parse MESSAGELEVEL: a name (`DEBUG`, `verbose2`, any `VERBOSE*` -> VERBOSE3 as in the original) or a
 * number from -5 to 5.
 * @throws {ConfigError} for anything else, naming the accepted values.
 */
export function parseLevel(value: string | undefined): number {
  if (value === undefined || value.trim() === "") return Level.INFO;
  const v = value.trim().toUpperCase();
  if (/^-?\d+$/.test(v)) {
    const n = Number(v);
    if (n >= Level.ABORT && n <= Level.DEBUG) return n;
    throw new ConfigError(
      `MESSAGELEVEL ${JSON.stringify(value)} is out of range: use a number from -5 to 5 or a name`,
    );
  }
  if (v in Level && !v.startsWith("VERBOSE")) return Level[v as keyof typeof Level];
  if (v.startsWith("VERBOSE")) return Level.VERBOSE3;
  throw new ConfigError(
    `MESSAGELEVEL ${
      JSON.stringify(value)
    } is not a level: use one of CRITICAL, ABORT, ERROR, WARNING, LOG, QUIET, INFO, VERBOSE, DEBUG or -5..5`,
  );
}

/** Something text can be written to synchronously (stderr, stdout, or a test buffer). */
export interface TextSink {
  /** Write text as is. */
  write(text: string): void;
  /** Whether the sink is an interactive terminal. */
  readonly isTerminal: boolean;
  /** The terminal's width in columns, when known (progress bars fit their lines to it). */
  columns?(): number | undefined;
}

/** A sink over a Deno stream (`Deno.stdout`, `Deno.stderr`). */
export function streamSink(
  stream: { writeSync(p: Uint8Array): number; isTerminal(): boolean },
): TextSink {
  const enc = new TextEncoder();
  // The reader went away (`sregistry images | head`): the rest is not wanted. Like other tools in a
  // pipeline, stop writing quietly instead of failing the command with "Broken pipe".
  let closed = false;
  return {
    write(text: string) {
      if (closed) return;
      const bytes = enc.encode(text);
      let off = 0;
      try {
        while (off < bytes.length) off += stream.writeSync(bytes.subarray(off));
      } catch (e) {
        if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
        closed = true;
      }
    },
    get isTerminal() {
      return stream.isTerminal();
    },
    columns() {
      try {
        // 0 columns: a pseudo-terminal whose size nobody set (script(1) without a terminal).
        return Deno.consoleSize().columns || undefined;
      } catch {
        return undefined; // no terminal at all
      }
    },
  };
}

/** A sink that keeps everything written, for tests. */
export function memorySink(isTerminal = false): TextSink & { text(): string } {
  let buf = "";
  return {
    write(text: string) {
      buf += text;
    },
    isTerminal,
    text: () => buf,
  };
}

/**
 * Credential-shaped text. A key only counts where a key can stand (line start, whitespace, quote,
 * `?`, `&`, `{`, `,`, `;`), so words inside paths and image names (`/etc/passwd`,
 * `coll/secret:latest`) stay as the user typed them; with `:` the value must be quoted (JSON) or
 * spaced (a header), since `name:tag` is the shape of an image name.
 */
const SECRET_KEYS =
  "access_token|refresh_token|id_token|identitytoken|token|password|passwd|secret|client_secret|secret_key|secretaccesskey|x-amz-signature|x-amz-security-token|x-amz-credential|x-goog-signature|x-goog-credential|signature|sig|apikey|api_key|api-key|private-token|job-token|x-auth-token|x-storage-token|x-registry-auth|sessiontoken|session_token";
const SECRET_PATTERNS: [RegExp, string][] = [
  [
    /(authorization["']?\s*[:=]\s*["']?)(bearer|basic|token|aws4-hmac-sha256)?\s*[^\s"',]+/gi,
    "$1$2 ***",
  ],
  [/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, "$1 ***"],
  [
    new RegExp(
      `(^|[\\s?&"'{,;(])((?:${SECRET_KEYS})(?:["']\\s*:\\s*["']?|\\s*=\\s*["']?|:\\s+["']?))[^\\s"'&,}]+`,
      "gi",
    ),
    "$1$2***",
  ],
  [/(https?:\/\/[^/\s:@]+:)[^@\s/]+@/gi, "$1***@"],
];

/** Remove credentials from a string: registered secrets, auth headers, tokens in URLs and JSON. */
export function redact(text: string, secrets: Iterable<string> = []): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 4) out = out.replaceAll(s, "***");
  }
  for (const [re, rep] of SECRET_PATTERNS) out = out.replace(re, rep);
  return out;
}

// C0 controls but tab and newline, DEL, and the C1 controls (0x9b is a one-byte CSI).
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
// deno-lint-ignore no-control-regex
const CONTROL_ALL = /[\x00-\x1f\x7f-\x9f]/g;

/**
 * Make control characters visible (`ESC` becomes the four characters `\x1b`, NUL `\x00`), so text
 * from outside (error bodies, tags, SIF labels, catalog rows) cannot retitle, clear or recolour the
 * terminal. Tab and newline stay unless `singleLine` is set. Apply it to human-readable output only:
 * JSON keeps values exact (JSON.stringify escapes controls itself).
 */
export function sanitize(text: string, singleLine = false): string {
  return text.replace(
    singleLine ? CONTROL_ALL : CONTROL,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** The level, from {@link parseLevel}. */
  level?: number;
  /** Where messages go (default stderr). */
  sink?: TextSink;
  /** Force colours on or off; default: on when the sink is a TTY and NO_COLOR is unset. */
  color?: boolean;
}

/** The logger every part of sregistry writes messages through. */
export interface Logger {
  /** The current level. */
  level: number;
  /** Whether DEBUG messages print. */
  readonly debugEnabled: boolean;
  /** Whether colours are used. */
  readonly color: boolean;
  /** The sink messages go to (progress bars share it). */
  readonly sink: TextSink;
  /** An error message (`ERROR ...`). */
  error(message: string): void;
  /** A warning (`WARNING ...`). */
  warning(message: string): void;
  /** A plain informational line. */
  info(message: string): void;
  /** A prefixed informational line (`LOG ...`). */
  log(message: string): void;
  /** Detail shown with MESSAGELEVEL=VERBOSE or more. */
  verbose(message: string): void;
  /** Detail shown with --debug. */
  debug(message: string): void;
  /** Remember a secret so that it is redacted from every later message. */
  addSecret(value: string | undefined): void;
  /** Redact a string with the registered secrets. */
  redact(text: string): string;
}

const COLORS: Record<string, string> = {
  ERROR: "\x1b[91m",
  WARNING: "\x1b[93m",
  LOG: "\x1b[95m",
  VERBOSE: "\x1b[36m",
  DEBUG: "\x1b[36m",
};

/** Create a logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const sink = options.sink ?? streamSink(Deno.stderr);
  const secrets = new Set<string>();
  const color = options.color ?? sink.isTerminal;
  const logger: Logger = {
    level: options.level ?? Level.INFO,
    get debugEnabled() {
      return logger.level >= Level.DEBUG;
    },
    color,
    sink,
    error: (m) => emit(Level.ERROR, "ERROR", m),
    warning: (m) => emit(Level.WARNING, "WARNING", m),
    info: (m) => emit(Level.INFO, "", m),
    log: (m) => emit(Level.LOG, "LOG", m),
    verbose: (m) => emit(Level.VERBOSE, "VERBOSE", m),
    debug: (m) => emit(Level.DEBUG, "DEBUG", m),
    addSecret(value) {
      if (value && value.length >= 4) secrets.add(value);
    },
    redact: (text) => redact(text, secrets),
  };
  function emit(level: number, prefix: string, message: string) {
    // QUIET hides everything but errors; the original hid errors too, leaving failures unexplained.
    const threshold = logger.level === Level.QUIET ? Level.ERROR : logger.level;
    if (level > threshold) return;
    const text = sanitize(redact(message, secrets));
    const head = prefix ? (color ? `${COLORS[prefix] ?? ""}${prefix}\x1b[0m ` : `${prefix} `) : "";
    sink.write(`${head}${text}\n`);
  }
  return logger;
}

/** Where data goes: stdout, or a buffer in tests. */
export interface Output {
  /** Write one line of data. */
  line(text: string): void;
  /** Write a value as pretty JSON. */
  json(value: unknown): void;
}

/** An {@link Output} over a sink. */
export function createOutput(sink: TextSink = streamSink(Deno.stdout)): Output {
  return {
    // Data lines stay exact for pipes; on a terminal, controls are made visible as in tables.
    line: (text) => sink.write(`${sink.isTerminal ? sanitize(text) : text}\n`),
    json: (value) => sink.write(`${JSON.stringify(value, null, 2)}\n`),
  };
}
