/**
 * Which instances to drain on scale-down. Instances that serve nothing go first (not ready, pending,
 * failed); then the policy's order: least loaded, youngest, oldest, or an explicit id order. Ties break on
 * youth, then id, so the choice is deterministic.
 */
import type { ObservedInstance } from './observation.js';
import { metricValue } from './observation.js';
import type { Policy } from './policy.js';

export function selectVictims(
  policy: Pick<Policy, 'victimSelection' | 'loadMetric'>,
  instances: readonly ObservedInstance[],
  count: number,
): string[] {
  if (count <= 0) return [];
  const candidates = instances.filter((i) => i.deleting !== true);
  const idle = (i: ObservedInstance): number => (i.phase === 'failed' || i.phase === 'pending' || !i.ready ? 0 : 1);
  const sel = policy.victimSelection;
  const explicit = typeof sel === 'object' ? new Map(sel.order.map((id, k) => [id, k])) : undefined;
  const load = (i: ObservedInstance): number => metricValue(i.metrics, policy.loadMetric) ?? -1;
  const started = (i: ObservedInstance): number => i.startedAt ?? Number.NEGATIVE_INFINITY;
  candidates.sort((a, b) => {
    const byIdle = idle(a) - idle(b);
    if (byIdle !== 0) return byIdle;
    let byPolicy = 0;
    if (explicit) {
      byPolicy = (explicit.get(a.id) ?? Number.MAX_SAFE_INTEGER) - (explicit.get(b.id) ?? Number.MAX_SAFE_INTEGER);
    } else if (sel === 'least-loaded') {
      byPolicy = load(a) - load(b);
    } else if (sel === 'oldest') {
      byPolicy = started(a) - started(b);
    }
    if (byPolicy !== 0 && !Number.isNaN(byPolicy)) return byPolicy;
    const byYouth = started(b) - started(a);
    if (byYouth !== 0 && !Number.isNaN(byYouth)) return byYouth;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  return candidates.slice(0, count).map((i) => i.id);
}
