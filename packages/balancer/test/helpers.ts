import { createInstance, ManualClock, type Instance } from '@shoal/core';
import { Balancer, createRandom, strategyNames, type BalancerOptions } from '@shoal/balancer';

/** `n` instances named `prefix0`, `prefix1`, … with optional per-index weight and zone. */
export function makeInstances(
  n: number,
  opts: { prefix?: string; weight?: (i: number) => number; zone?: (i: number) => string | undefined } = {},
): Instance[] {
  const out: Instance[] = [];
  for (let i = 0; i < n; i++) {
    const zone = opts.zone?.(i);
    out.push(
      createInstance({
        id: `${opts.prefix ?? 'e'}${i}`,
        service: 'svc',
        address: '10.0.0.1',
        port: 1000 + i,
        weight: opts.weight?.(i) ?? 1,
        ...(zone !== undefined ? { zone } : {}),
      }),
    );
  }
  return out;
}

/** A balancer on a ManualClock with a seeded random source; every test closes what it opens. */
export function makeBalancer(options: BalancerOptions = {}, seed = 1): { balancer: Balancer; clock: ManualClock } {
  const clock = new ManualClock(1_000_000);
  const balancer = new Balancer({ clock, random: createRandom(seed), ...options });
  return { balancer, clock };
}

/** Picks `n` times, completing each at once with `latency(id)`; returns pick counts by instance id. */
export function countPicks(
  balancer: Balancer,
  n: number,
  latency: (id: string) => number = () => 1,
  outcome: (id: string) => 'success' | 'failure' = () => 'success',
): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = balancer.pick();
    const id = h.instance.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
    h.complete(outcome(id), latency(id));
  }
  return counts;
}

/** The built-in strategy names, captured before any test registers its own. */
export const BUILT_IN_STRATEGIES: readonly string[] = strategyNames();
