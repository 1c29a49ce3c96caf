/**
 * Typed errors. Each class carries the exit code the CLI ends with (see DESIGN.md, "Exit codes"),
 * so code anywhere can throw and `main.ts` maps it without knowing where it came from.
 *
 * Messages are one line, in sentence case, quote the bad value and suggest the fix.
 * @module
 */

/** Exit codes of the CLI. */
export const ExitCode = {
  ok: 0,
  other: 1,
  usage: 2,
  notFound: 3,
  auth: 4,
  network: 5,
  integrity: 6,
  unsupported: 7,
  interrupted: 130,
} as const;

/** One of the documented exit codes. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/** Base class of every error sregistry throws on purpose. */
export class SregistryError extends Error {
  /** The process exit code for this error. */
  readonly exitCode: ExitCodeValue = ExitCode.other;
  /** A stable machine-readable kind, used in `--json` error output. */
  readonly kind: string = "error";
  /** Build an error with a one-line message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad command-line input or an unparseable name (exit 2). */
export class UsageError extends SregistryError {
  /** The exit code for this error. */
  override readonly exitCode: ExitCodeValue = ExitCode.usage;
  /** The machine-readable kind. */
  override readonly kind: string = "usage";
}

/** An image, record, file or remote object that does not exist (exit 3). */
export class NotFoundError extends SregistryError {
  /** The exit code for this error. */
  override readonly exitCode: ExitCodeValue = ExitCode.notFound;
  /** The machine-readable kind. */
  override readonly kind: string = "not_found";
}

/** Missing or rejected credentials, or a permission problem (exit 4). */
export class AuthError extends SregistryError {
  /** The exit code for this error. */
  override readonly exitCode: ExitCodeValue = ExitCode.auth;
  /** The machine-readable kind. */
  override readonly kind: string = "auth";
}

/** A network failure or a remote server error (exit 5). */
export class NetworkError extends SregistryError {
  /** The exit code for this error. */
  override readonly exitCode: ExitCodeValue = ExitCode.network;
  /** The machine-readable kind. */
  override readonly kind: string = "network";
  /** The HTTP status, when the failure was an HTTP answer. */
  readonly status?: number;
  /** Build a network error, optionally with the HTTP status that caused it. */
  constructor(message: string, options?: ErrorOptions & { status?: number }) {
    super(message, options);
    this.status = options?.status;
  }
}

/** A digest or size mismatch (exit 6). */
export class IntegrityError extends SregistryError {
  /** The exit code for this error. */
  override readonly exitCode: ExitCodeValue = ExitCode.integrity;
  /** The machine-readable kind. */
  override readonly kind: string = "integrity";
}

/** A capability the chosen client does not have (exit 7). */
export class UnsupportedError extends SregistryError {
  /** The exit code for this error. */
  override readonly exitCode: ExitCodeValue = ExitCode.unsupported;
  /** The machine-readable kind. */
  override readonly kind: string = "unsupported";
}

/** The user interrupted the command (exit 130). */
export class InterruptedError extends SregistryError {
  /** The exit code for this error. */
  override readonly exitCode: ExitCodeValue = ExitCode.interrupted;
  /** The machine-readable kind. */
  override readonly kind: string = "interrupted";
}

/** A file whose content is not what it should be: malformed JSON, a corrupt SIF (exit 1). */
export class FormatError extends SregistryError {
  /** The machine-readable kind. */
  override readonly kind: string = "format";
}

/** A bad setting (environment variable or secrets file value) (exit 2). */
export class ConfigError extends SregistryError {
  /** The exit code for this error. */
  override readonly exitCode: ExitCodeValue = ExitCode.usage;
  /** The machine-readable kind. */
  override readonly kind: string = "config";
}

/** The exit code for any thrown value: typed errors carry theirs, anything else is 1. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof SregistryError) return error.exitCode;
  if (error instanceof Deno.errors.NotFound) return ExitCode.notFound;
  if (error instanceof Deno.errors.PermissionDenied) return ExitCode.auth;
  return ExitCode.other;
}

/** The kind for any thrown value, for `--json` output. */
export function kindOf(error: unknown): string {
  if (error instanceof SregistryError) return error.kind;
  if (error instanceof Deno.errors.NotFound) return "not_found";
  if (error instanceof Deno.errors.PermissionDenied) return "permission";
  return "error";
}
