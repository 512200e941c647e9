/**
 * The example service's "work": each call holds one of `slots` workers for a service time around `serviceTimeMs`
 * (waiting in a queue when all are busy). It uses timers, not CPU, so five replicas and the load generator fit on
 * a small laptop, while in-flight calls and latency still behave like a real service's: add load beyond
 * `slots / serviceTime` and the queue (and latency) grows until more replicas arrive.
 */
export interface WorkSimulatorOptions {
  slots: number;
  serviceTimeMs: number;
  /** ± fraction of `serviceTimeMs` (uniform). */
  jitter?: number;
  random?: () => number;
}

export class WorkSimulator {
  private busy = 0;
  private readonly queue: Array<() => void> = [];
  private readonly slots: number;
  private readonly serviceTimeMs: number;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(options: WorkSimulatorOptions) {
    if (!Number.isInteger(options.slots) || options.slots < 1) {
      throw new RangeError(`slots must be a positive integer, got ${String(options.slots)}`);
    }
    if (!Number.isFinite(options.serviceTimeMs) || options.serviceTimeMs < 0) {
      throw new RangeError(`serviceTimeMs must be a number >= 0, got ${String(options.serviceTimeMs)}`);
    }
    this.slots = options.slots;
    this.serviceTimeMs = options.serviceTimeMs;
    this.jitter = options.jitter ?? 0.2;
    this.random = options.random ?? Math.random;
  }

  /** Calls in service or waiting. */
  get load(): number {
    return this.busy + this.queue.length;
  }

  async run(): Promise<void> {
    if (this.busy >= this.slots) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.busy++;
    try {
      const ms = this.serviceTimeMs * (1 + this.jitter * (2 * this.random() - 1));
      await new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.busy--;
    }
  }
}
