import type { Registry } from 'prom-client';

/** The prom-client registry an application passes in. Shoal never uses prom-client's global registry. */
export type MetricsRegistry = Registry;

/**
 * Wraps a metrics factory so it runs once per registry: two components sharing a registry share the metric
 * objects instead of registering the same name twice.
 */
export function memoizeMetrics<T>(factory: (registry: MetricsRegistry) => T): (registry: MetricsRegistry) => T {
  const cache = new WeakMap<MetricsRegistry, T>();
  return (registry) => {
    let metrics = cache.get(registry);
    if (metrics === undefined) {
      metrics = factory(registry);
      cache.set(registry, metrics);
    }
    return metrics;
  };
}
