/** gRPC metadata key (and HTTP header) that carries the agent's token: `authorization: Bearer <token>`. */
export const AUTHORIZATION_KEY = 'authorization';

/** The header/metadata value for a token. */
export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/** Extracts the token from an `authorization` value, or `undefined` when it is not a well-formed bearer value. */
export function parseBearer(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(value);
  return match ? match[1] : undefined;
}
