/**
 * The simulated replicas: created, ready after their own cold start (a lognormal draw around the model's mean, at
 * most `maxParallelStarts` starting at once), removed by a decision's victims, then billed while they drain.
 */
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

/** How replicas start and stop (from the model). */
export interface FleetTiming {
  /** Mean cold start, s. */
  coldStartS: number;
  /** Coefficient of variation of the cold start (0: constant). */
  coldStartCv: number;
  /** Replicas starting at once (0: no limit). */
  maxParallelStarts: number;
  /** Seconds a removed replica still runs (and costs) while it drains. */
  drainS: number;
}

export class SimFleet {
  instances: SimInstance[] = [];
  private seq = 0;
  /** Seconds at which removed replicas finish draining (unordered). */
  private draining: number[] = [];
  /** With a start limit: when each start slot frees. */
  private readonly slots: number[];

  constructor(
    private readonly rng: SeededRandom,
    private readonly timing: FleetTiming,
  ) {
    this.slots = new Array<number>(timing.maxParallelStarts).fill(-Infinity);
  }

  get size(): number {
    return this.instances.length;
  }

  /** Replicas billed at second `t`: the fleet and the ones still draining. */
  billedAt(t: number): number {
    if (this.draining.length > 0) this.draining = this.draining.filter((until) => until > t);
    return this.instances.length + this.draining.length;
  }

  /** One replica's cold start, whole seconds: lognormal with the model's mean and cv. */
  private coldStart(): number {
    const { coldStartS: mean, coldStartCv: cv } = this.timing;
    if (cv === 0 || mean === 0) return Math.round(mean);
    const sigma2 = Math.log(1 + cv * cv);
    const mu = Math.log(mean) - sigma2 / 2;
    return Math.max(0, Math.round(Math.exp(mu + Math.sqrt(sigma2) * this.rng.normal())));
  }

  /** Adds a replica at second `t`: long since ready (`ready`), or ready after its cold start. */
  add(t: number, ready: boolean): SimInstance {
    let readyAt = t - 3600;
    if (!ready) {
      let start = t;
      let slot = -1;
      if (this.slots.length > 0) {
        slot = this.slots.indexOf(Math.min(...this.slots));
        start = Math.max(t, this.slots[slot] as number);
      }
      readyAt = start + this.coldStart();
      if (slot >= 0) this.slots[slot] = readyAt;
    }
    const i: SimInstance = {
      id: `r${++this.seq}`,
      createdAt: ready ? t - 3600 : t,
      readyAt,
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
   * the newest. A removed replica that was serving drains (billed) for the drain time; one still starting stops at
   * once. Returns the ids removed.
   */
  apply(t: number, decision: Pick<Decision, 'desiredReplicas' | 'victims'>): string[] {
    const from = this.instances.length;
    const desired = decision.desiredReplicas;
    const removed: SimInstance[] = [];
    if (desired > from) {
      for (let k = from; k < desired; k++) this.add(t, false);
    } else if (desired < from) {
      const remove = new Set(decision.victims ?? []);
      this.instances = this.instances.filter((i) => {
        if (!remove.has(i.id)) return true;
        removed.push(i);
        return false;
      });
      while (this.instances.length > desired) removed.push(this.instances.pop() as SimInstance);
    }
    if (this.timing.drainS > 0) {
      for (const i of removed) if (i.readyAt <= t) this.draining.push(t + this.timing.drainS);
    }
    return removed.map((i) => i.id);
  }
}
