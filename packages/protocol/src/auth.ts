/** gRPC metadata key (and HTTP header) that carries the agent's token: `authorization: Bearer <token>`. */
export const AUTHORIZATION_KEY = 'authorization';

/** The header/metadata value for a token. */
export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/**
 * Extracts the token from an `authorization` value (`Bearer abc` → `abc`, the scheme case-insensitive, spaces
 * around the token allowed), or `undefined` when it is not a well-formed bearer value: a token of 1–4096 visible
 * ASCII characters. The one rule for the agent's and every coordinator endpoint's bearer tokens.
 */
export function parseBearer(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer[ ]+([\x21-\x7e]{1,4096})[ ]*$/i.exec(value);
  return match ? match[1] : undefined;
}
