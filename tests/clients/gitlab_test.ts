/**
 * The gitlab:// client against the strict GitLab fake (tests/servers/gitlab_fake.ts). The image
 * the suite pulls is served the way gitlab.com serves artifacts: a 302 to object storage. Faults
 * are routed by a base-URL prefix (`/broken`, `/dropped`, `/slow`) that the fake ignores, for jobs
 * whose artifacts the fake serves itself (a redirect would leave the fault proxy).
 * @module
 */

import { runClientConformance } from "../conformance.ts";
import { startFaultProxy } from "../servers/fault_proxy.ts";
import { startGitlabFake } from "../servers/gitlab_fake.ts";

const TOKEN = "glpat-conformance-token";
const artifacts = (prefix: string) =>
  new RegExp(`^/${prefix}/api/v4/projects/[^/]+/jobs/\\d+/artifacts/`);

runClientConformance({
  scheme: "gitlab",
  capabilities: ["pull", "search", "record"],
  start(fixture) {
    const fake = startGitlabFake();
    fake.addToken(TOKEN);
    fake.addProject("conformance/hello");
    const files = { "build/Singularity.sif": fixture.bytes };
    fake.addJob("conformance/hello", { id: 101, files });
    fake.addJob("conformance/hello", { id: 102, files, direct: true });
    const proxy = startFaultProxy(fake.url, [
      { path: /^\/broken\//, fault: { status: 503 } },
      { path: artifacts("dropped"), fault: { dropAfter: 100_000 } },
      { path: artifacts("slow"), fault: { rate: 48 * 1024 } },
    ]);
    const via = (prefix: string) => ({ SREGISTRY_GITLAB_BASE: `${proxy.url}/${prefix}` });
    return Promise.resolve({
      env: { SREGISTRY_GITLAB_TOKEN: TOKEN, SREGISTRY_GITLAB_BASE: fake.url },
      uri: "gitlab://conformance/hello@101",
      search: { query: "gitlab://conformance/hello", expect: "conformance/hello@101" },
      unauthorized: {
        uri: "gitlab://conformance/hello@101",
        env: { SREGISTRY_GITLAB_TOKEN: "glpat-wrong" },
      },
      notFound: { uri: "gitlab://conformance/hello@999" },
      serverError: { uri: "gitlab://conformance/hello@102", env: via("broken") },
      dropped: { uri: "gitlab://conformance/hello@102", env: via("dropped") },
      slow: {
        uri: "gitlab://conformance/hello@102",
        env: via("slow"),
        sent: () => proxy.faultedBytes,
      },
      secretValues: [TOKEN],
      async stop() {
        await proxy.stop();
        await fake.stop();
      },
    });
  },
});
