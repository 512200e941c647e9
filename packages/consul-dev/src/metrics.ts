import type { MetricsRegistry } from '@shoal/core';

/** What the consul-dev metrics read at scrape time. */
export interface ConsulDevMetricSources {
  /** Blocking queries waiting now. */
  blockingQueries(): number;
  /** Registered service instances (the built-in `consul` service not counted), and their distinct names. */
  serviceInstances(): { instances: number; services: number };
  /** Sessions alive now. */
  sessions(): number;
}

export interface ConsulDevMetrics {
  /** Counts one answered request. `endpoint` is the route (`/v1/health/service/`), never the raw path. */
  request(endpoint: string, code: number): void;
  /** Counts one connection closed as soon as it was accepted, by reason. */
  connectionRefused(reason: string): void;
}

/**
 * Registers consul-dev's metrics on `registry` (prom-client, loaded only when a registry is given):
 * `shoal_consul_dev_requests_total{endpoint,code}`, `shoal_consul_dev_blocking_queries`,
 * `shoal_consul_dev_services`, `shoal_consul_dev_service_instances`, `shoal_consul_dev_sessions`,
 * `shoal_consul_dev_connections_refused_total{reason}`.
 */
export async function createConsulDevMetrics(
  registry: MetricsRegistry,
  sources: ConsulDevMetricSources,
): Promise<ConsulDevMetrics> {
  const { Counter, Gauge } = await import('prom-client');
  const requests = new Counter({
    name: 'shoal_consul_dev_requests_total',
    help: 'HTTP requests answered, by endpoint (the API route) and status code.',
    labelNames: ['endpoint', 'code'],
    registers: [registry],
  });
  new Gauge({
    name: 'shoal_consul_dev_blocking_queries',
    help: 'Blocking queries (?index=) waiting for a change now.',
    registers: [registry],
    collect() {
      this.set(sources.blockingQueries());
    },
  });
  new Gauge({
    name: 'shoal_consul_dev_services',
    help: 'Distinct service names registered (the built-in consul service not counted).',
    registers: [registry],
    collect() {
      this.set(sources.serviceInstances().services);
    },
  });
  new Gauge({
    name: 'shoal_consul_dev_service_instances',
    help: 'Service instances registered (the built-in consul service not counted).',
    registers: [registry],
    collect() {
      this.set(sources.serviceInstances().instances);
    },
  });
  new Gauge({
    name: 'shoal_consul_dev_sessions',
    help: 'Sessions alive now.',
    registers: [registry],
    collect() {
      this.set(sources.sessions());
    },
  });
  const refused = new Counter({
    name: 'shoal_consul_dev_connections_refused_total',
    help: 'Connections closed as soon as accepted, by reason (max_connections, max_connections_per_client).',
    labelNames: ['reason'],
    registers: [registry],
  });
  return {
    request: (endpoint, code) => requests.inc({ endpoint, code: String(code) }),
    connectionRefused: (reason) => refused.inc({ reason }),
  };
}
