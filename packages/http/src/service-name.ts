import { InvalidArgumentError, assertObject, assertString, describeValue } from '@shoal/core';

/** Which Consul service (and filters) a host name stands for. */
export interface ServiceRoute {
  service: string;
  tag?: string;
  dc?: string;
}

/** What an origin maps to: a service route, `'not-http'` (a service name on another scheme), or null (no service). */
export type OriginTarget = ServiceRoute | 'not-http' | null;

const ORIGIN_CACHE_SIZE = 1024;
const SERVICE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Maps request host names to Consul services: explicit `services` entries first (`{ 'orders.internal': 'orders' }`
 * or `{ 'orders.internal': { service: 'orders', tag: 'v2' } }`), then `<name>.<domain>` (default domain
 * `service.consul`, optionally `<tag>.<name>.service.consul` as Consul DNS does). Other hosts are not services.
 */
export class ServiceNameResolver {
  private readonly explicit = new Map<string, ServiceRoute>();
  private readonly suffix: string | undefined;
  /** Per origin string: parsing a URL per request is measurable at tens of thousands of requests per second. */
  private readonly origins = new Map<string, OriginTarget>();

  constructor(services: Record<string, string | ServiceRoute> = {}, domain: string | false = 'service.consul') {
    assertObject('services', services);
    for (const [host, value] of Object.entries(services)) {
      const route = typeof value === 'string' ? { service: value } : value;
      assertObject(`services[${JSON.stringify(host)}]`, route);
      assertString(`services[${JSON.stringify(host)}].service`, route.service, { pattern: SERVICE_RE });
      if (route.tag !== undefined) assertString(`services[${JSON.stringify(host)}].tag`, route.tag);
      if (route.dc !== undefined) assertString(`services[${JSON.stringify(host)}].dc`, route.dc);
      this.explicit.set(host.toLowerCase(), { ...route });
    }
    if (domain !== false) {
      assertString('domain', domain, { pattern: /^[A-Za-z0-9.-]+$/ });
      if (domain.startsWith('.') || domain.endsWith('.')) {
        throw new InvalidArgumentError(`domain must not start or end with a dot, got ${describeValue(domain)}`);
      }
      this.suffix = `.${domain.toLowerCase()}`;
    }
  }

  /** The route for `hostname`, or undefined when requests to it are not balanced. */
  resolve(hostname: string): ServiceRoute | undefined {
    const host = hostname.toLowerCase();
    const explicit = this.explicit.get(host);
    if (explicit) return explicit;
    if (this.suffix === undefined || !host.endsWith(this.suffix)) return undefined;
    const labels = host.slice(0, -this.suffix.length).split('.');
    if (labels.length === 1 && SERVICE_RE.test(labels[0]!)) return { service: labels[0]! };
    if (labels.length === 2 && SERVICE_RE.test(labels[1]!)) return { service: labels[1]!, tag: labels[0]! };
    return undefined;
  }

  /**
   * The route for a request origin (`http://orders.service.consul`, a URL or a string), `'not-http'` when it names
   * a service on another scheme, null when requests to it are not balanced. Cached per origin string.
   */
  resolveOrigin(origin: unknown): OriginTarget {
    const key = typeof origin === 'string' ? origin : origin instanceof URL ? origin.origin : String(origin ?? '');
    const cached = this.origins.get(key);
    if (cached !== undefined) return cached;
    let url: URL | undefined;
    try {
      url = new URL(key);
    } catch {
      url = undefined;
    }
    const route = url ? this.resolve(url.hostname) : undefined;
    const target: OriginTarget = route === undefined ? null : url!.protocol === 'http:' ? route : 'not-http';
    if (this.origins.size >= ORIGIN_CACHE_SIZE) this.origins.clear();
    this.origins.set(key, target);
    return target;
  }
}
