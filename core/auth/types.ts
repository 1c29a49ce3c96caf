/**
 * The authorizer contract: how a client's credentials reach a request. `core/http` calls
 * {@link Authorizer.authorize} before every attempt of a request (retries included), so signatures
 * and dates are always fresh, and {@link Authorizer.onChallenge} on a 401, which may refresh
 * credentials and ask for one more attempt. Basic, bearer-with-challenge, SigV4, HMAC and OAuth2
 * all fit this one shape.
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
   * The body bytes when the caller gave a buffer (signers that hash the payload need them);
   * undefined for stream bodies and requests without a body.
   */
  readonly body?: Uint8Array;
}

/** Adds credentials to requests, and refreshes them when the server asks. */
export interface Authorizer {
  /**
   * Add credentials to one attempt. core/http only calls it for the origin the caller addressed:
   * a redirect to another origin gets no credentials.
   */
  authorize(request: AuthRequest): void | Promise<void>;
  /**
   * Called on a 401 from the addressed origin: refresh what is needed and return true to try once
   * more, false to give up (the 401 then becomes an AuthError).
   */
  onChallenge?(response: Response, request: AuthRequest): Promise<boolean>;
}
