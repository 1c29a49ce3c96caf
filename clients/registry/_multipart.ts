/**
 * A multipart/form-data body streamed from disk: the fields, then the file read in 1 MiB chunks,
 * then the closing boundary. The file is never held in memory (images reach tens of GB), its
 * bytes are hashed (md5, which the server stores as the first version, and sha256) and counted for
 * progress as they go out.
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { IntegrityError } from "../../core/errors.ts";
import { hexDigestOfFile } from "../../core/hasher.ts";

/** The file part of a form. */
export interface FilePart {
  /** The form field (`file1`, `datafile`). */
  field: string;
  /** The file name the server sees. */
  filename: string;
  /** Its content type (the original sent `text/plain`). */
  contentType: string;
  /** Where it is. */
  path: string;
  /** Its size. */
  size: number;
}

/** What one streamed body reports. */
export interface StreamedForm {
  /** The body. */
  stream: ReadableStream<Uint8Array>;
  /** Its exact length in bytes. */
  length: number;
  /** File bytes sent so far. */
  readonly sent: number;
  /** Hex digests of the file, once it was sent whole. */
  digests(): { md5: string; sha256: string } | undefined;
}

const enc = new TextEncoder();
const quote = (s: string) => s.replace(/["\r\n\\]/g, (c) => encodeURIComponent(c));

/** A random boundary. */
export function newBoundary(): string {
  return `----sregistry${crypto.randomUUID().replaceAll("-", "")}`;
}

/** Build one streamed form body (a new one per attempt). */
export function streamForm(
  boundary: string,
  fields: [string, string][],
  file: FilePart,
  onFileBytes: (n: number) => void,
): StreamedForm {
  let head = "";
  for (const [k, v] of fields) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${quote(k)}"\r\n\r\n${v}\r\n`;
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="${
    quote(file.field)
  }"; filename="${quote(file.filename)}"\r\nContent-Type: ${file.contentType}\r\n\r\n`;
  const headBytes = enc.encode(head);
  const tailBytes = enc.encode(`\r\n--${boundary}--\r\n`);
  let sent = 0;
  let md5: Hash | undefined = createHash("md5");
  let sha: Hash | undefined = createHash("sha256");
  let done: { md5: string; sha256: string } | undefined;
  let f: Deno.FsFile | undefined;
  let stage: "head" | "file" | "tail" | "end" = "head";
  const close = () => {
    f?.close();
    f = undefined;
  };
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (stage === "head") {
        stage = "file";
        f = await Deno.open(file.path, { read: true });
        controller.enqueue(headBytes);
        return;
      }
      if (stage === "file") {
        const left = file.size - sent;
        if (left > 0) {
          const buf = new Uint8Array(Math.min(1024 * 1024, left));
          const n = await f!.read(buf);
          if (n === null) {
            close();
            controller.error(
              new IntegrityError(`The file "${file.path}" shrank while it was being uploaded`),
            );
            return;
          }
          const chunk = buf.subarray(0, n);
          md5!.update(chunk);
          sha!.update(chunk);
          sent += n;
          onFileBytes(n);
          controller.enqueue(chunk);
          return;
        }
        close();
        done = { md5: md5!.digest("hex"), sha256: sha!.digest("hex") };
        md5 = sha = undefined;
        stage = "tail";
        controller.enqueue(tailBytes);
        return;
      }
      stage = "end";
      controller.close();
    },
    cancel: close,
  }, { highWaterMark: 1 });
  return {
    stream,
    length: headBytes.length + file.size + tailBytes.length,
    get sent() {
      return sent;
    },
    digests: () => done,
  };
}

/** md5 of a file, streamed (the hex version Singularity Hub and Registry Server publish). */
export function md5File(path: string): Promise<string> {
  return hexDigestOfFile(path, "md5");
}
