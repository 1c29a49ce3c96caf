/**
 * A lock file that several processes, on one machine or on several sharing NFS, agree on.
 *
 * Taking it: write a unique file holding `{pid, host, time}` next to the lock, then `link()` it to
 * the lock's name. `link` is atomic on NFS (unlike `O_EXCL` on old clients); when its answer is lost
 * (an NFS retry says EEXIST although it worked) the unique file's link count of 2 tells the truth.
 * The holder appends a byte to the lock every `heartbeatMs`, so the file server stamps its mtime; a
 * waiter compares it with the mtime of its own unique file, stamped by the same server, so clocks
 * of different hosts never meet. A lock is stale when its owner is gone (same host, no such
 * process, where /proc can be read) or when it has not been touched for `staleMs`. A stale lock is
 * renamed aside (atomic: of two breakers only one wins) and removed.
 * @module
 */

import { basename, dirname, join } from "node:path";
import { InterruptedError } from "./errors.ts";
import { processAlive } from "./fs.ts";

/** What a lock file holds. */
export interface LockOwner {
  /** Process id. */
  pid: number;
  /** Host name. */
  host: string;
  /** When it was taken (ms since the epoch). */
  time: number;
}

/** Options of {@link acquireLock}. */
export interface LockOptions {
  /** Untouched for this long, a lock is stale whoever holds it (default 30 s). */
  staleMs?: number;
  /** How often the holder touches the lock (default staleMs / 4). */
  heartbeatMs?: number;
  /** How often a waiter looks again (default 100 ms). */
  pollMs?: number;
  /** Stop waiting (InterruptedError). */
  signal?: AbortSignal;
  /** Called once when the lock is held by another process, before waiting. */
  onWait?: (owner: LockOwner | undefined) => void;
}

/** A held lock. */
export interface Lock {
  /** The lock file. */
  readonly path: string;
  /** Give it up (idempotent). */
  release(): Promise<void>;
  /** Same as release, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/** Read a lock's owner; undefined when it is gone or unreadable (half-written). */
export function readLockOwner(path: string): LockOwner | undefined {
  try {
    const v = JSON.parse(Deno.readTextFileSync(path));
    if (typeof v?.pid === "number" && typeof v?.host === "string") return v as LockOwner;
  } catch {
    // Gone or not ours to read.
  }
  return undefined;
}

/** Whether the lock at `path` is stale (see the module doc). */
export function lockIsStale(path: string, staleMs: number, now = Date.now()): boolean {
  let mtime: number;
  try {
    mtime = Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    return false; // gone: not stale, just free
  }
  if (now - mtime > staleMs) return true;
  const owner = readLockOwner(path);
  // A half-written lock (no owner yet) is fresh until it ages out.
  return owner !== undefined && owner.host === hostName() && processAlive(owner.pid) === false;
}

function tryLink(unique: string, path: string): boolean {
  try {
    Deno.linkSync(unique, path);
    return true;
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) {
      // Hard links unsupported (some FUSE file systems): fall back to an exclusive create.
      if (!(e instanceof Deno.errors.NotSupported || e instanceof Deno.errors.PermissionDenied)) {
        throw e;
      }
      try {
        Deno.writeTextFileSync(path, Deno.readTextFileSync(unique), { createNew: true });
        return true;
      } catch (e2) {
        if (e2 instanceof Deno.errors.AlreadyExists) return false;
        throw e2;
      }
    }
    try {
      return Deno.statSync(unique).nlink === 2; // the NFS "lost reply" case
    } catch {
      return false;
    }
  }
}

/** Append a byte (JSON allows trailing white space) so the file system stamps the mtime. */
function touch(path: string): void {
  Deno.writeTextFileSync(path, "\n", { append: true });
}

/** "Now" on the file system holding `probe` (its server's clock, on NFS). */
function fsNow(probe: string): number {
  try {
    touch(probe);
    return Deno.statSync(probe).mtime?.getTime() ?? Date.now();
  } catch {
    return Date.now();
  }
}

function breakStale(path: string): void {
  const aside = join(dirname(path), `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.stale`);
  try {
    Deno.renameSync(path, aside);
  } catch {
    return; // another process broke or released it first
  }
  Deno.removeSync(aside);
}

/**
 * Take the lock at `path` (its folder must exist), waiting while another live process holds it.
 * @throws {InterruptedError} when `signal` aborts the wait.
 */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<Lock> {
  const staleMs = options.staleMs ?? 30_000;
  const heartbeatMs = options.heartbeatMs ?? Math.max(200, staleMs / 10);
  const pollMs = options.pollMs ?? 100;
  const owner: LockOwner = { pid: Deno.pid, host: hostName(), time: Date.now() };
  const unique = join(
    dirname(path),
    `.${basename(path)}.${owner.host.replace(/[^A-Za-z0-9.-]/g, "_")}.${owner.pid}.${
      crypto.randomUUID().slice(0, 8)
    }`,
  );
  Deno.writeTextFileSync(unique, JSON.stringify(owner));
  let waited = false;
  try {
    while (!tryLink(unique, path)) {
      if (lockIsStale(path, staleMs, fsNow(unique))) {
        breakStale(path);
        continue;
      }
      if (!waited) {
        waited = true;
        options.onWait?.(readLockOwner(path));
      }
      if (options.signal?.aborted) {
        throw options.signal.reason instanceof Error
          ? options.signal.reason
          : new InterruptedError("Interrupted");
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    Deno.removeSync(unique);
  }
  const timer = setInterval(() => {
    try {
      touch(path);
    } catch {
      // Released or broken meanwhile; release() copes.
    }
  }, heartbeatMs);
  Deno.unrefTimer(timer);
  let released = false;
  const release = (): Promise<void> => {
    if (released) return Promise.resolve();
    released = true;
    clearInterval(timer);
    // Only remove the lock if it is still ours (it may have been broken as stale and re-taken).
    const now = readLockOwner(path);
    if (now && now.pid === owner.pid && now.host === owner.host && now.time === owner.time) {
      try {
        Deno.removeSync(path);
      } catch {
        // Already gone.
      }
    }
    return Promise.resolve();
  };
  return { path, release, [Symbol.asyncDispose]: release };
}
