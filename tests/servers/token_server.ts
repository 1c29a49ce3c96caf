/**
 * A Docker Registry v2 token server for tests (distribution's token auth): RS256 JWTs with an `x5c`
 * chain the registry verifies against its `rootcertbundle`. Tokens can be made to expire quickly
 * (or already expired) to test refresh and expiry handling.
 * @module
 */

import { createPrivateKey, randomUUID, sign } from "node:crypto";

/** Options of {@link startTokenServer}. */
export interface TokenServerOptions {
  /** PEM private key that signs tokens. */
  keyPem: string;
  /** PEM certificate of that key (goes into x5c). */
  certPem: string;
  /** Issuer (must match the registry config). */
  issuer: string;
  /** user -> password. */
  users: Record<string, string>;
  /** Token lifetime in seconds (negative: already expired); default 300. */
  expiresIn?: number;
  /** Let anonymous users pull. */
  anonymousPull?: boolean;
}

/** A running token server. */
export interface TokenServer {
  /** `http://127.0.0.1:<port>/token`. */
  realm: string;
  /** Tokens issued so far. */
  readonly issued: number;
  /** Change the lifetime of later tokens. */
  setExpiresIn(seconds: number): void;
  /** Stop it. */
  stop(): Promise<void>;
}

const b64u = (b: Uint8Array | string) =>
  btoa(typeof b === "string" ? b : String.fromCharCode(...b)).replace(/\+/g, "-").replace(
    /\//g,
    "_",
  ).replace(/=+$/, "");

/** Start the token server on a free loopback port. */
export function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const key = createPrivateKey(options.keyPem);
  const der = options.certPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  let expiresIn = options.expiresIn ?? 300;
  let issued = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/token") return new Response("not found", { status: 404 });
    let user: string | undefined;
    const auth = req.headers.get("authorization") ?? "";
    if (auth.startsWith("Basic ")) {
      const decoded = atob(auth.slice(6));
      const i = decoded.indexOf(":");
      const [u, p] = [decoded.slice(0, i), decoded.slice(i + 1)];
      if (options.users[u] === undefined || options.users[u] !== p) {
        return Response.json({ errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] }, {
          status: 401,
        });
      }
      user = u;
    }
    const access: { type: string; name: string; actions: string[] }[] = [];
    for (const scope of url.searchParams.getAll("scope")) {
      for (const s of scope.split(" ")) {
        const m = s.match(/^([^:]+):(.+):([^:]+)$/);
        if (!m) continue;
        let actions = m[3].split(",");
        if (!user) actions = options.anonymousPull ? actions.filter((a) => a === "pull") : [];
        access.push({ type: m[1], name: m[2], actions });
      }
    }
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "RS256", x5c: [der] };
    const claims = {
      iss: options.issuer,
      sub: user ?? "",
      aud: url.searchParams.get("service") ?? "",
      exp: now + expiresIn,
      nbf: now - 10 + Math.min(0, expiresIn),
      iat: now + Math.min(0, expiresIn),
      jti: randomUUID(),
      access,
    };
    const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
    const token = `${input}.${
      b64u(new Uint8Array(sign("sha256", new TextEncoder().encode(input), key)))
    }`;
    issued++;
    return Response.json({
      token,
      access_token: token,
      expires_in: Math.max(1, expiresIn),
      issued_at: new Date(now * 1000).toISOString(),
    });
  });
  return Promise.resolve({
    realm: `http://127.0.0.1:${server.addr.port}/token`,
    get issued() {
      return issued;
    },
    setExpiresIn(s: number) {
      expiresIn = s;
    },
    stop: () => server.shutdown(),
  });
}
