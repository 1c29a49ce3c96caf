/**
 * A small tar.gz writer for a build's context: regular files and symbolic links under one working
 * folder, as ustar entries (a PAX `path` record for names longer than ustar holds), gzip'd with
 * node:zlib. Entries are sorted and carry no owner or time, so the same files give the same bytes,
 * and the tarball's sha256 (its name in the bucket) only changes when the context does.
 * @module
 */

import { createGzip } from "node:zlib";
import { createHash } from "node:crypto";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { NotFoundError, UsageError } from "../../core/errors.ts";

const enc = new TextEncoder();

/** One entry: its name in the archive and where it is on disk. */
export interface TarEntry {
  /** Name in the archive (`/`-separated, relative). */
  name: string;
  /** Absolute path on disk. */
  path: string;
}

/**
 * The entries for `paths` (files or folders, `.` for the whole folder) relative to `workDir`:
 * folders are walked recursively; a path outside `workDir` is refused.
 * @throws {NotFoundError} for a path that does not exist.
 * @throws {UsageError} for a path outside `workDir`.
 */
export async function collectEntries(workDir: string, paths: string[]): Promise<TarEntry[]> {
  const root = resolve(workDir);
  const out = new Map<string, TarEntry>();
  const add = async (abs: string) => {
    const rel = relative(root, abs);
    if (rel.startsWith("..") || isAbsolute(rel)) {
      throw new UsageError(
        `The build context ${
          JSON.stringify(abs)
        } is outside the working folder ${root}; run the build from a folder that holds it`,
      );
    }
    let st: Deno.FileInfo;
    try {
      st = await Deno.lstat(abs);
    } catch {
      throw new NotFoundError(`The build context ${JSON.stringify(abs)} does not exist`);
    }
    if (st.isDirectory) {
      const names: string[] = [];
      for await (const e of Deno.readDir(abs)) names.push(e.name);
      for (const n of names.sort()) await add(join(abs, n));
      return;
    }
    if (!st.isFile && !st.isSymlink) return; // sockets, devices: not build context
    const name = rel.split(sep).join("/");
    if (name) out.set(name, { name, path: abs });
  };
  for (const p of paths) await add(resolve(root, p));
  return [...out.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

/** A 512-byte ustar header. */
function header(
  name: string,
  size: number,
  type: string,
  mode: number,
  linkname = "",
): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, s: string | Uint8Array, len?: number) => {
    const b = typeof s === "string" ? enc.encode(s) : s;
    h.set(len === undefined ? b : b.subarray(0, len), off);
  };
  put(0, name, 100);
  put(100, octal(mode, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(size, 12));
  put(136, octal(0, 12));
  put(148, "        ");
  put(156, type);
  put(157, linkname, 100);
  put(257, "ustar\0");
  put(263, "00");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, octal(sum, 7) + " ");
  return h;
}

const pad = (n: number) => new Uint8Array((512 - (n % 512)) % 512);

/** A PAX extended header carrying `path` (and `linkpath`) for long names. */
function paxRecords(records: Record<string, string>): Uint8Array[] {
  let body = "";
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    const n = enc.encode(rest).length;
    let len = n + 1;
    while (String(len).length + n !== len) len = String(len).length + n;
    body += `${len}${rest}`;
  }
  const b = enc.encode(body);
  return [header("././@PaxHeader", b.length, "x", 0o644), b, pad(b.length)];
}

function fits(name: string): boolean {
  return enc.encode(name).length <= 100;
}

async function* tarBlocks(entries: TarEntry[]): AsyncGenerator<Uint8Array> {
  for (const e of entries) {
    const st = await Deno.lstat(e.path);
    if (st.isSymlink) {
      const target = await Deno.readLink(e.path);
      if (!fits(e.name) || !fits(target)) {
        yield* paxRecords({ path: e.name, linkpath: target });
      }
      yield header(e.name, 0, "2", 0o777, target);
      continue;
    }
    if (!fits(e.name)) yield* paxRecords({ path: e.name });
    const mode = (st.mode ?? 0o644) & 0o111 ? 0o755 : 0o644;
    yield header(e.name, st.size, "0", mode);
    using f = await Deno.open(e.path, { read: true });
    let sent = 0;
    const buf = new Uint8Array(256 * 1024);
    while (sent < st.size) {
      const n = await f.read(buf.subarray(0, Math.min(buf.length, st.size - sent)));
      if (n === null) throw new UsageError(`${JSON.stringify(e.path)} shrank while it was tarred`);
      sent += n;
      yield buf.slice(0, n);
    }
    yield pad(st.size);
  }
  yield new Uint8Array(1024);
}

/**
 * Write `entries` as a tar.gz to `dest`; returns the archive's sha256 (hex) and size.
 */
export async function writeTarGz(
  entries: TarEntry[],
  dest: string,
): Promise<{ sha256: string; size: number }> {
  const gzip = createGzip({ level: 6 });
  const hash = createHash("sha256");
  using out = await Deno.open(dest, { write: true, create: true, truncate: true, mode: 0o600 });
  let size = 0;
  const written = new Promise<void>((ok, fail) => {
    const pending: Promise<unknown>[] = [];
    gzip.on("data", (chunk: Uint8Array) => {
      hash.update(chunk);
      size += chunk.length;
      const copy = new Uint8Array(chunk);
      pending.push(
        (pending.at(-1) ?? Promise.resolve()).then(async () => {
          for (let off = 0; off < copy.length;) off += await out.write(copy.subarray(off));
        }),
      );
    });
    gzip.on("end", () => Promise.all(pending).then(() => ok(), fail));
    gzip.on("error", fail);
  });
  for await (const block of tarBlocks(entries)) {
    if (!gzip.write(block)) await new Promise((r) => gzip.once("drain", r));
  }
  gzip.end();
  await written;
  return { sha256: hash.digest("hex"), size };
}
