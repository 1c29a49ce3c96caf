/**
 * sregistry as a library: choose a client, parse image names, open the local catalog.
 *
 * ```ts
 * import { createApp, parseImageName } from "jsr:@sregistry/cli";
 *
 * const app = createApp();
 * const { client } = app.getClient("docker://alpine:3.20");
 * console.log(parseImageName("vsoch/hello-world:v1").uri);
 * ```
 * @module
 */

import { type App, type AppOptions, createApp as createCliApp } from "./cli/app.ts";
import { openCatalog } from "./db/catalog.ts";
import * as clients from "./clients/mod.ts";
import { createHttp } from "./core/http.ts";
import { createClientContext as createContext } from "./cli/client_context.ts";

export type { App, AppOptions, ClientHandle } from "./cli/app.ts";
export type { ClientContextParts } from "./cli/client_context.ts";

/** Build an app with every part loaded: the catalog, the clients and the http stack. */
export function createApp(options: AppOptions = {}): App {
  return createCliApp({ openCatalog, clients, createHttp, createContext, ...options });
}
export { type PromptInput, textInput } from "./cli/prompt.ts";
export {
  ACCEPTED_URIS,
  getRecipeTag,
  getUri,
  type ParsedName,
  parseImageName,
  type ParseOptions,
  removeUri,
  storagePath,
} from "./core/names.ts";
export { type Env, envFrom, readSettings, type Settings } from "./core/settings.ts";
export { openSecrets, type Secrets, type SecretsData } from "./core/secrets.ts";
export * from "./core/errors.ts";
export type { CatalogOptions } from "./db/catalog.ts";
export { openCatalog };
export type { Logger, Output, TextSink } from "./core/log.ts";
export type { Http, HttpOptions, RequestOptions } from "./core/http.ts";
export type { Authorizer, AuthRequest, Credentials, CredentialSource } from "./core/auth/types.ts";
export { basicAuth, type BasicAuthOptions, bearerToken } from "./core/auth/basic.ts";
export {
  bearerChallenge,
  type BearerChallengeAuthorizer,
  type BearerChallengeOptions,
} from "./core/auth/bearer_challenge.ts";
export { type Challenge, parseChallenges } from "./core/auth/challenge.ts";
export { type AwsCredentials, sigV4Auth, type SigV4Options } from "./core/auth/sigv4.ts";
export {
  oauth2RefreshAuth,
  type OAuth2RefreshOptions,
  type OAuth2Tokens,
} from "./core/auth/oauth2.ts";
export {
  type AccessToken,
  jwtBearerAuth,
  type JwtBearerAuthorizer,
  type JwtBearerOptions,
  type ServiceAccountKey,
} from "./core/auth/jwt_bearer.ts";
export type { ClientSettings } from "./core/client_settings.ts";
export type { CredentialStore } from "./core/credentials.ts";
export type { Exec, ExecOptions, ExecResult, Runner } from "./core/exec.ts";
export type { Poll, PollCheck, PollEvent, PollOptions } from "./core/poll.ts";
export type { Thumbnail } from "./core/thumbnail.ts";
export { NO_PROGRESS, type ProgressEvent, type ProgressSink } from "./core/progress_events.ts";
export type {
  AddOptions,
  AddResult,
  Catalog,
  ContainerRow,
  LabelHit,
  Metadata,
} from "./db/types.ts";
export { FACTORIES, findFactory, knownSchemes, resolveClientName } from "./clients/mod.ts";
export { CAPABILITIES, capabilitiesOf, type Capability } from "./clients/types.ts";
export type {
  BuildOptions,
  BuiltImage,
  Client,
  ClientFactory,
  Context,
  DeleteOptions,
  DeleteResult,
  Prompt,
  PulledFormat,
  PulledImage,
  PullTarget,
  PushOptions,
  PushResult,
  ReadonlyCatalog,
  RecordOptions,
  RemoteRecord,
  SearchHit,
  SearchOptions,
  SettingDoc,
} from "./clients/types.ts";
export { VERSION } from "./core/version.ts";

// `deno run -A jsr:@sregistry/cli pull ...` runs this module: be the CLI then (as `./cli` is), and
// only then load it.
if (import.meta.main) {
  const { runProgram } = await import("./main.ts");
  await runProgram();
}
