/** What a route handler answers; the server turns it into an HTTP response the way Consul's `wrap` does. */
export type Reply =
  | { kind: 'json'; value: unknown; status?: number; headers?: Record<string, string> }
  | { kind: 'empty'; status?: number; headers?: Record<string, string> }
  | {
      kind: 'text';
      text: string | Buffer;
      contentType: string;
      status?: number;
      headers?: Record<string, string>;
      /** Every response header, flattened [name, value, ...], for `writeHead`'s fast path (cached replies). */
      rawHeaders?: string[];
    };

export const json = (value: unknown, headers?: Record<string, string>, status?: number): Reply => ({
  kind: 'json',
  value,
  ...(headers ? { headers } : {}),
  ...(status ? { status } : {}),
});

export const empty = (headers?: Record<string, string>, status?: number): Reply => ({
  kind: 'empty',
  ...(headers ? { headers } : {}),
  ...(status ? { status } : {}),
});

/** Go's encoding/json escapes <, >, & and the JS line separators; so do we, byte for byte. */
export function goJson(value: unknown, pretty: boolean): string {
  const text = pretty ? `${JSON.stringify(value, null, 4)}\n` : JSON.stringify(value);
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
