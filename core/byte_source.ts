/**
 * Random access to the bytes of an image: the SIF reader and format detection work on a
 * {@linkcode ByteSource} rather than on a file, so that tests and the fuzzer can feed them memory
 * and callers decide how the bytes are fetched.
 * @module
 */

import { FormatError, NotFoundError } from "./errors.ts";

/**
 * Random access to the bytes of an image. The reader works on this rather than on a file so that
 * tests and the fuzzer can feed it memory, and so that callers decide how the bytes are fetched.
 */
export interface ByteSource {
  /** The name used in error messages (usually the path). */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Read up to `length` bytes at `offset`. Returns fewer bytes only at the end of the source.
   * Callers never ask for more than they have checked against {@linkcode ByteSource.size}.
   */
  readAt(offset: number, length: number): Promise<Uint8Array>;
  /** Release the underlying resource, if any. Safe to call twice. */
  close(): void;
}

/** A {@linkcode ByteSource} over bytes already in memory. */
export function memorySource(bytes: Uint8Array, name = "<memory>"): ByteSource {
  return {
    name,
    size: bytes.length,
    readAt(offset: number, length: number): Promise<Uint8Array> {
      const start = Math.max(0, Math.min(offset, bytes.length));
      return Promise.resolve(bytes.subarray(start, Math.min(bytes.length, start + length)));
    },
    close(): void {},
  };
}

/**
 * Open a file as a {@linkcode ByteSource}. Reads use seek + read on one handle, serialised, so
 * only the requested ranges are ever read.
 *
 * @throws {NotFoundError} when the file does not exist.
 * @throws {FormatError} when the path is not a regular file.
 */
export async function fileSource(path: string): Promise<ByteSource> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`No such image file "${path}"`, { cause: error });
    }
    throw error;
  }
  let info: Deno.FileInfo;
  try {
    info = await file.stat();
  } catch (error) {
    file.close();
    throw error;
  }
  if (!info.isFile) {
    file.close();
    throw new FormatError(`Image "${path}" is not a regular file`);
  }
  let closed = false;
  // One handle, one file position: chain the reads so two concurrent readAt calls cannot
  // interleave their seek and read.
  let queue: Promise<unknown> = Promise.resolve();
  // Every file operation is a round trip to the runtime's thread pool (tens of microseconds),
  // so skip the seek when the position is already right (sequential reads, offset 0 after open).
  let position = 0;
  const readAt = (offset: number, length: number): Promise<Uint8Array> => {
    const run = async (): Promise<Uint8Array> => {
      if (closed) throw new FormatError(`Image "${path}" was already closed`);
      const want = Math.max(0, Math.min(length, info.size - offset));
      const buffer = new Uint8Array(want);
      if (want === 0) return buffer;
      if (position !== offset) {
        position = -1; // unknown until the seek succeeds
        position = await file.seek(offset, Deno.SeekMode.Start);
      }
      let filled = 0;
      try {
        while (filled < want) {
          const n = await file.read(buffer.subarray(filled));
          if (n === null) break;
          filled += n;
        }
      } finally {
        position = offset + filled;
      }
      return filled === want ? buffer : buffer.subarray(0, filled);
    };
    const result = queue.then(run, run);
    queue = result.catch(() => undefined);
    return result;
  };
  return {
    name: path,
    size: info.size,
    readAt,
    close(): void {
      if (closed) return;
      closed = true;
      file.close();
    },
  };
}

/** How much of the start of a file {@linkcode prefetchSource} reads in one go. */
export const PREFETCH_BYTES = 64 * 1024;

/**
 * Wrap a source so that its first `bytes` bytes are read once, in one operation, and reads inside
 * that range are served from memory. With Singularity's layout the header, the descriptor table
 * (ending at 32176) and the small metadata objects written right after it all fit in 64 KiB, so
 * inspecting an image costs one read instead of five or six.
 */
export function prefetchSource(source: ByteSource, bytes: number = PREFETCH_BYTES): ByteSource {
  let prefix: Promise<Uint8Array> | undefined;
  const limit = Math.min(bytes, source.size);
  return {
    name: source.name,
    size: source.size,
    async readAt(offset: number, length: number): Promise<Uint8Array> {
      if (offset >= 0 && offset + length <= limit) {
        prefix ??= source.readAt(0, limit);
        const head = await prefix;
        // Copy, so that callers may keep or modify what they get without pinning the prefix.
        return head.slice(offset, offset + length);
      }
      return await source.readAt(offset, length);
    },
    close(): void {
      source.close();
    },
  };
}
