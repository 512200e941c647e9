/**
 * An error answer with Consul's status code and plain-text body. Route handlers throw it; the server writes it the
 * way Consul's `handleErr` does (`text/plain; charset=utf-8`, the reason as the body).
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(reason);
    this.name = 'HttpError';
  }
}

export const badRequest = (reason: string): HttpError => new HttpError(400, reason);
export const notFound = (reason: string): HttpError => new HttpError(404, reason);
export const internalError = (reason: string): HttpError => new HttpError(500, reason);

/** The AccessorID Consul reports for the anonymous token. */
export const ANONYMOUS_ACCESSOR = '00000000-0000-0000-0000-000000000002';

/** Consul's 403 for a request whose (anonymous) token lacks a permission. */
export function permissionDenied(permission: string, resource?: string): HttpError {
  const on = resource === undefined ? '' : ` on ${JSON.stringify(resource)}`;
  return new HttpError(
    403,
    `Permission denied: token with AccessorID '${ANONYMOUS_ACCESSOR}' lacks permission '${permission}'${on}`,
  );
}

/** Consul's 403 for a token secret it does not know. */
export const aclNotFound = (): HttpError => new HttpError(403, 'ACL not found');
