import { InvalidArgumentError, describeValue } from '@shoal/core';

/** What a `consul:` target names: a service, optionally a Consul agent address and filters. */
export interface ConsulTarget {
  /** Consul service name, e.g. `orders`. */
  readonly service: string;
  /** `http://host:port` of the Consul agent from the target's authority; absent = the default from `register()`. */
  readonly consulUrl?: string;
  /** Only instances carrying this tag (`?tag=v2`). */
  readonly tag?: string;
  /** The client's own zone (`?zone=eu-west-1a`): policies prefer instances in this zone. */
  readonly zone?: string;
  /** Consul datacenter (`?dc=dc2`). */
  readonly dc?: string;
}

const SERVICE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const HOST_PORT_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;
const KNOWN_PARAMS = ['tag', 'zone', 'dc'] as const;

/**
 * Parses the parts of a `consul:` target as grpc-js splits them: `consul:///orders` has an empty authority and the
 * path `orders`; `consul://127.0.0.1:8500/orders?tag=v2&zone=eu-west-1a` has the authority `127.0.0.1:8500`.
 */
export function parseConsulTarget(parts: { authority?: string | undefined; path: string }): ConsulTarget {
  const raw = parts.path.startsWith('/') ? parts.path.slice(1) : parts.path;
  const q = raw.indexOf('?');
  const service = decodeURIComponent(q === -1 ? raw : raw.slice(0, q));
  const label = `consul://${parts.authority ?? ''}/${raw}`;
  if (!SERVICE_RE.test(service)) {
    throw new InvalidArgumentError(
      `target ${JSON.stringify(label)}: the service name must start with a letter or digit and hold only letters, digits, '.', '_' and '-', got ${describeValue(service)}`,
    );
  }
  const target: { -readonly [K in keyof ConsulTarget]: ConsulTarget[K] } = { service };
  const authority = parts.authority ?? '';
  if (authority !== '') {
    if (!HOST_PORT_RE.test(authority)) {
      throw new InvalidArgumentError(
        `target ${JSON.stringify(label)}: the authority must be host[:port] of a Consul agent, got ${describeValue(authority)}`,
      );
    }
    target.consulUrl = `http://${authority.includes(':') && !authority.endsWith(']') ? authority : `${authority}:8500`}`;
  }
  if (q !== -1) {
    const params = new URLSearchParams(raw.slice(q + 1));
    for (const [key, value] of params) {
      if (!(KNOWN_PARAMS as readonly string[]).includes(key)) {
        throw new InvalidArgumentError(
          `target ${JSON.stringify(label)} has an unknown parameter ${JSON.stringify(key)}; known parameters: ${KNOWN_PARAMS.join(', ')}`,
        );
      }
      if (value === '') {
        throw new InvalidArgumentError(`target ${JSON.stringify(label)}: parameter ${key} must not be empty`);
      }
      target[key as (typeof KNOWN_PARAMS)[number]] = value;
    }
  }
  return Object.freeze(target);
}

/** Parses a whole target string (`consul:///orders?tag=v2`). */
export function parseConsulTargetString(target: string): ConsulTarget {
  const m = /^consul:(?:\/\/([^/]*)\/)?(.+)$/.exec(target);
  if (!m || m[2] === undefined) {
    throw new InvalidArgumentError(
      `target must look like consul:///service or consul://host:port/service, got ${describeValue(target)}`,
    );
  }
  return parseConsulTarget({ authority: m[1], path: m[2] });
}
