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

export { type App, type AppOptions, type ClientHandle, createApp } from "./cli/app.ts";
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
export { type CatalogOptions, openCatalog } from "./db/catalog.ts";
export type { Logger, Output, TextSink } from "./core/log.ts";
export type { Http, HttpOptions, RequestOptions, TokenUpdater } from "./core/http.ts";
export type { ClientSettings } from "./core/secrets.ts";
export type {
  AddOptions,
  AddResult,
  Catalog,
  ContainerRow,
  LabelHit,
  Metadata,
} from "./db/types.ts";
export { FACTORIES, findFactory, knownSchemes, resolveClientName } from "./clients/mod.ts";
export type {
  Client,
  ClientFactory,
  Context,
  PulledFormat,
  PulledImage,
  PullTarget,
  PushOptions,
  PushResult,
  RemoteRecord,
  SearchHit,
  SettingDoc,
} from "./clients/types.ts";
export { VERSION } from "./core/version.ts";
