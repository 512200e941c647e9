import {
  InvalidArgumentError,
  assertKnownKeys,
  assertObject,
  assertPositiveInteger,
  assertString,
  describeValue,
} from '@shoal/core';

/** Where and how to reach Consul. Shared by `ServiceRegistration`, `ServiceWatcher` and the packages built on them. */
export interface ConsulConnectionOptions {
  /** Base URL of the Consul HTTP API (agent), `http://host:port` or `https://host:port`. Default `http://127.0.0.1:8500`. A bare `host:port` (the `CONSUL_HTTP_ADDR` format) means http. */
  url?: string;
  /** ACL token, sent as the `X-Consul-Token` header. Never logged. */
  token?: string;
  /** Datacenter to query (`?dc=`). Default: the agent's own. */
  datacenter?: string;
  /** PEM CA certificate(s) to trust for an `https` URL. Default: Node's bundled roots. */
  ca?: string | Buffer;
  /** Limit for every non-blocking HTTP call, in ms; blocking queries get their `wait` plus wait/16 plus this. Default 10000. */
  requestTimeoutMs?: number;
}

export interface ResolvedConsulConnectionOptions {
  /** Normalised base URL without a trailing slash, e.g. `http://127.0.0.1:8500`. */
  readonly url: string;
  readonly secure: boolean;
  readonly token?: string;
  readonly datacenter?: string;
  readonly ca?: string | Buffer;
  readonly requestTimeoutMs: number;
}

export const DEFAULT_CONSUL_URL = 'http://127.0.0.1:8500';
const KNOWN = ['url', 'token', 'datacenter', 'ca', 'requestTimeoutMs'] as const;

/** Applies defaults to and validates connection options; `name` prefixes option names in errors. */
export function resolveConsulConnectionOptions(
  input: ConsulConnectionOptions | undefined,
  name = 'consul',
): ResolvedConsulConnectionOptions {
  const opts = input ?? {};
  assertObject(name, opts);
  assertKnownKeys(name, opts as Record<string, unknown>, KNOWN);

  let raw = opts.url ?? DEFAULT_CONSUL_URL;
  assertString(`${name}.url`, raw, { maxLength: 2048 });
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) raw = `http://${raw}`;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new InvalidArgumentError(
      `${name}.url must be an http(s) URL such as http://127.0.0.1:8500, got ${describeValue(opts.url)}`,
    );
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidArgumentError(`${name}.url must use http or https, got ${describeValue(opts.url)}`);
  }
  if (parsed.username || parsed.password) {
    throw new InvalidArgumentError(`${name}.url must not carry credentials; pass ${name}.token instead`);
  }
  if ((parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search || parsed.hash) {
    throw new InvalidArgumentError(
      `${name}.url must be the server root without a path or query (the client adds /v1), got ${describeValue(opts.url)}`,
    );
  }
  const url = `${parsed.protocol}//${parsed.host}`;

  if (opts.token !== undefined) {
    // The token goes into a header: refuse anything that could split it, and never echo the value.
    if (typeof opts.token !== 'string' || opts.token.length === 0 || !/^[\x21-\x7e]+$/.test(opts.token)) {
      throw new InvalidArgumentError(
        `${name}.token must be a non-empty string of printable ASCII without spaces, got ${typeof opts.token === 'string' ? 'an invalid string' : describeValue(opts.token)}`,
      );
    }
  }
  if (opts.datacenter !== undefined) {
    assertString(`${name}.datacenter`, opts.datacenter, { maxLength: 128, pattern: /^[A-Za-z0-9_-]+$/ });
  }
  if (opts.ca !== undefined && typeof opts.ca !== 'string' && !Buffer.isBuffer(opts.ca)) {
    throw new InvalidArgumentError(`${name}.ca must be a PEM string or a Buffer, got ${describeValue(opts.ca)}`);
  }
  if (opts.ca !== undefined && parsed.protocol !== 'https:') {
    throw new InvalidArgumentError(`${name}.ca is only used with an https url, got url ${describeValue(url)}`);
  }
  const requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
  assertPositiveInteger(`${name}.requestTimeoutMs`, requestTimeoutMs);

  return Object.freeze({
    url,
    secure: parsed.protocol === 'https:',
    ...(opts.token !== undefined ? { token: opts.token } : {}),
    ...(opts.datacenter !== undefined ? { datacenter: opts.datacenter } : {}),
    ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    requestTimeoutMs,
  });
}
