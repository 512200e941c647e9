import { AliasTable } from './alias-table.js';
import type { Endpoint } from './endpoint.js';
import type { RandomSource } from './random.js';

/** Draws of the second candidate that may land on the first before falling back to a uniform other one. */
const DISTINCT_TRIES = 4;

/**
 * How power-of-choices strategies (`least_request`, `peak_ewma`) draw their candidates: uniformly while every
 * endpoint has a full share, and in proportion to `slowStartFactor` while one warms up (an alias table, O(1) per
 * draw, rebuilt on `update()`). With the first candidate winning ties, an endpoint's share under equal load is then
 * exactly its weighted share; under unequal load the cost comparison still decides.
 */
export class CandidateSampler {
  private weighted = false;
  private readonly table = new AliasTable();

  update(ready: readonly Endpoint[]): void {
    this.weighted = false;
    for (const ep of ready) {
      if (ep.slowStartFactor !== 1) {
        this.weighted = true;
        break;
      }
    }
    if (this.weighted) this.table.build(ready.map((ep) => ep.slowStartFactor));
  }

  /** The first candidate's index among `n` (> 0) endpoints. */
  first(n: number, random: RandomSource): number {
    return this.weighted ? this.table.draw(random()) : Math.floor(random() * n);
  }

  /** Another candidate's index, distinct from `i` (needs n >= 2). */
  other(i: number, n: number, random: RandomSource): number {
    if (this.weighted) {
      for (let t = 0; t < DISTINCT_TRIES; t++) {
        const j = this.table.draw(random());
        if (j !== i) return j;
      }
    }
    const j = Math.floor(random() * (n - 1));
    return j >= i ? j + 1 : j;
  }

  /** A further candidate (choiceCount > 2), which may repeat an earlier one. */
  any(n: number, random: RandomSource): number {
    return this.first(n, random);
  }
}
