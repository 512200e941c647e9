import { Counter, Gauge } from 'prom-client';
import { memoizeMetrics, type MetricsRegistry } from '@shoal/core';

/** What a live shared watch reports at scrape time. */
export interface WatchMetricsSource {
  readonly service: string;
  /** Instance ids in the watch's current list. */
  instanceIds(): Iterable<string>;
  /** Seconds since the watch last knew its list was current (0 while healthy). */
  syncAgeSeconds(): number;
  readonly stale: boolean;
}

export const REGISTRATION_STATES = ['idle', 'registering', 'registered', 'failed', 'closed'] as const;

export interface ConsulMetrics {
  registrationState: Gauge<'service' | 'instance_id' | 'state'>;
  registrationFailures: Counter<'service' | 'code'>;
  reregistrations: Counter<'service'>;
  heartbeatFailures: Counter<'service' | 'code'>;
  watchErrors: Counter<'service' | 'code'>;
  watchQueries: Counter<'service'>;
  watchSources: Set<WatchMetricsSource>;
}

/** One set of @shoal/consul metrics per registry (components sharing a registry share them). */
export const consulMetrics = memoizeMetrics((registry: MetricsRegistry): ConsulMetrics => {
  const watchSources = new Set<WatchMetricsSource>();
  const registers = [registry];
  const byService = <T>(fold: (acc: T | undefined, s: WatchMetricsSource) => T) => {
    const out = new Map<string, T>();
    for (const s of watchSources) out.set(s.service, fold(out.get(s.service), s));
    return out;
  };
  new Gauge({
    name: 'shoal_consul_watch_instances',
    help: 'Distinct instances in the current lists of all watches of the service.',
    labelNames: ['service'],
    registers,
    collect() {
      this.reset();
      const sets = byService<Set<string>>((acc, s) => {
        const set = acc ?? new Set<string>();
        for (const id of s.instanceIds()) set.add(id);
        return set;
      });
      for (const [service, set] of sets) this.set({ service }, set.size);
    },
  });
  new Gauge({
    name: 'shoal_consul_watch_last_sync_age_seconds',
    help: 'Seconds since the stalest watch of the service last had a current list (0 while its blocking query is healthy).',
    labelNames: ['service'],
    registers,
    collect() {
      this.reset();
      for (const [service, age] of byService<number>((acc, s) => Math.max(acc ?? 0, s.syncAgeSeconds()))) {
        this.set({ service }, age);
      }
    },
  });
  new Gauge({
    name: 'shoal_consul_watch_stale',
    help: '1 when a watch of the service serves its last good list because Consul is failing, else 0.',
    labelNames: ['service'],
    registers,
    collect() {
      this.reset();
      for (const [service, stale] of byService<boolean>((acc, s) => (acc ?? false) || s.stale)) {
        this.set({ service }, stale ? 1 : 0);
      }
    },
  });
  return {
    registrationState: new Gauge({
      name: 'shoal_consul_registration_state',
      help: '1 for the state each registration is in (idle, registering, registered, failed, closed), 0 for the others.',
      labelNames: ['service', 'instance_id', 'state'],
      registers,
    }),
    registrationFailures: new Counter({
      name: 'shoal_consul_registration_failures_total',
      help: 'Failed attempts to register a service instance, by error code.',
      labelNames: ['service', 'code'],
      registers,
    }),
    reregistrations: new Counter({
      name: 'shoal_consul_reregistrations_total',
      help: 'Times a registration found Consul had forgotten the instance and registered it again.',
      labelNames: ['service'],
      registers,
    }),
    heartbeatFailures: new Counter({
      name: 'shoal_consul_heartbeat_failures_total',
      help: 'Failed TTL heartbeats (or presence checks), by error code.',
      labelNames: ['service', 'code'],
      registers,
    }),
    watchErrors: new Counter({
      name: 'shoal_consul_watch_errors_total',
      help: 'Failed health queries of service watches, by error code.',
      labelNames: ['service', 'code'],
      registers,
    }),
    watchQueries: new Counter({
      name: 'shoal_consul_watch_queries_total',
      help: 'Health queries (blocking or not) sent by service watches.',
      labelNames: ['service'],
      registers,
    }),
    watchSources,
  };
});

export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}
