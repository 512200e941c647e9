import { Balancer, createRandom } from '@shoal/balancer';
import { makeInstances } from '../helpers.js';

/** Owner of each key under a fresh balancer of `strategy` over `n` instances (optionally without one). */
export function owners(
  strategy: string,
  n: number,
  keys: string[],
  without?: string,
  options: Record<string, unknown> = {},
) {
  const b = new Balancer({ strategy, random: createRandom(1), strategyOptions: options });
  b.setEndpoints(makeInstances(n).filter((i) => i.id !== without));
  const out = keys.map((key) => b.pick({ key }).instance.id);
  void b.close();
  return out;
}
