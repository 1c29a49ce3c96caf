/**
 * The last step of every download: verify the size and the digest, fsync, rename into place.
 * @module
 */

import { IntegrityError } from "../errors.ts";
import { removeQuietly } from "./_util.ts";

/** What {@link finish} checks and where it puts the file. */
export interface FinishJob {
  /** The open partial file (closed here), or undefined to open it for the fsync. */
  file?: Deno.FsFile;
  /** `<dest>.partial`. */
  partial: string;
  /** `<dest>.partial.json`. */
  metaPath: string;
  /** The final name. */
  dest: string;
  /** For messages. */
  href: string;
  /** Bytes received. */
  size: number;
  /** Bytes the server announced. */
  total?: number;
  /** Bytes the caller expected. */
  expectedSize?: number;
  /** The digest of what was received. */
  digest: string;
  /** The digest it must have. */
  expected?: string;
}

/**
 * Move a verified partial file into place. A mismatch removes the partial and its state.
 * @throws {IntegrityError} on a size or digest mismatch.
 */
export async function finish(job: FinishJob): Promise<void> {
  const { file, partial, metaPath, href, size, total, digest, expected } = job;
  const fail = async (msg: string) => {
    file?.close();
    await removeQuietly(partial, metaPath);
    throw new IntegrityError(msg);
  };
  if (total !== undefined && size !== total) {
    await fail(
      `Size mismatch for ${href}: received ${size} bytes, the server announced ${total}; nothing was kept, try again`,
    );
  }
  if (job.expectedSize !== undefined && size !== job.expectedSize) {
    await fail(
      `Size mismatch for ${href}: received ${size} bytes, expected ${job.expectedSize}; nothing was kept`,
    );
  }
  if (expected && digest !== expected) {
    await fail(
      `Digest mismatch for ${href}: expected ${expected}, got ${digest}; nothing was kept, try again`,
    );
  }
  if (file) {
    await file.sync();
    file.close();
  } else {
    using f = await Deno.open(partial, { read: true, write: true });
    await f.sync();
  }
  await Deno.rename(partial, job.dest);
  await removeQuietly(metaPath);
}
