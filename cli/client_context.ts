/**
 * The Context a client is built with: its scoped settings (secret ones redacted from the start),
 * credential store, exec, poll with a spinner, metadata and thumbnail. A module of its own, loaded
 * only by commands that use a client, so `version`, `images` and the other local commands do not
 * load these services.
 * @module
 */

import type { ClientFactory, Context, Prompt } from "../clients/types.ts";
import type { Catalog, Metadata } from "../db/types.ts";
import { clientSettings } from "../core/client_settings.ts";
import { openCredentialStore } from "../core/credentials.ts";
import { createExec } from "../core/exec.ts";
import { type Http, readBody } from "../core/http.ts";
import type { Logger } from "../core/log.ts";
import { type Poll, poll } from "../core/poll.ts";
import type { ProgressSink } from "../core/progress_events.ts";
import type { Secrets } from "../core/secrets.ts";
import type { Env, Settings } from "../core/settings.ts";
import { readThumbnail } from "../core/thumbnail.ts";
import { createSpinner } from "./spinner.ts";

/** What the app gives {@link createClientContext}. */
export interface ClientContextParts {
  /** The client's factory (its scheme and settings). */
  factory: ClientFactory;
  /** The client's HTTP stack. */
  http: Http;
  /** The secrets file. */
  secrets: Secrets;
  /** Global settings. */
  settings: Settings;
  /** Environment. */
  env: Env;
  /** Messages. */
  log: Logger;
  /** Transfer progress. */
  progress: ProgressSink;
  /** Whether a spinner may be drawn. */
  drawSpinner: boolean;
  /** The app's prompt. */
  prompt: Prompt;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
  /** The app's metadata reader. */
  readMetadata: (file: string) => Promise<Metadata>;
  /** The catalog, opened on first use (undefined when disabled). */
  catalog: () => Catalog | undefined;
}

/** Build a client's Context. */
export function createClientContext(p: ClientContextParts): Context {
  const { factory, http, settings, env, log, signal } = p;
  const scheme = factory.scheme;
  // Every secret setting is redacted from the start, before the client reads it or fails.
  const secretNames = factory.settings.filter((d) => d.secret).map((d) => d.name);
  const cs = clientSettings(p.secrets, scheme, env, {
    secretNames,
    onSecret: (v) => log.addSecret(v),
  });
  for (const n of secretNames) cs.get(n);
  const spinner = createSpinner({ log, enabled: p.drawSpinner });
  const clientPoll: Poll = (o) => poll({ signal, ...o, onEvent: o.onEvent ?? spinner });
  return {
    name: scheme,
    http,
    settings: cs,
    clientSettings: cs,
    globals: settings,
    credentials: openCredentialStore({
      warn: (m) => log.warning(m),
      root: settings.credentialCacheRoot,
      client: scheme,
      disabled: settings.disableCredentialCache,
      env,
      debug: (m) => log.debug(m),
    }),
    prompt: p.prompt,
    exec: createExec({ path: env.get("PATH"), signal }),
    poll: clientPoll,
    metadata: (file) => p.readMetadata(file),
    thumbnail: () =>
      readThumbnail({
        path: settings.thumbnail,
        fetchBytes: async (url) => {
          const res = await http.request(url, { signal });
          return await readBody(http, res, { limit: 1024 * 1024, what: "the thumbnail", signal });
        },
      }),
    get catalog() {
      return p.catalog();
    },
    log,
    progress: p.progress,
    signal,
    env,
  };
}
