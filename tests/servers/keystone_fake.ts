/**
 * A small strict fake of Keystone v3's token endpoint, `POST /v3/auth/tokens` (the Identity API v3
 * "Password authentication with scoped authorization"), in front of a real Swift with tempauth: a
 * good password gets `201`, a token in `X-Subject-Token` and a catalog whose object-store endpoint
 * is the real Swift account. The token is a real tempauth token the fake fetches with its own Swift
 * user, so Swift accepts it. As Keystone does, it refuses (400, Keystone's error JSON) a body that is
 * not JSON or lacks `identity.methods`, the password user's `name` with a `domain`, or a project
 * scope with a domain; a wrong user, password, domain or project is 401; any other path is 404 and
 * any other method 405.
 * @module
 */

/** What the fake accepts and where its catalog points. */
export interface KeystoneFakeOptions {
  /** The user name, password, user and project domain name and project name accepted. */
  user: string;
  password: string;
  domain?: string;
  project?: string;
  /** Gets a real token and storage URL (tempauth's /auth/v1.0 with a Swift user). */
  swiftLogin(): Promise<{ token: string; storageUrl: string }>;
  /** The catalog region (default RegionOne). */
  region?: string;
}

/** A running fake. */
export interface KeystoneFake {
  /** `http://127.0.0.1:<port>` (the Keystone root; the client adds /v3/auth/tokens). */
  readonly url: string;
  /** Tokens issued so far. */
  readonly issued: number;
  /** The next token issued is one Swift refuses (a token revoked or expired on the Swift side). */
  invalidateNext(): void;
  /** Stop it. */
  stop(): Promise<void>;
}

function error(code: number, title: string, message: string): Response {
  return Response.json({ error: { code, title, message } }, { status: code });
}

/** Start the fake on a free loopback port. */
export function startKeystoneFake(options: KeystoneFakeOptions): KeystoneFake {
  const domain = options.domain ?? "Default";
  const project = options.project ?? "Default";
  const region = options.region ?? "RegionOne";
  let issued = 0;
  let invalid = false;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      if (path !== "/v3/auth/tokens") {
        return error(404, "Not Found", "The resource could not be found.");
      }
      if (req.method !== "POST") {
        return error(405, "Method Not Allowed", `The method ${req.method} is not allowed`);
      }
      if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) {
        return error(415, "Unsupported Media Type", "Expecting application/json");
      }
      // deno-lint-ignore no-explicit-any
      let body: any;
      try {
        body = JSON.parse(await req.text());
      } catch {
        return error(400, "Bad Request", "Malformed JSON");
      }
      const identity = body?.auth?.identity;
      if (!Array.isArray(identity?.methods) || !identity.methods.includes("password")) {
        return error(400, "Bad Request", "'methods' is a required property");
      }
      const user = identity.password?.user;
      if (typeof user?.name !== "string" || typeof user?.password !== "string") {
        return error(400, "Bad Request", "Expecting to find name and password in user");
      }
      if (typeof user.domain?.name !== "string" && typeof user.domain?.id !== "string") {
        return error(400, "Bad Request", "Expecting to find domain in user");
      }
      const scope = body.auth.scope?.project;
      if (scope && typeof scope.domain?.name !== "string" && typeof scope.domain?.id !== "string") {
        return error(400, "Bad Request", "Expecting to find domain in project");
      }
      const domainOk = (d: { name?: string; id?: string }) =>
        d.name === domain || (domain === "Default" && d.id === "default");
      if (
        user.name !== options.user || user.password !== options.password || !domainOk(user.domain)
      ) {
        return error(401, "Unauthorized", "The request you have made requires authentication.");
      }
      if (!scope || scope.name !== project || !domainOk(scope.domain)) {
        return error(401, "Unauthorized", "The request you have made requires authentication.");
      }
      const swift = await options.swiftLogin();
      issued++;
      const token = invalid ? "AUTH_tk00000000000000000000000000000000" : swift.token;
      invalid = false;
      const now = new Date();
      return Response.json({
        token: {
          methods: ["password"],
          issued_at: now.toISOString(),
          expires_at: new Date(now.getTime() + 3600_000).toISOString(),
          user: { id: "u1", name: user.name, domain: { id: "default", name: domain } },
          project: { id: "p1", name: project, domain: { id: "default", name: domain } },
          catalog: [
            {
              type: "identity",
              name: "keystone",
              endpoints: [{
                interface: "public",
                region,
                region_id: region,
                url: "http://127.0.0.1:1/v3",
              }],
            },
            {
              type: "object-store",
              name: "swift",
              endpoints: [
                // Only the public endpoint is reachable: a client that takes another fails.
                {
                  interface: "internal",
                  region,
                  region_id: region,
                  url: "http://127.0.0.1:1/v1/x",
                },
                { interface: "public", region, region_id: region, url: swift.storageUrl },
                {
                  interface: "public",
                  region: "Other",
                  region_id: "Other",
                  url: "http://127.0.0.1:1/v1/y",
                },
              ],
            },
          ],
        },
      }, { status: 201, headers: { "x-subject-token": token } });
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get issued() {
      return issued;
    },
    invalidateNext() {
      invalid = true;
    },
    async stop() {
      ac.abort();
      await server.finished.catch(() => {});
    },
  };
}
