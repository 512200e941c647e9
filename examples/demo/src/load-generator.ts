/**
 * An open-loop load generator: it starts calls at the scenario's rate whatever the latency (as real users do),
 * so a slow service shows up as latency and in-flight growth rather than as a politely reduced load.
 */
export type Call = () => Promise<void>;

export interface LoadGeneratorOptions {
  /** Offered rate, in calls per second, at `elapsedMs` since start. */
  rateAt: (elapsedMs: number) => number;
  call: Call;
  onSuccess: (latencyMs: number) => void;
  onFailure: (kind: string, message: string) => void;
  /** Calls outstanding at most; beyond it a call is counted as failed (`CLIENT_OVERLOAD`) instead of started. */
  maxOutstanding?: number;
  tickMs?: number;
}

export function failureKind(err: unknown): string {
  const e = err as { code?: unknown; details?: unknown } | undefined;
  if (e && typeof e.code === 'number') return `grpc-status-${e.code}`;
  if (e && typeof e.code === 'string') return e.code;
  return 'error';
}

export class LoadGenerator {
  private readonly options: Required<LoadGeneratorOptions>;
  private timer: ReturnType<typeof setInterval> | undefined;
  private startedAt = 0;
  private lastTick = 0;
  private credit = 0;
  private outstanding = 0;
  private readonly idle: Array<() => void> = [];

  constructor(options: LoadGeneratorOptions) {
    this.options = { maxOutstanding: 5000, tickMs: 10, ...options };
  }

  get inFlight(): number {
    return this.outstanding;
  }

  start(startedAt = performance.now()): void {
    if (this.timer) return;
    this.startedAt = startedAt;
    this.lastTick = performance.now();
    this.timer = setInterval(() => this.tick(), this.options.tickMs);
  }

  /** Stops starting calls; resolves once every outstanding call has finished. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.outstanding === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private tick(): void {
    const now = performance.now();
    // The rate over the interval that just ended, taken at its start.
    const rate = Math.max(0, this.options.rateAt(this.lastTick - this.startedAt));
    this.credit += (rate * (now - this.lastTick)) / 1000;
    this.lastTick = now;
    // Never burst more than one second's worth after a stall (e.g. a GC pause or a busy machine).
    this.credit = Math.min(this.credit, Math.max(1, rate));
    while (this.credit >= 1) {
      this.credit -= 1;
      this.fire();
    }
  }

  private fire(): void {
    if (this.outstanding >= this.options.maxOutstanding) {
      this.options.onFailure('CLIENT_OVERLOAD', `more than ${this.options.maxOutstanding} calls outstanding`);
      return;
    }
    this.outstanding++;
    const started = performance.now();
    this.options.call().then(
      () => this.done(() => this.options.onSuccess(performance.now() - started)),
      (err: unknown) =>
        this.done(() => this.options.onFailure(failureKind(err), (err as Error)?.message ?? String(err))),
    );
  }

  private done(report: () => void): void {
    this.outstanding--;
    report();
    if (this.outstanding === 0 && !this.timer) for (const resolve of this.idle.splice(0)) resolve();
  }
}
