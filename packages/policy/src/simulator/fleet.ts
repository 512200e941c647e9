/** The simulated replicas: created, ready after the cold start, removed by a decision's victims. */
import type { Decision } from '../decision.js';
import type { SeededRandom } from '@shoal/core';

export interface SimInstance {
  id: string;
  /** Second the replica was created. */
  createdAt: number;
  /** Second the replica starts serving. */
  readyAt: number;
  /** Fixed per-instance bias on reported metrics, so least-loaded victims differ. */
  noise: number;
}

export class SimFleet {
  instances: SimInstance[] = [];
  private seq = 0;

  constructor(
    private readonly rng: SeededRandom,
    private readonly coldStartS: number,
  ) {}

  get size(): number {
    return this.instances.length;
  }

  /** Adds a replica at second `t`: long since ready (`ready`), or ready after the cold start. */
  add(t: number, ready: boolean): SimInstance {
    const i: SimInstance = {
      id: `r${++this.seq}`,
      createdAt: ready ? t - 3600 : t,
      readyAt: ready ? t - 3600 : t + this.coldStartS,
      noise: this.rng.normal(),
    };
    this.instances.push(i);
    return i;
  }

  /** Replicas serving at second `t`. */
  readyAt(t: number): number {
    let ready = 0;
    for (const i of this.instances) if (i.readyAt <= t) ready++;
    return ready;
  }

  /**
   * Scales to the decision's count at second `t`: new replicas cold-start; victims go first on a scale-down, then
   * the newest. Returns the ids removed.
   */
  apply(t: number, decision: Pick<Decision, 'desiredReplicas' | 'victims'>): string[] {
    const from = this.instances.length;
    const desired = decision.desiredReplicas;
    const removed: string[] = [];
    if (desired > from) {
      for (let k = from; k < desired; k++) this.add(t, false);
    } else if (desired < from) {
      const remove = new Set(decision.victims ?? []);
      this.instances = this.instances.filter((i) => {
        if (!remove.has(i.id)) return true;
        removed.push(i.id);
        return false;
      });
      while (this.instances.length > desired) removed.push((this.instances.pop() as SimInstance).id);
    }
    return removed;
  }
}
