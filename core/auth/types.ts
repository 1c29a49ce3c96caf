/**
 * The authorizer contract: how a client's credentials reach a request. `core/http` calls
 * {@link Authorizer.authorize} before every attempt of a request (retries included), so signatures
 * and dates are always fresh, and {@link Authorizer.onChallenge} on a 401, which may refresh
 * credentials and ask for one more attempt. Basic, bearer-with-challenge, SigV4, HMAC and OAuth2
 * all fit this one shape.
 *
 * core/http only calls an authorizer for its {@link Authorizer.origin} (or, unbound, the origin the
 * caller addressed): after a redirect to another origin (a registry sending a blob to S3) neither
 * method runs and every credential header is dropped.
 * @module
 */

/** The request about to be sent, as an authorizer sees it. */
export interface AuthRequest {
  /** The URL of this attempt. */
  readonly url: URL;
  /** The HTTP method. */
  readonly method: string;
  /** The headers to send; an authorizer adds its own here. */
  readonly headers: Headers;
  /**
   * The body bytes when the caller gave a buffer or a string (signers that hash the payload need
   * them); undefined for stream bodies and requests without a body.
   */
  readonly body?: Uint8Array;
  /** True when the body is a stream whose bytes cannot be seen (signers use an unsigned payload). */
  readonly streaming?: boolean;
}

/** Adds credentials to requests, and refreshes them when the server asks. */
export interface Authorizer {
  /**
   * The origin (`https://host:port`) the credentials belong to. When set, core/http runs the
   * authorizer for requests to that origin only, whatever URL a call starts at (an upload
   * `Location` on another host gets nothing); when unset, for the call's first URL's origin.
   */
  readonly origin?: string;
  /**
   * Add credentials to one attempt. Called before every attempt to the addressed origin, so a
   * signature with a date is made fresh each time.
   */
  authorize(request: AuthRequest): void | Promise<void>;
  /**
   * Called on a 401 from the addressed origin with the request that was refused: refresh what is
   * needed and return true to try once more, false to give up (the 401 then becomes an AuthError,
   * or goes back to a caller that accepts it). Read only the headers: the body stays the caller's.
   * Return false when a refresh gives back the credentials that were just refused, so a server that
   * rejects them for good does not cause a loop (core/http also stops after a few 401s in a row).
   */
  onChallenge?(response: Response, request: AuthRequest): Promise<boolean>;
}

/** A user name and password (or an identity token, with user name `<token>`). */
export interface Credentials {
  /** The user. */
  username: string;
  /** The password or token. */
  password: string;
}

/** Credentials given directly, or looked up lazily (at most once) when first needed. */
export type CredentialSource =
  | Credentials
  | undefined
  | (() => Credentials | undefined | Promise<Credentials | undefined>);

/** Resolve a {@link CredentialSource} once and remember the answer. */
export function lazyCredentials(
  source: CredentialSource,
): () => Promise<Credentials | undefined> {
  let got: Promise<Credentials | undefined> | undefined;
  return () => {
    got ??= typeof source === "function" ? Promise.resolve().then(source) : Promise.resolve(source);
    // A failed lookup (a helper that could not run) is tried again next time.
    got.catch(() => got = undefined);
    return got;
  };
}
