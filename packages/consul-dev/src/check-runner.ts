import type { Clock, TimerHandle } from '@shoal/core';

export type CheckStatus = 'passing' | 'warning' | 'critical';

export interface ProbeResult {
  status: CheckStatus;
  output: string;
}

/** One probe attempt; must settle soon after `signal` aborts. */
export type Probe = (signal: AbortSignal) => Promise<ProbeResult>;

export interface CheckRunnerOptions {
  clock: Clock;
  intervalMs: number;
  timeoutMs: number;
  /** Returns [0, 1); the first run waits a random stagger in [0, interval), as Consul's does. */
  random: () => number;
  probe: Probe;
  onResult: (result: ProbeResult) => void;
}

/**
 * Runs an HTTP/TCP/gRPC check on its interval, like Consul's `CheckHTTP`/`CheckTCP`/`CheckGRPC`: a random initial
 * stagger, then one probe per interval, each bounded by the check timeout. Timers are unref()'d.
 */
export class CheckRunner {
  private timer: TimerHandle | undefined;
  private inFlight: AbortController | undefined;
  private stopped = false;

  constructor(private readonly opts: CheckRunnerOptions) {}

  start(): void {
    this.schedule(Math.floor(this.opts.random() * this.opts.intervalMs));
  }

  stop(): void {
    this.stopped = true;
    this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight?.abort(new Error('check stopped'));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      void this.runOnce();
    }, ms);
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    const { clock, timeoutMs, probe } = this.opts;
    const controller = new AbortController();
    this.inFlight = controller;
    const timeout = clock.setTimeout(() => controller.abort(new Error('timeout')), timeoutMs);
    timeout.unref();
    let result: ProbeResult;
    try {
      result = await probe(controller.signal);
    } catch (err) {
      result = { status: 'critical', output: err instanceof Error ? err.message : String(err) };
    } finally {
      clock.clearTimeout(timeout);
      this.inFlight = undefined;
    }
    if (this.stopped) return;
    this.opts.onResult(result);
    this.schedule(this.opts.intervalMs);
  }
}
