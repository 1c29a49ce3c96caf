/**
 * The platform this process runs on, in OCI terms (`linux/amd64`, `linux/arm64`), so the catalog
 * and the OCI clients agree on which of several platform variants is "this machine's".
 * @module
 */

/** Deno's architecture names in OCI terms. */
export const OCI_ARCH: Readonly<Record<string, string>> = {
  x86_64: "amd64",
  aarch64: "arm64",
  arm: "arm",
  riscv64: "riscv64",
  riscv64gc: "riscv64",
  s390x: "s390x",
  powerpc64le: "ppc64le",
  ppc64le: "ppc64le",
};

/** `os/arch` of this machine, as an OCI platform string. */
export function hostPlatform(build: { os: string; arch: string } = Deno.build): string {
  // Containers from registries are Linux images even on a macOS host (they run in a VM).
  const os = build.os === "windows" ? "windows" : "linux";
  return `${os}/${OCI_ARCH[build.arch] ?? build.arch}`;
}
