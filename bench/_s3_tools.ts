/**
 * The reference S3 clients (s3cmd and rclone) configured for the S3 API of a local Swift
 * (tests/servers/swift.ts), for the benchmarks that compare against them.
 * @module
 */

import { join } from "node:path";
import type { Swift } from "../tests/servers/swift.ts";

/** How to run s3cmd and rclone against `swift`. */
export interface S3Tools {
  /** An s3cmd configuration file (`s3cmd -c <file>`). */
  s3cfg: string;
  /** `base` plus an rclone remote named `sw` (RCLONE_CONFIG_SW_*) for the same endpoint. */
  rcloneEnv: Record<string, string>;
}

/** Write the s3cmd configuration into `dir` and build rclone's environment on top of `base`. */
export async function s3Tools(
  swift: Swift,
  dir: string,
  base: Record<string, string>,
): Promise<S3Tools> {
  const s3cfg = join(dir, "s3cfg");
  await Deno.writeTextFile(
    s3cfg,
    `[default]\naccess_key = ${swift.s3.accessKeyId}\nsecret_key = ${swift.s3.secretAccessKey}\n` +
      `host_base = ${swift.host}\nhost_bucket = ${swift.host}\nuse_https = False\n` +
      `signature_v2 = False\nbucket_location = us-east-1\nprogress_meter = False\n`,
  );
  return {
    s3cfg,
    rcloneEnv: {
      ...base,
      RCLONE_CONFIG_SW_TYPE: "s3",
      RCLONE_CONFIG_SW_PROVIDER: "Other",
      RCLONE_CONFIG_SW_ACCESS_KEY_ID: swift.s3.accessKeyId,
      RCLONE_CONFIG_SW_SECRET_ACCESS_KEY: swift.s3.secretAccessKey,
      RCLONE_CONFIG_SW_ENDPOINT: swift.url,
      RCLONE_CONFIG_SW_REGION: "us-east-1",
      RCLONE_CONFIG_SW_FORCE_PATH_STYLE: "true",
    },
  };
}
