/**
 * The platform this process runs on, in OCI terms (`linux/amd64`, `linux/arm64`), so the catalog
 * and the OCI clients agree on which of several platform variants is "this machine's".
 * @module
 */

const ARCH: Record<string, string> = {
  x86_64: "amd64",
  aarch64: "arm64",
  arm: "arm",
  riscv64gc: "riscv64",
  s390x: "s390x",
  powerpc64le: "ppc64le",
};

/** `os/arch` of this machine, as an OCI platform string. */
export function hostPlatform(): string {
  const os = Deno.build.os === "darwin" ? "linux" : Deno.build.os;
  return `${os}/${ARCH[Deno.build.arch] ?? Deno.build.arch}`;
}
