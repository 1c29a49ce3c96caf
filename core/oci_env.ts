/**
 * An OCI config's `Env` list in the catalog's one environment shape: Singularity's environment
 * script, keyed by the file Singularity writes for images converted from OCI/Docker.
 * @module
 */

/** The environment file Singularity writes for images converted from OCI/Docker. */
export const OCI_ENV_FILE = "/.singularity.d/env/10-docker2singularity.sh";

/** An OCI `Env` list (`["K=V"]`) as `{ [OCI_ENV_FILE]: "#!/bin/sh\nexport K=\"V\"\n" }`. */
export function environmentFromEnv(env: readonly string[]): Record<string, string> {
  const lines = env.map((entry) => {
    const eq = entry.indexOf("=");
    const key = eq < 0 ? entry : entry.slice(0, eq);
    const value = eq < 0 ? "" : entry.slice(eq + 1);
    return `export ${key}=${JSON.stringify(value)}`;
  });
  return lines.length ? { [OCI_ENV_FILE]: `#!/bin/sh\n${lines.join("\n")}\n` } : {};
}
