/**
 * Every byte sregistry moves goes through here: {@link download} (one stream, or ranged parts for
 * large objects, resumable from `<dest>.partial`), {@link upload} (a streamed body), and the part
 * uploads {@link uploadChunked} (OCI PATCH) and {@link multipartUpload} (S3 style). Each takes one
 * job object and reports progress as events on the job's `progress` sink; nothing here draws.
 * @module
 */

export { download, type DownloadJob, type DownloadResult } from "./download.ts";
export { MAX_STREAMS, PARALLEL_THRESHOLD, PART_SIZE } from "./ranged_parts.ts";
export { upload, type UploadJob } from "./upload.ts";
export {
  type ChunkedUploadJob,
  type ChunkedUploadResult,
  multipartUpload,
  type MultipartUploadJob,
  uploadChunked,
  type UploadPart,
} from "./multipart.ts";
export { announcedDigest } from "./headers.ts";
export { isNoSpace, NoSpaceError } from "./_no_space.ts";
export { canResume, type Part, type PartialMeta, partialPaths, readMeta } from "./resume_state.ts";
