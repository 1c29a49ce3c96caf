/**
 * The OCI registry side shared by the docker, nvidia, aws and oras conformance specs: seed the
 * fixture into a real registry (independently of the code under test) under the names the suite
 * pulls, and put a fault proxy in front for the 5xx, dropped and slow cases.
 * @module
 */

import { startFaultProxy } from "../servers/fault_proxy.ts";
import { makeLayer, pushImage, pushSifArtifact, type PushTarget } from "../servers/registry.ts";

/** The names every registry spec seeds, under `<namespace>/`. */
export const SEEDED = ["hello", "broken", "dropped", "slow"] as const;

/**
 * Seed `<namespace>/<name>:v1` for each {@link SEEDED} name, as a container image with the fixture
 * as its one file (`image`) or as an ORAS SIF artifact (`sif`).
 */
export async function seed(
  target: PushTarget,
  namespace: string,
  bytes: Uint8Array,
  kind: "image" | "sif",
): Promise<void> {
  const layer = kind === "image" ? await makeLayer({ "conformance.sif": bytes }) : undefined;
  for (const name of SEEDED) {
    const repo = `${namespace}/${name}`;
    if (layer) await pushImage(target, repo, "v1", [layer]);
    else await pushSifArtifact(target, repo, "v1", bytes);
  }
}

/** A fault proxy for `<namespace>/broken` (503), `/dropped` (dropped blobs) and `/slow`. */
export function registryFaults(upstream: string, namespace: string) {
  const ns = namespace.replaceAll("/", "\\/");
  return startFaultProxy(upstream, [
    { path: new RegExp(`^/v2/${ns}/broken/`), fault: { status: 503 } },
    { path: new RegExp(`^/v2/${ns}/dropped/blobs/`), fault: { dropAfter: 20_000 } },
    { path: new RegExp(`^/v2/${ns}/slow/blobs/`), fault: { rate: 24 * 1024 } },
  ]);
}
