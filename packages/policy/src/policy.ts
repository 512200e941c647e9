/**
 * Policy options: the input users write (JSON/YAML), `resolvePolicy()` applying a preset's defaults,
 * validating every field (errors name the option path and the value) and freezing the result.
 */
import { checkObject } from './check.js';
import {
  assertFiniteNumber,
  assertInteger,
  assertNonNegativeNumber,
  assertOneOf,
  assertPositiveNumber,
  assertString,
  assertBoolean,
  InvalidArgumentError,
} from '@shoal/core';
import { KUBERNETES_BEHAVIOR, resolveBehavior } from './behavior.js';
import type { Behavior, BehaviorInput } from './behavior.js';
import { assertTimeZone, parseCron } from './cron.js';
import type { CronExpression } from './cron.js';
import { HPA_DEFAULTS, resolveTolerance } from './hpa-replicas.js';
import type { ToleranceInput, Tolerances } from './hpa-replicas.js';

/**
 * How a target turns a metric into replicas:
 * - `average`: per-instance average of `metrics[metric]` should be `value` (HPA Pods metric / AverageValue).
 * - `utilization`: `metrics[metric]` over the instance's request (`requests[metric]` or `request`) in
 *   integer percent should be `value` percent (HPA Resource Utilization).
 * - `total`: the service total (`observation.metrics[metric]` if present, else the sum over instances)
 *   divided by `value` per replica (HPA External AverageValue, e.g. queue depth per replica).
 */
export type TargetType = 'average' | 'utilization' | 'total';

export interface TargetInput {
  /** Metric name: `eventLoopUtilization`, `cpu`, `inFlight`, `rps`, or a custom business metric. */
  metric: string;
  /** Default `'average'`. */
  type?: TargetType;
  /** Target value per instance (average, total) or percent of request (utilization). */
  value: number;
  /** Utilization targets: request per instance used when an instance reports none in `requests`. */
  request?: number;
}

export interface Target {
  readonly metric: string;
  readonly type: TargetType;
  readonly value: number;
  readonly request?: number;
}

export interface SloInput {
  /** Latency metric reported per instance. Default `'latencyP95Ms'`. */
  metric?: string;
  /** The latency bound in ms; above it is pressure to scale up. Required. */
  thresholdMs: number;
  /** Above `holdFraction × thresholdMs` (but within the bound) the SLO blocks scale-down. Default 0.8. */
  holdFraction?: number;
  /** Largest multiplication of replicas the SLO asks for in one decision. Default 2. */
  maxStep?: number;
  /** `max` (worst instance) or `mean` over ready instances. Default `'mean'`. */
  aggregate?: 'max' | 'mean';
  /**
   * No SLO pressure while capacity is changing: while an instance is starting, or for this long after one
   * became ready (its queue is still draining). Default 15000.
   */
  settleMs?: number;
}

export interface Slo {
  readonly metric: string;
  readonly thresholdMs: number;
  readonly holdFraction: number;
  readonly maxStep: number;
  readonly aggregate: 'max' | 'mean';
  readonly settleMs: number;
}

export interface PanicInput {
  enabled?: boolean;
  /** Short window whose average demand triggers panic. Default 6000 (Knative: 10 % of 60 s). */
  windowMs?: number;
  /** Panic ends once demand stayed below the threshold this long. Default 60000 (Knative stable window). */
  stableWindowMs?: number;
  /** Panic when short-window desired replicas / ready replicas ≥ this. Default 2 (Knative: 200 %). */
  threshold?: number;
  /** While panicking, skip the scale-up rate policies (Knative's max-scale-up-rate is 1000). Default true. */
  bypassRateLimit?: boolean;
  /**
   * A fresh state (first decision, or state lost) starts in panic when more than one instance is ready, so a new
   * coordinator does not scale down on its first seconds of data (Knative does the same). Default true.
   */
  onStart?: boolean;
}

export interface Panic {
  readonly enabled: boolean;
  readonly windowMs: number;
  readonly stableWindowMs: number;
  readonly threshold: number;
  readonly bypassRateLimit: boolean;
  readonly onStart: boolean;
}

export interface ScheduleInput {
  /** Label in reasons. Default `schedule[<index>]`. */
  name?: string;
  /** Five-field cron expression for the start of the peak, e.g. `'0 18 * * 1-5'`. */
  cron: string;
  /** Minimum replicas while active. */
  minReplicas: number;
  /** How long each occurrence lasts. Default 3600000 (1 h); at least 60000. */
  durationMs?: number;
  /** Become active this long before each occurrence (to absorb cold start). Default 0. */
  leadMs?: number;
  /** Evaluate the cron at this fixed offset from UTC. Default 0. Not with `timeZone`. */
  utcOffsetMinutes?: number;
  /**
   * Evaluate the cron in this IANA time zone (`'Europe/Berlin'`), following its daylight-saving shifts.
   * Default none (UTC, or `utcOffsetMinutes`).
   */
  timeZone?: string;
}

export interface Schedule {
  readonly name: string;
  readonly cron: CronExpression;
  readonly minReplicas: number;
  readonly durationMs: number;
  readonly leadMs: number;
  readonly utcOffsetMinutes: number;
  /** IANA time zone (canonical spelling) when set; takes the place of `utcOffsetMinutes`. */
  readonly timeZone?: string;
}

export interface ForecastInput {
  enabled?: boolean;
  /** Fit a straight line to the demand of this recent window. Default 60000. */
  windowMs?: number;
  /** Scale for the demand predicted this far ahead (about one cold start). Default 30000. */
  horizonMs?: number;
  /** Never ask for more than this multiple of the current demand. Default 1.5. */
  maxFactor?: number;
}

export interface Forecast {
  readonly enabled: boolean;
  readonly windowMs: number;
  readonly horizonMs: number;
  readonly maxFactor: number;
}

export type VictimSelection = 'least-loaded' | 'youngest' | 'oldest' | { order: string[] };

export type PolicyPreset = 'shoal' | 'hpa';

export interface PolicyInput {
  /** Which defaults to start from. Default `'shoal'`. */
  preset?: PolicyPreset;
  /** Default 1. */
  minReplicas?: number;
  /** Default 10. */
  maxReplicas?: number;
  /** Default `[{ metric: 'eventLoopUtilization', type: 'average', value: 0.7 }]`. Several: the maximum wins. */
  targets?: TargetInput[];
  /** Latency SLO pressure. Default none. */
  slo?: SloInput;
  /** Dead band around the target ratio; one number or `{ up, down }`. Preset default. */
  tolerance?: ToleranceInput;
  /** HPA behavior (stabilization windows, rate policies). Preset default. */
  behavior?: BehaviorInput;
  /** Knative-style panic mode; `false` disables. Preset default. */
  panic?: PanicInput | boolean;
  /** Cron-like minimum replicas. Default none. */
  schedules?: ScheduleInput[];
  /** Short-horizon trend forecast; `true` enables with defaults. Default off (see docs/policy-guide.md). */
  forecast?: ForecastInput | boolean;
  /**
   * Average the demand over this window before sizing (Knative's stable window); 0 uses each target's
   * instantaneous Kubernetes proposal. Default 0 (on the traces, averaging delayed reactions more than it
   * saved).
   */
  stableWindowMs?: number;
  /**
   * When scaling up (outside panic), provision this fraction above the unrounded demand (ceil(demand × (1 +
   * headroom)), never below the proposal), so the next small rise needs no new scale event. Default 0.05
   * (Shoal) / 0 (HPA).
   */
  scaleUpHeadroom?: number;
  /** Which instances to drain on scale-down. Default `'least-loaded'`. */
  victimSelection?: VictimSelection;
  /** Metric that ranks load for `least-loaded`. Default: the first target's metric. */
  loadMetric?: string;
  /** CPU initialization period (targets on `cpu`). Default 300000. */
  cpuInitializationPeriodMs?: number;
  /** Initial readiness delay (targets on `cpu`). Default 30000. */
  initialReadinessDelayMs?: number;
  /** Metric window for the CPU readiness rule. Default 15000. */
  metricWindowMs?: number;
}

export interface Policy {
  readonly preset: PolicyPreset;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly targets: readonly Target[];
  readonly slo?: Slo;
  readonly tolerance: Tolerances;
  readonly behavior: Behavior;
  readonly panic: Panic;
  readonly schedules: readonly Schedule[];
  readonly forecast: Forecast;
  readonly stableWindowMs: number;
  readonly scaleUpHeadroom: number;
  readonly victimSelection: 'least-loaded' | 'youngest' | 'oldest' | { readonly order: readonly string[] };
  readonly loadMetric: string;
  readonly cpuInitializationPeriodMs: number;
  readonly initialReadinessDelayMs: number;
  readonly metricWindowMs: number;
  /** Marks a value produced by `resolvePolicy` (so `decide` does not resolve it again). */
  readonly resolved: true;
}

/**
 * Shoal's behavior, tuned on the traces in docs/benchmarks/scaling.md: Kubernetes' rate policies, a 400 s
 * scale-down window (Kubernetes: 300 s; the longer hold absorbs load that returns within minutes), plus a 10 s
 * scale-up window that filters one-report noise (panic mode skips it, so a real spike still scales at once).
 */
export const SHOAL_BEHAVIOR: Behavior = Object.freeze({
  scaleUp: Object.freeze({
    stabilizationWindowSeconds: 10,
    selectPolicy: 'Max' as const,
    policies: Object.freeze([
      Object.freeze({ type: 'Pods' as const, value: 4, periodSeconds: 15 }),
      Object.freeze({ type: 'Percent' as const, value: 100, periodSeconds: 15 }),
    ]),
  }),
  scaleDown: Object.freeze({
    stabilizationWindowSeconds: 400,
    selectPolicy: 'Max' as const,
    policies: Object.freeze([Object.freeze({ type: 'Percent' as const, value: 100, periodSeconds: 15 })]),
  }),
});

export const SHOAL_DEFAULTS = Object.freeze({
  minReplicas: 1,
  maxReplicas: 10,
  tolerance: Object.freeze({ up: 0.05, down: 0.2 }),
  panic: Object.freeze({
    enabled: true,
    windowMs: 6000,
    stableWindowMs: 60_000,
    threshold: 2,
    bypassRateLimit: true,
    onStart: true,
  }) as Panic,
  forecast: Object.freeze({ enabled: false, windowMs: 60_000, horizonMs: 30_000, maxFactor: 1.5 }) as Forecast,
  behavior: SHOAL_BEHAVIOR,
  stableWindowMs: 0,
  scaleUpHeadroom: 0.05,
});

export const HPA_POLICY_DEFAULTS = Object.freeze({
  minReplicas: 1,
  maxReplicas: 10,
  tolerance: Object.freeze({ up: HPA_DEFAULTS.tolerance, down: HPA_DEFAULTS.tolerance }),
  panic: Object.freeze({ ...SHOAL_DEFAULTS.panic, enabled: false }) as Panic,
  forecast: Object.freeze({ ...SHOAL_DEFAULTS.forecast, enabled: false }) as Forecast,
  behavior: KUBERNETES_BEHAVIOR,
  stableWindowMs: 0,
  scaleUpHeadroom: 0,
});

const DEFAULT_TARGETS: readonly Target[] = Object.freeze([
  Object.freeze({ metric: 'eventLoopUtilization', type: 'average' as const, value: 0.7 }),
]);

const KNOWN_KEYS = [
  'preset',
  'minReplicas',
  'maxReplicas',
  'targets',
  'slo',
  'tolerance',
  'behavior',
  'panic',
  'schedules',
  'forecast',
  'stableWindowMs',
  'scaleUpHeadroom',
  'victimSelection',
  'loadMetric',
  'cpuInitializationPeriodMs',
  'initialReadinessDelayMs',
  'metricWindowMs',
  'resolved',
];

function resolveTarget(t: TargetInput, k: number): Target {
  const at = `targets[${k}]`;
  checkObject(at, t);
  assertString(`${at}.metric`, t.metric, { maxLength: 128 });
  const type = t.type ?? 'average';
  assertOneOf(`${at}.type`, type, ['average', 'utilization', 'total'] as const);
  if (type === 'utilization') {
    assertInteger(`${at}.value`, t.value, 1);
    if (t.request !== undefined) assertPositiveNumber(`${at}.request`, t.request);
  } else {
    assertPositiveNumber(`${at}.value`, t.value);
  }
  const out: Target = {
    metric: t.metric,
    type,
    value: t.value,
    ...(t.request !== undefined ? { request: t.request } : {}),
  };
  return Object.freeze(out);
}

function resolvePanic(input: PanicInput | boolean | undefined, defaults: Panic): Panic {
  if (input === undefined) return defaults;
  if (typeof input === 'boolean') return Object.freeze({ ...defaults, enabled: input });
  checkObject('panic', input);
  const p = { ...defaults, ...stripUndefined(input) };
  assertBoolean('panic.enabled', p.enabled);
  assertPositiveNumber('panic.windowMs', p.windowMs);
  assertPositiveNumber('panic.stableWindowMs', p.stableWindowMs);
  assertPositiveNumber('panic.threshold', p.threshold);
  assertBoolean('panic.bypassRateLimit', p.bypassRateLimit);
  assertBoolean('panic.onStart', p.onStart);
  if (p.windowMs > p.stableWindowMs) {
    throw new InvalidArgumentError(
      `panic.windowMs must not exceed panic.stableWindowMs (${p.stableWindowMs}), got ${p.windowMs}`,
    );
  }
  return Object.freeze(p);
}

function resolveForecast(input: ForecastInput | boolean | undefined, defaults: Forecast): Forecast {
  if (input === undefined) return defaults;
  if (typeof input === 'boolean') return Object.freeze({ ...defaults, enabled: input });
  checkObject('forecast', input);
  const f = { ...defaults, ...stripUndefined(input) };
  assertBoolean('forecast.enabled', f.enabled);
  assertPositiveNumber('forecast.windowMs', f.windowMs);
  assertNonNegativeNumber('forecast.horizonMs', f.horizonMs);
  assertFiniteNumber('forecast.maxFactor', f.maxFactor);
  if (f.maxFactor < 1) throw new InvalidArgumentError(`forecast.maxFactor must be >= 1, got ${f.maxFactor}`);
  return Object.freeze(f);
}

function resolveSlo(input: SloInput | undefined): Slo | undefined {
  if (input === undefined) return undefined;
  checkObject('slo', input);
  const s: Slo = {
    metric: 'latencyP95Ms',
    holdFraction: 0.8,
    maxStep: 2,
    aggregate: 'mean' as const,
    settleMs: 15_000,
    ...stripUndefined(input),
    thresholdMs: input.thresholdMs,
  };
  assertString('slo.metric', s.metric, { maxLength: 128 });
  assertPositiveNumber('slo.thresholdMs', s.thresholdMs);
  assertFiniteNumber('slo.holdFraction', s.holdFraction);
  if (s.holdFraction < 0 || s.holdFraction > 1)
    throw new InvalidArgumentError(`slo.holdFraction must be between 0 and 1, got ${s.holdFraction}`);
  assertFiniteNumber('slo.maxStep', s.maxStep);
  if (s.maxStep <= 1) throw new InvalidArgumentError(`slo.maxStep must be > 1, got ${s.maxStep}`);
  assertOneOf('slo.aggregate', s.aggregate, ['max', 'mean'] as const);
  assertNonNegativeNumber('slo.settleMs', s.settleMs);
  return Object.freeze(s);
}

function resolveSchedule(s: ScheduleInput, k: number, maxReplicas: number): Schedule {
  const at = `schedules[${k}]`;
  checkObject(at, s);
  const name = s.name ?? at;
  assertString(`${at}.name`, name, { maxLength: 128 });
  const cron = parseCron(s.cron, `${at}.cron`);
  assertInteger(`${at}.minReplicas`, s.minReplicas, 0, maxReplicas);
  const durationMs = s.durationMs ?? 3_600_000;
  assertInteger(`${at}.durationMs`, durationMs, 60_000, 7 * 86_400_000);
  const leadMs = s.leadMs ?? 0;
  assertInteger(`${at}.leadMs`, leadMs, 0, 86_400_000);
  const utcOffsetMinutes = s.utcOffsetMinutes ?? 0;
  assertInteger(`${at}.utcOffsetMinutes`, utcOffsetMinutes, -14 * 60, 14 * 60);
  if (s.timeZone === undefined) {
    return Object.freeze({ name, cron, minReplicas: s.minReplicas, durationMs, leadMs, utcOffsetMinutes });
  }
  if (s.utcOffsetMinutes !== undefined) {
    throw new InvalidArgumentError(
      `${at} takes timeZone or utcOffsetMinutes, not both, got timeZone ${JSON.stringify(s.timeZone)} and utcOffsetMinutes ${s.utcOffsetMinutes}`,
    );
  }
  const timeZone = assertTimeZone(`${at}.timeZone`, s.timeZone);
  return Object.freeze({ name, cron, minReplicas: s.minReplicas, durationMs, leadMs, utcOffsetMinutes, timeZone });
}

function resolveVictimSelection(v: VictimSelection | undefined): Policy['victimSelection'] {
  if (v === undefined) return 'least-loaded';
  if (typeof v === 'string') {
    assertOneOf('victimSelection', v, ['least-loaded', 'youngest', 'oldest'] as const);
    return v;
  }
  checkObject('victimSelection', v);
  if (!Array.isArray(v.order) || v.order.some((id) => typeof id !== 'string')) {
    throw new InvalidArgumentError('victimSelection.order must be an array of instance ids');
  }
  return Object.freeze({ order: Object.freeze([...v.order]) });
}

function resolvePolicyTolerance(input: ToleranceInput | undefined, defaults: Tolerances): Tolerances {
  if (input === undefined) return defaults;
  if (typeof input === 'number') return Object.freeze(resolveTolerance('tolerance', input, 0));
  checkObject('tolerance', input);
  // Per-direction input: a missing side keeps the preset's default for that side.
  return Object.freeze(
    resolveTolerance('tolerance', { up: input.up ?? defaults.up, down: input.down ?? defaults.down }, 0),
  );
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Applies the preset's defaults, validates and freezes. Idempotent on a resolved policy. */
export function resolvePolicy(input: PolicyInput | Policy = {}): Policy {
  if (isResolvedPolicy(input)) return input;
  checkObject('policy', input);
  for (const key of Object.keys(input)) {
    if (!KNOWN_KEYS.includes(key))
      throw new InvalidArgumentError(`policy has an unknown option ${JSON.stringify(key)}`);
  }
  const preset = input.preset ?? 'shoal';
  assertOneOf('preset', preset, ['shoal', 'hpa'] as const);
  const d = preset === 'hpa' ? HPA_POLICY_DEFAULTS : SHOAL_DEFAULTS;
  const minReplicas = input.minReplicas ?? d.minReplicas;
  const maxReplicas = input.maxReplicas ?? Math.max(d.maxReplicas, minReplicas);
  assertInteger('minReplicas', minReplicas, 0, 100_000);
  assertInteger('maxReplicas', maxReplicas, 1, 100_000);
  if (minReplicas > maxReplicas)
    throw new InvalidArgumentError(`minReplicas must not exceed maxReplicas (${maxReplicas}), got ${minReplicas}`);
  let targets = DEFAULT_TARGETS;
  if (input.targets !== undefined) {
    if (!Array.isArray(input.targets)) throw new InvalidArgumentError('targets must be an array');
    if (input.targets.length === 0 && input.slo === undefined)
      throw new InvalidArgumentError('targets must hold at least one target (or set slo)');
    targets = Object.freeze(input.targets.map(resolveTarget));
  }
  const schedules = input.schedules ?? [];
  if (!Array.isArray(schedules)) throw new InvalidArgumentError('schedules must be an array');
  const loadMetric = input.loadMetric ?? targets[0]?.metric ?? input.slo?.metric ?? 'latencyP95Ms';
  assertString('loadMetric', loadMetric);
  const ms = (name: string, v: number | undefined, fallback: number): number => {
    const value = v ?? fallback;
    assertNonNegativeNumber(name, value);
    return value;
  };
  const slo = resolveSlo(input.slo);
  const policy: Policy = {
    preset,
    minReplicas,
    maxReplicas,
    targets,
    ...(slo ? { slo } : {}),
    tolerance: resolvePolicyTolerance(input.tolerance, d.tolerance),
    behavior: resolveBehavior(input.behavior, d.behavior),
    panic: resolvePanic(input.panic, d.panic),
    schedules: Object.freeze(schedules.map((s, k) => resolveSchedule(s, k, maxReplicas))),
    forecast: resolveForecast(input.forecast, d.forecast),
    stableWindowMs: ms('stableWindowMs', input.stableWindowMs, d.stableWindowMs),
    scaleUpHeadroom: ms('scaleUpHeadroom', input.scaleUpHeadroom, d.scaleUpHeadroom),
    victimSelection: resolveVictimSelection(input.victimSelection),
    loadMetric,
    cpuInitializationPeriodMs: ms(
      'cpuInitializationPeriodMs',
      input.cpuInitializationPeriodMs,
      HPA_DEFAULTS.cpuInitializationPeriodMs,
    ),
    initialReadinessDelayMs: ms(
      'initialReadinessDelayMs',
      input.initialReadinessDelayMs,
      HPA_DEFAULTS.initialReadinessDelayMs,
    ),
    metricWindowMs: ms('metricWindowMs', input.metricWindowMs, HPA_DEFAULTS.metricWindowMs),
    resolved: true,
  };
  return Object.freeze(policy);
}

export function isResolvedPolicy(value: unknown): value is Policy {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { resolved?: unknown }).resolved === true &&
    Object.isFrozen(value)
  );
}
