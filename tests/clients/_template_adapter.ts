/**
 * ADAPTER until the store-step merge: runs a client written against the new pull contract
 * (`pull(image, into: PullTarget): Promise<PulledImage>`, templates/client/mod.ts) under the old
 * one (`pull(image, PullOptions): Promise<PullResult>`), doing the store step's work in miniature.
 * Delete this file and its use in template_test.ts once cli/ has the one store step.
 * @module
 */

import { basename, join, resolve } from "node:path";
import type { Client, ClientFactory } from "../../clients/types.ts";
import { UsageError } from "../../core/errors.ts";
import { parseImageName, removeUri } from "../../core/names.ts";
import type { TemplateFactory } from "../../templates/client/mod.ts";

/** The factory under the old contract. */
export function adaptFactory(factory: TemplateFactory): ClientFactory {
  return {
    ...factory,
    create(ctx): Client {
      const client = factory.create(ctx);
      return {
        ...client,
        async pull(image, opts) {
          const names = parseImageName(removeUri(opts.name ?? image));
          const catalog = opts.noCache ? undefined : ctx.catalog;
          if (!catalog) {
            const dest = resolve(opts.file ?? join(Deno.cwd(), `${names.image}_${names.tag}.sif`));
            const exists = await Deno.lstat(dest).then(() => true, () => false);
            if (exists && !opts.force) {
              throw new UsageError(
                `${JSON.stringify(dest)} already exists: use --force to replace it`,
              );
            }
            const staging = join(dest, "..", `.${basename(dest)}.incoming`);
            const got = await client.pull(image, { path: staging, platform: opts.platform });
            await Deno.rename(got.file, dest);
            return { path: dest, url: got.url, digest: got.digest, size: got.size };
          }
          if (opts.file) {
            throw new UsageError(
              `--file ${
                JSON.stringify(opts.file)
              } needs --no-cache: the catalog chooses where it stores`,
            );
          }
          const got = await client.pull(image, {
            path: catalog.stagingPath(names),
            platform: opts.platform,
          });
          const { container } = await catalog.add({
            file: got.file,
            uri: opts.name ?? got.suggestedName ?? names.uri,
            url: got.url,
            client: ctx.name,
            sha256: got.digest?.replace(/^sha256:/, ""),
            metadata: got.metadata,
            force: opts.force,
          });
          return {
            path: container.image ?? got.file,
            container,
            url: got.url,
            digest: got.digest,
            size: got.size,
          };
        },
      };
    },
  };
}
