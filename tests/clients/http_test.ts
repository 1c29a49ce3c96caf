/** The http(s):// client against Debian's nginx (basic auth on /private/), through the suite. */

import { join } from "node:path";
import { requirement } from "../_cli.ts";
import { runClientConformance } from "../conformance.ts";
import { startFaultProxy } from "../servers/fault_proxy.ts";
import { nginxAvailable, startNginx } from "../servers/nginx.ts";

const { ignore } = requirement(
  "nginx, openssl and htpasswd (apt-get install nginx openssl apache2-utils)",
  nginxAvailable(),
);

runClientConformance({
  scheme: "http",
  capabilities: ["pull"],
  ignore,
  async start(fixture) {
    const nginx = await startNginx();
    const dir = join(nginx.root, "private", "conformance");
    await Deno.mkdir(dir);
    await Deno.chmod(dir, 0o755);
    for (const name of ["hello", "broken", "dropped", "slow"]) {
      await Deno.writeFile(join(dir, `${name}.sif`), fixture.bytes, { mode: 0o644 });
    }
    const proxy = startFaultProxy(nginx.http, [
      { path: /\/broken\.sif$/, fault: { status: 503 } },
      { path: /\/dropped\.sif$/, fault: { dropAfter: 100_000 } },
      { path: /\/slow\.sif$/, fault: { rate: 48 * 1024 } },
    ]);
    const { name, password } = nginx.user;
    const at = (base: string, image: string) => ({ uri: `${base}/private/conformance/${image}` });
    return {
      env: { SREGISTRY_HTTP_USERNAME: name, SREGISTRY_HTTP_PASSWORD: password },
      uri: `${nginx.http}/private/conformance/hello.sif`,
      unauthorized: {
        ...at(nginx.http, "hello.sif"),
        env: { SREGISTRY_HTTP_PASSWORD: "wrong-password" },
      },
      notFound: at(nginx.http, "missing.sif"),
      serverError: at(proxy.url, "broken.sif"),
      dropped: at(proxy.url, "dropped.sif"),
      slow: { ...at(proxy.url, "slow.sif"), sent: () => proxy.faultedBytes },
      secretValues: [btoa(`${name}:${password}`)],
      async stop() {
        await proxy.stop();
        await nginx.stop();
      },
    };
  },
});
