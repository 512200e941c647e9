import { InvalidArgumentError, describeValue, type Logger, errorFields } from '@shoal/core';
import { CUSTOM_METRIC_NAME_PATTERN, LIMITS } from '@shoal/protocol';

/** An application counter: `agent.counter('orders_total').inc()`. */
export interface AppCounter {
  readonly name: string;
  /** Adds `n` (default 1; must be finite and >= 0). */
  inc(n?: number): void;
  /** Total since the agent started. */
  value(): number;
}

class Counter implements AppCounter {
  total = 0;
  reported = 0;
  constructor(readonly name: string) {}
  inc(n = 1): void {
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
      throw new InvalidArgumentError(
        `counter ${this.name}: inc(n) needs a finite number >= 0, got ${describeValue(n)}`,
      );
    }
    this.total += n;
  }
  value(): number {
    return this.total;
  }
}

/** Options of `agent.gauge(name, fn, options)`. */
export interface GaugeOptions {
  /**
   * `'instance'` (default): this replica's own value (its queue, its sessions); a `total` target sums it over
   * instances. `'service'`: a value every replica reads from the same place (a broker's queue depth, a shared
   * backlog); reported in `serviceMetrics` and taken once per service by the coordinator, never summed.
   */
  scope?: GaugeScope;
}

export type GaugeScope = 'instance' | 'service';

/**
 * Business metrics the application defines and the coordinator's policy may scale on. Gauges are read at each
 * report (`fn()` is called then); counters are reported as their increase over the interval. Names follow the
 * protocol's custom-metric rules; at most LIMITS.maxCustomMetrics in all.
 */
export class AppMetrics {
  private readonly gauges = new Map<string, () => number>();
  /** Names of the gauges declared `scope: 'service'`. */
  private readonly serviceGauges = new Set<string>();
  private readonly counters = new Map<string, Counter>();

  constructor(private readonly logger: Logger) {}

  private checkName(kind: string, name: unknown): asserts name is string {
    if (
      typeof name !== 'string' ||
      name.length === 0 ||
      name.length > LIMITS.maxCustomMetricNameLength ||
      !CUSTOM_METRIC_NAME_PATTERN.test(name)
    ) {
      throw new InvalidArgumentError(
        `${kind} name must match ${String(CUSTOM_METRIC_NAME_PATTERN)} with at most ${LIMITS.maxCustomMetricNameLength} characters, got ${describeValue(name)}`,
      );
    }
    if (this.gauges.has(name) || this.counters.has(name)) {
      throw new InvalidArgumentError(`${kind} name ${JSON.stringify(name)} is already defined`);
    }
    if (this.gauges.size + this.counters.size >= LIMITS.maxCustomMetrics) {
      throw new InvalidArgumentError(
        `${kind} ${JSON.stringify(name)} would exceed the limit of ${LIMITS.maxCustomMetrics} custom metrics`,
      );
    }
  }

  gauge(name: string, fn: () => number, options?: GaugeOptions): void {
    this.checkName('gauge', name);
    if (typeof fn !== 'function')
      throw new InvalidArgumentError(`gauge ${name}: fn must be a function, got ${describeValue(fn)}`);
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new InvalidArgumentError(`gauge ${name}: options must be an object, got ${describeValue(options)}`);
    }
    const scope = options?.scope ?? 'instance';
    if (scope !== 'instance' && scope !== 'service') {
      throw new InvalidArgumentError(
        `gauge ${name}: options.scope must be 'instance' or 'service', got ${describeValue(scope)}`,
      );
    }
    this.gauges.set(name, fn);
    if (scope === 'service') this.serviceGauges.add(name);
  }

  counter(name: string): AppCounter {
    this.checkName('counter', name);
    const counter = new Counter(name);
    this.counters.set(name, counter);
    return counter;
  }

  /** Current gauge values (a gauge that throws or returns a non-finite or negative number is left out and logged). */
  readGauges(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [name, fn] of this.gauges) {
      let value: unknown;
      try {
        value = fn();
      } catch (error) {
        this.logger.warn({ metric: name, ...errorFields(error) }, 'app gauge threw; left out of this report');
        continue;
      }
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        this.logger.warn(
          { metric: name, value: describeValue(value) },
          'app gauge returned a value that is not a finite number >= 0',
        );
        continue;
      }
      out.set(name, value);
    }
    return out;
  }

  /** Counter totals (for /metrics). */
  counterTotals(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [name, c] of this.counters) out.set(name, c.total);
    return out;
  }

  /** The custom map of one report: gauge values plus each counter's increase since the previous call. */
  takeCustom(): Record<string, number> {
    return this.takeReportMetrics().custom;
  }

  /**
   * The metric maps of one report: `custom` (instance gauges, counter increases since the previous call) and
   * `serviceMetrics` (gauges declared `scope: 'service'`).
   */
  takeReportMetrics(): { custom: Record<string, number>; serviceMetrics: Record<string, number> } {
    const custom: Record<string, number> = {};
    const serviceMetrics: Record<string, number> = {};
    for (const [name, value] of this.readGauges()) {
      if (this.serviceGauges.has(name)) serviceMetrics[name] = value;
      else custom[name] = value;
    }
    for (const [name, c] of this.counters) {
      custom[name] = c.total - c.reported;
      c.reported = c.total;
    }
    return { custom, serviceMetrics };
  }
}
