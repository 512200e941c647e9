// Scaling benchmark: Shoal's default policy vs an HPA-default configuration of the same engine, on the real
// traces in ../shared/traces plus synthetic step, ramp and noisy-flat traces, and a held-out synthetic trace
// (diurnal load with flash crowds) that was not used to choose any default, through the same queueing model in
// the same run. Every trace runs with several model seeds (service times, metric noise): figures are medians over
// seeds with their range, because a single seed's verdict can flip (the step's cost ratio spans 1.09-1.29 over
// seeds). Also times one decide() for a service with 1,000 instances.
//
//   npm run bench:scaling              (all traces, full length, 5 seeds; SVGs of seed 42 in docs/benchmarks/scaling/)
//   npm run bench:scaling -- --quick   (NASA cut to 7 days, 2 seeds, fewer decide() timings)
//   npm run bench:scaling -- --seeds 7 (more seeds)
//   npm run bench:scaling -- --traces DIR       (the real traces' folder; default ../shared/traces beside the
//                                                repository, or $SHOAL_TRACES)
//   npm run bench:scaling -- --allow-missing    (a missing real trace prints a SKIPPED row instead of failing)
//   npm run bench:scaling -- --only azure,step  (only traces whose name contains one of these words)
//   npm run bench:scaling -- --no-reference     (skip the attribution and legacy-HPA runs: half the time)
//   npm run bench:scaling -- --jobs 4           (4 (trace, seed) runs at once, each in its own process; same figures)
//
// The last line of output is one JSON object with every figure.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { HELD_OUT_FILE } from './support/held-out-trace.js';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  decide,
  metricsServerModel,
  parseTraceCsv,
  renderSimulationSvg,
  resolvePolicy,
  simulate,
  syntheticTrace,
} from '@shoal/policy';
import { figureRatio, rateAt, traceDurationS } from '@shoal/policy/internal';
import type {
  Observation,
  PolicyInput,
  SimulationModelInput,
  SimulationResult,
  Trace,
  TraceOptions,
} from '@shoal/policy';

const quick = process.argv.includes('--quick');
const noSvg = process.argv.includes('--no-svg');
const seedsArg = process.argv.indexOf('--seeds');
const SEED_COUNT = seedsArg >= 0 ? Number(process.argv[seedsArg + 1]) : quick ? 2 : 5;
if (!Number.isInteger(SEED_COUNT) || SEED_COUNT < 1 || SEED_COUNT > 20) {
  throw new Error(`--seeds must be an integer 1-20, got ${String(process.argv[seedsArg + 1])}`);
}
/** Seed 42 first (its run draws the charts), then 1, 2, 3, ... */
const SEEDS = [42, ...Array.from({ length: SEED_COUNT - 1 }, (_, k) => k + 1)];
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tracesArg = process.argv.indexOf('--traces');
if (tracesArg >= 0 && !process.argv[tracesArg + 1]) throw new Error('--traces needs a folder');
const tracesDir =
  tracesArg >= 0
    ? (process.argv[tracesArg + 1] as string)
    : (process.env.SHOAL_TRACES ?? join(root, '..', 'shared', 'traces'));
const allowMissing = process.argv.includes('--allow-missing');
const noReference = process.argv.includes('--no-reference');
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg >= 0 ? (process.argv[onlyArg + 1] ?? '').split(',').filter((w) => w !== '') : undefined;
if (only?.length === 0) throw new Error('--only needs a comma-separated list of trace names (or parts of them)');
const selected = (name: string): boolean => only === undefined || only.some((w) => name.includes(w));
/** Real traces not found (each a SKIPPED row; the run fails unless --allow-missing). */
export const skipped: Array<{ trace: string; file: string }> = [];
const svgDir = join(root, 'docs', 'benchmarks', 'scaling');

// The stated model: one replica serves 4 requests at once at 50 ms mean (exponential) = 80 req/s; a new replica
// serves 30 s (mean; lognormal, cv 0.3) after the decision; a removed one drains (and costs) 5 s; p95 ≤ 250 ms is
// the SLO; agents report every second.
const CAPACITY = 80;
export const MODEL: SimulationModelInput = {
  concurrency: 4,
  serviceTimeMs: 50,
  serviceTimeDistribution: 'exponential',
  coldStartMs: 30_000,
  coldStartCv: 0.3,
  drainMs: 5_000,
  timeoutMs: 2_000,
  sloP95Ms: 250,
  reportIntervalMs: 1_000,
  cpuPerReplica: 1,
  seed: 42,
};
const MAX_REPLICAS = 200;

/** HPA defaults: CPU utilization 70 %, 15 s sync, tolerance 0.1, 300 s down-stabilization, default policies. */
export const HPA_POLICY: PolicyInput = {
  preset: 'hpa',
  minReplicas: 1,
  maxReplicas: MAX_REPLICAS,
  targets: [{ metric: 'cpu', type: 'utilization', value: 70 }],
};
export const HPA_SYNC_MS = 15_000;

/** Shoal's default policy with the service's stated figures: capacity per replica and the SLO. */
export const SHOAL_POLICY: PolicyInput = {
  minReplicas: 1,
  maxReplicas: MAX_REPLICAS,
  targets: [
    { metric: 'eventLoopUtilization', value: 0.7 },
    { metric: 'rps', value: CAPACITY * 0.7 },
  ],
  slo: { thresholdMs: 250 },
};
export const SHOAL_SYNC_MS = 5_000; // @shoal/coordinator's default syncPeriodMs

/** For attribution only: the HPA engine and sync period with Shoal's targets (request rate instead of CPU). */
export const HPA_RPS_POLICY: PolicyInput = { ...HPA_POLICY, targets: SHOAL_POLICY.targets };

/** For reference only: an HPA created without `spec.behavior` takes Kubernetes' legacy path. */
export const HPA_LEGACY_POLICY: PolicyInput = { ...HPA_POLICY, behavior: { legacy: true } };

export function loadTraces(): Trace[] {
  const traces: Trace[] = [];
  /** A real trace from the traces folder; a missing file is reported loudly, never skipped in silence. */
  const real = (name: string, file: string, options: Omit<TraceOptions, 'name'>): void => {
    const path = join(tracesDir, file);
    if (!selected(name)) return;
    if (!existsSync(path)) {
      skipped.push({ trace: name, file: path });
      console.error(`SKIPPED ${name}: ${path} not found (--traces DIR points at the real traces)`);
      return;
    }
    traces.push(parseTraceCsv(readFileSync(path, 'utf8'), { name, ...options }));
  };
  real('wc98', 'wc98_per_minute_1998-07-06_to_1998-07-09.csv', { peakRps: 40 * CAPACITY * 0.7 });
  real(quick ? 'nasa (7 days)' : 'nasa', 'nasa_jul95_per_minute.csv', {
    peakRps: 30 * CAPACITY * 0.7,
    ...(quick ? { durationS: 7 * 86_400 } : {}),
  });
  real('azure-llm', 'AzureLLMInferenceTrace_conv_per_second.csv', { peakRps: 20 * CAPACITY * 0.7 });
  if (skipped.length > 0 && !allowMissing) {
    throw new Error(
      `${skipped.length} real trace(s) missing from ${tracesDir}: ${skipped.map((s) => s.trace).join(', ')}; ` +
        'pass --traces DIR, or --allow-missing to run without them (SKIPPED rows)',
    );
  }
  const base = 4 * CAPACITY * 0.7;
  /** A synthetic trace, built only when selected (building the long ones takes a while). */
  const add = (name: string, build: () => Trace): void => {
    if (selected(name)) traces.push(build());
  };
  add('step 10x in 10 s', () =>
    syntheticTrace('step 10x in 10 s', 3_600, 1, (t) =>
      t < 900 ? base : t < 910 ? base * (1 + (9 * (t - 900)) / 10) : base * 10,
    ),
  );
  add('ramp', () =>
    syntheticTrace('ramp', 7_200, 1, (t) =>
      t < 600
        ? base / 2
        : t < 3_000
          ? base / 2 + ((t - 600) / 2_400) * base * 9.5
          : t < 4_200
            ? base * 10
            : Math.max(base / 2, base * 10 - ((t - 4_200) / 2_400) * base * 9.5),
    ),
  );
  // Noisy flat: 10 replicas' worth of load with ±25 % noise every 10 s (a fixed pseudo-random sequence).
  let s = 7;
  const noise: number[] = [];
  for (let k = 0; k < 1_000; k++) {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    noise.push(s / 2_147_483_648 - 0.5);
  }
  add('noisy-flat', () =>
    syntheticTrace(
      'noisy-flat',
      7_200,
      10,
      (t) => 10 * CAPACITY * 0.6 * (1 + 0.5 * (noise[Math.floor(t / 10) % 1_000] as number)),
    ),
  );
  add('diurnal+crowds', crowdsTrace);
  add('office+campaigns', officeTrace);
  // Held out (session 4): committed as CSV with the seeded script that writes it, read like a real trace.
  add('held-out: retail+ads', () =>
    parseTraceCsv(readFileSync(join(root, 'bench', 'traces', HELD_OUT_FILE), 'utf8'), { name: 'held-out: retail+ads' }),
  );
  return traces.filter((t) => selected(t.name));
}

/**
 * Two days of diurnal load (3-25 replicas' worth at the 70 % target) with ±15 % per-minute noise and 16 flash
 * crowds (2-4× for 2-10 min, reached within 30 s) at random times. Held out in session 2 (generated before the
 * last change of defaults); looked at while choosing `panic.onStart` and later, so no longer held out.
 */
function crowdsTrace(): Trace {
  let x = 20_261_125;
  const rnd = (): number => {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    return x / 2_147_483_648;
  };
  const duration = 2 * 86_400;
  const crowds: Array<{ at: number; len: number; mult: number }> = [];
  for (let k = 0; k < 16; k++) {
    crowds.push({ at: Math.floor(rnd() * duration), len: 120 + Math.floor(rnd() * 480), mult: 2 + 2 * rnd() });
  }
  const noise: number[] = [];
  for (let m = 0; m <= duration / 60; m++) noise.push(1 + 0.3 * (rnd() - 0.5));
  return syntheticTrace('diurnal+crowds', duration, 1, (t) => {
    let mult = 1;
    for (const c of crowds) {
      if (t >= c.at && t < c.at + c.len) mult = Math.max(mult, 1 + (c.mult - 1) * Math.min(1, (t - c.at) / 30));
    }
    const diurnal = 14 - 11 * Math.cos((2 * Math.PI * t) / 86_400);
    return CAPACITY * 0.7 * diurnal * (noise[Math.floor(t / 60)] as number) * mult;
  });
}

/**
 * Office hours. Held out in session 3: generated from a fixed seed before any default was changed then, and run
 * only to check the defaults chosen on the other traces; its results have been seen since, so no longer held out. Three days of office-hours load (weekday shape:
 * 2 replicas' worth at night, a morning ramp to 18-22, a lunch dip, an evening decline; the third day is a
 * weekend at 40 %), ±10 % noise every 10 s, 7 campaign surges (rise to 1.5-3× over 1-5 min, then an exponential
 * decay over 5-20 min) and one regional failover (the load ×1.6 within 20 s for an hour).
 */
function officeTrace(): Trace {
  let x = 77_720_261;
  const rnd = (): number => {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    return x / 2_147_483_648;
  };
  const day = 86_400;
  const duration = 3 * day;
  const peaks = [0, 1, 2].map(() => 18 + 4 * rnd());
  const campaigns = Array.from({ length: 7 }, () => ({
    at: Math.floor(rnd() * duration),
    rise: 60 + Math.floor(rnd() * 240),
    decay: 300 + Math.floor(rnd() * 900),
    mult: 1.5 + 1.5 * rnd(),
  }));
  const failover = { at: Math.floor(day / 3 + rnd() * day), len: 3_600 };
  const noise: number[] = [];
  for (let k = 0; k <= duration / 10; k++) noise.push(1 + 0.2 * (rnd() - 0.5));
  /** Replicas' worth of load at `h` hours into a day with `peak` at its busiest. */
  const office = (h: number, peak: number): number => {
    const night = 2;
    if (h < 7.5 || h >= 21) return night;
    if (h < 9) return night + (peak - night) * ((h - 7.5) / 1.5);
    if (h >= 12 && h < 13) return peak * 0.75;
    if (h < 17) return peak;
    return peak - (peak - night) * ((h - 17) / 4);
  };
  return syntheticTrace('office+campaigns', duration, 1, (t) => {
    const d = Math.floor(t / day);
    const weekend = d === 2 ? 0.4 : 1;
    let base = office((t % day) / 3_600, peaks[d] as number) * weekend;
    if (t >= failover.at && t < failover.at + failover.len) base *= 1 + 0.6 * Math.min(1, (t - failover.at) / 20);
    let mult = 1;
    for (const c of campaigns) {
      if (t < c.at) continue;
      const since = t - c.at;
      const m =
        since < c.rise ? 1 + ((c.mult - 1) * since) / c.rise : 1 + (c.mult - 1) * Math.exp(-(since - c.rise) / c.decay);
      mult = Math.max(mult, m);
    }
    return CAPACITY * 0.7 * Math.max(0.5, base) * mult * (noise[Math.floor(t / 10)] as number);
  });
}

/**
 * Replica-seconds of an oracle that knows the load in advance and has no cold start: every second it runs exactly
 * the replicas the 70 % target asks for, ceil(rate / (0.7 × capacity)), at least minReplicas (1). No policy at
 * this target can cost less without running hotter than the target; it bounds what the cost criterion can ask.
 */
function oracleReplicaSeconds(trace: Trace): number {
  let sum = 0;
  const duration = traceDurationS(trace);
  for (let t = 0; t < duration; t++) sum += Math.max(1, Math.ceil(rateAt(trace, t) / (CAPACITY * 0.7) - 1e-9));
  return sum;
}

type Summary = SimulationResult['summary'];

/** One seed's run of the three configurations on one trace. */
interface SeedRun {
  seed: number;
  shoal: Summary;
  hpa: Summary;
  /** Not with --no-reference. */
  hpaRps?: Summary;
  /** First seed only. */
  hpaLegacy?: Summary;
  replicaSecondsRatio: number;
  sloRatio: number;
  eventsDiff: number;
  meetsTarget: boolean;
}

interface Row {
  trace: string;
  oracleReplicaSeconds: number;
  runs: SeedRun[];
  /** Medians over seeds. */
  replicaSecondsRatio: number;
  sloRatio: number;
  eventsDiff: number;
  seedsMet: number;
  meetsTarget: boolean;
  why: string;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Shoal / HPA with the CLI's semantics (figureRatio): both 0 is 1, over a 0 is ∞. */
function sloRatioOf(shoal: Summary, hpa: Summary): number {
  return figureRatio(shoal.sloViolationSeconds, hpa.sloViolationSeconds).value;
}

/**
 * The issue's target from three figures: replica-seconds ratio, SLO-violation ratio (Shoal / HPA) and scale
 * events (Shoal - HPA).
 */
export function verdict(
  rs: number,
  slo: number,
  eventsDiff: number,
  sloBothZero = false,
): { ok: boolean; why: string } {
  const fewerEvents = eventsDiff <= 0;
  // "SLO-violation seconds ≤ 0.5× the HPA's, or both 0": both 0 is a ratio of 1 (figureRatio), so it is named.
  const sloHalf = slo <= 0.5 || sloBothZero;
  const a = sloHalf && rs <= 1.1;
  const b = rs <= 0.8 && slo <= 1;
  const parts: string[] = [];
  if (!(a || b)) {
    if (!sloHalf && !(rs <= 0.8)) parts.push('SLO-violation not ≤ half of HPA and replica-seconds not ≥ 20 % lower');
    else if (sloHalf) parts.push(`replica-seconds +${((rs - 1) * 100).toFixed(1)} % (> +10 %)`);
    else parts.push('SLO-violation above HPA');
  }
  if (!fewerEvents) parts.push(`more scale events (+${eventsDiff})`);
  return {
    ok: (a || b) && fewerEvents,
    why: parts.join('; ') || (a ? 'SLO ≤ ½ at ≤ +10 % cost' : '≥ 20 % cheaper at equal or better SLO'),
  };
}

function timeDecide(): { meanUs: number; p50Us: number; p99Us: number; runs: number } {
  const policy = resolvePolicy({ ...SHOAL_POLICY, maxReplicas: 2_000 });
  const now = Date.UTC(2026, 0, 5, 12);
  const instances = Array.from({ length: 1_000 }, (_, k) => ({
    id: `instance-${k}`,
    ready: true,
    startedAt: now - 3_600_000 + k,
    readySince: now - 3_500_000,
    sampledAt: now - 500,
    requests: { cpu: 1 },
    metrics: {
      eventLoopUtilization: 0.5 + ((k * 7) % 40) / 100,
      cpu: 0.6,
      inFlight: 3,
      rps: 40 + (k % 30),
      latencyP95Ms: 120,
      latencyP99Ms: 200,
    },
  }));
  let state = decide(policy, { now, currentReplicas: 1_000, instances }, undefined).state;
  let t = now;
  const once = (): number => {
    t += 5_000;
    const obs: Observation = { now: t, currentReplicas: 1_000, instances };
    const t0 = process.hrtime.bigint();
    const d = decide(policy, obs, state);
    const us = Number(process.hrtime.bigint() - t0) / 1_000;
    state = d.state;
    return us;
  };
  for (let k = 0; k < 200; k++) once(); // warm-up: JIT and a full 300 s recommendation window
  const runs = quick ? 500 : 3_000;
  const times: number[] = [];
  for (let k = 0; k < runs; k++) times.push(once());
  times.sort((a, b) => a - b);
  return {
    meanUs: times.reduce((s, x) => s + x, 0) / runs,
    p50Us: times[Math.floor(runs * 0.5)] as number,
    p99Us: times[Math.floor(runs * 0.99)] as number,
    runs,
  };
}

/** The summaries of one seed's runs on one trace (what a --jobs worker sends back). */
interface SeedSummaries {
  seed: number;
  shoal: Summary;
  hpa: Summary;
  hpaRps?: Summary;
  hpaLegacy?: Summary;
}

function svgFile(trace: Trace): string {
  return join(
    svgDir,
    `${trace.name
      .replace(/[^a-z0-9]+/gi, '-')
      .replace(/-+$/, '')
      .toLowerCase()}.svg`,
  );
}

/** Runs the configurations of one seed on one trace (and draws seed 42's chart). */
function runSeed(trace: Trace, seed: number): SeedSummaries {
  const model = { ...MODEL, seed };
  const hpa = simulate({
    trace,
    policy: HPA_POLICY,
    model: metricsServerModel(model, { syncPeriodMs: HPA_SYNC_MS }),
  });
  const shoal = simulate({ trace, policy: SHOAL_POLICY, model: { ...model, syncPeriodMs: SHOAL_SYNC_MS } });
  const hpaRps = noReference
    ? undefined
    : simulate({
        trace,
        policy: HPA_RPS_POLICY,
        model: metricsServerModel(model, { syncPeriodMs: HPA_SYNC_MS }),
      });
  const hpaLegacy =
    seed === SEEDS[0] && !noReference
      ? simulate({
          trace,
          policy: HPA_LEGACY_POLICY,
          model: metricsServerModel(model, { syncPeriodMs: HPA_SYNC_MS }),
        }).summary
      : undefined;
  if (!noSvg && seed === SEEDS[0]) {
    mkdirSync(svgDir, { recursive: true });
    writeFileSync(
      svgFile(trace),
      renderSimulationSvg([shoal, hpa], {
        title: `${trace.name}: Shoal default vs HPA default (seed ${seed})`,
        labels: [
          `Shoal default (sync ${SHOAL_SYNC_MS / 1000} s)`,
          `HPA default, CPU 70 % (sync ${HPA_SYNC_MS / 1000} s)`,
        ],
      }),
    );
  }
  return {
    seed,
    shoal: shoal.summary,
    hpa: hpa.summary,
    ...(hpaRps ? { hpaRps: hpaRps.summary } : {}),
    ...(hpaLegacy ? { hpaLegacy } : {}),
  };
}

function seedRun(x: SeedSummaries): SeedRun {
  const replicaSecondsRatio = figureRatio(x.shoal.replicaSeconds, x.hpa.replicaSeconds).value;
  const sloRatio = sloRatioOf(x.shoal, x.hpa);
  const eventsDiff = x.shoal.scaleEvents - x.hpa.scaleEvents;
  return {
    ...x,
    replicaSecondsRatio,
    sloRatio,
    eventsDiff,
    meetsTarget: verdict(
      replicaSecondsRatio,
      sloRatio,
      eventsDiff,
      x.shoal.sloViolationSeconds === 0 && x.hpa.sloViolationSeconds === 0,
    ).ok,
  };
}

const jobsArg = process.argv.indexOf('--jobs');
const JOBS = jobsArg >= 0 ? Number(process.argv[jobsArg + 1]) : 1;
if (!Number.isInteger(JOBS) || JOBS < 1 || JOBS > 32) {
  throw new Error(`--jobs must be an integer 1-32, got ${String(process.argv[jobsArg + 1])}`);
}
const workerArg = process.argv.indexOf('--worker');

/**
 * --jobs N: every (trace, seed) pair runs in its own child process, N at a time, longest traces first. Each child
 * is this script with `--worker TRACE SEED` and prints that pair's summaries as its last line; the figures are the
 * same as in one process (each simulation is deterministic and independent), only the wall time differs.
 */
async function runAll(traces: Trace[]): Promise<Map<string, SeedSummaries>> {
  const results = new Map<string, SeedSummaries>();
  const key = (t: number, seed: number): string => `${t}/${seed}`;
  const tasks = traces
    .flatMap((trace, t) => SEEDS.map((seed) => ({ t, trace, seed })))
    .sort((a, b) => b.trace.rates.length * b.trace.stepS - a.trace.rates.length * a.trace.stepS);
  if (JOBS === 1) {
    for (const task of tasks) results.set(key(task.t, task.seed), runSeed(task.trace, task.seed));
    return results;
  }
  const { spawn } = await import('node:child_process');
  // Every flag but --jobs, so the child builds the same list of traces (the task names a trace by its index).
  const passOn = process.argv.slice(2).filter((_, k, all) => {
    const a = all[k];
    const prev = all[k - 1];
    return a !== '--jobs' && prev !== '--jobs';
  });
  const runOne = (task: { t: number; trace: Trace; seed: number }): Promise<void> =>
    new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [...process.execArgv, fileURLToPath(import.meta.url), ...passOn, '--worker', String(task.t), String(task.seed)],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => (out += d));
      child.on('error', reject);
      child.on('close', (code) => {
        if (code !== 0) {
          reject(new Error(`worker for ${task.trace.name} seed ${task.seed} exited with ${String(code)}`));
          return;
        }
        const last = out.trim().split('\n').at(-1) ?? '';
        results.set(key(task.t, task.seed), JSON.parse(last) as SeedSummaries);
        resolve();
      });
    });
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < tasks.length) await runOne(tasks[next++] as (typeof tasks)[number]);
  };
  await Promise.all(Array.from({ length: Math.min(JOBS, tasks.length) }, lane));
  return results;
}

async function main(): Promise<void> {
  const traces = loadTraces();
  if (workerArg >= 0) {
    const t = Number(process.argv[workerArg + 1]);
    const seed = Number(process.argv[workerArg + 2]);
    const trace = traces[t];
    if (!trace || !Number.isInteger(seed)) throw new Error('--worker needs a trace index and a seed');
    console.log(JSON.stringify(runSeed(trace, seed)));
    return;
  }
  const results = await runAll(traces);
  const rows: Row[] = [];
  for (const [t, trace] of traces.entries()) {
    const runs: SeedRun[] = SEEDS.map((seed) => seedRun(results.get(`${t}/${seed}`) as SeedSummaries));
    const rs = median(runs.map((r) => r.replicaSecondsRatio));
    const slo = median(runs.map((r) => r.sloRatio));
    const ev = median(runs.map((r) => r.eventsDiff));
    // On the medians; "both 0" when the median seed of each side had no violation second.
    const v = verdict(
      rs,
      slo,
      ev,
      median(runs.map((r) => r.shoal.sloViolationSeconds)) === 0 &&
        median(runs.map((r) => r.hpa.sloViolationSeconds)) === 0,
    );
    rows.push({
      trace: trace.name,
      oracleReplicaSeconds: oracleReplicaSeconds(trace),
      runs,
      replicaSecondsRatio: rs,
      sloRatio: slo,
      eventsDiff: ev,
      seedsMet: runs.filter((r) => r.meetsTarget).length,
      meetsTarget: v.ok,
      why: v.why,
    });
  }
  const timing = timeDecide();

  const pad = (s: string, n: number): string => s.padEnd(n);
  const num = (n: number): string =>
    n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(0)}k` : String(Math.round(n));
  const range = (xs: number[], digits: number): string => {
    const fin = xs.filter(Number.isFinite);
    if (fin.length === 0) return '-';
    return `${Math.min(...fin).toFixed(digits)}-${Math.max(...fin).toFixed(digits)}`;
  };
  const first = (r: Row): SeedRun => r.runs[0] as SeedRun;
  console.log(
    `model: ${CAPACITY} req/s per replica (4 x 50 ms), cold start lognormal mean 30 s cv 0.3, drain 5 s (billed), SLO p95 <= 250 ms, agents report every 1 s; Shoal: the coordinator's window over one sync period; HPA: metrics-server's 15 s CPU rate, 0–15 s old; Shoal sync ${SHOAL_SYNC_MS / 1000} s, HPA sync ${HPA_SYNC_MS / 1000} s; seeds ${SEEDS.join(', ')}`,
  );
  console.log(`seed ${SEEDS[0]} (the charts):`);
  console.log(
    [
      pad('  trace', 30),
      pad('replica-s S/H', 20),
      pad('SLO-viol s S/H', 16),
      pad('dropped S/H', 16),
      pad('events S/H', 12),
      'revers. S/H',
    ].join(' '),
  );
  for (const r of rows) {
    const f = first(r);
    console.log(
      [
        pad(`  ${r.trace}`, 30),
        pad(`${num(f.shoal.replicaSeconds)}/${num(f.hpa.replicaSeconds)}`, 20),
        pad(`${f.shoal.sloViolationSeconds}/${f.hpa.sloViolationSeconds}`, 16),
        pad(`${num(f.shoal.droppedRequests)}/${num(f.hpa.droppedRequests)}`, 16),
        pad(`${f.shoal.scaleEvents}/${f.hpa.scaleEvents}`, 12),
        `${f.shoal.reversals}/${f.hpa.reversals}`,
      ].join(' '),
    );
  }
  console.log(
    `Shoal / HPA over ${SEEDS.length} seeds (ratio = Shoal's figure / the HPA's: 1.6 = Shoal 60 % more; both 0 = 1, over a 0 = inf): median (range); verdict on the medians:`,
  );
  console.log(
    [
      pad('  trace', 30),
      pad('replica-s ratio', 22),
      pad('SLO-viol ratio', 22),
      pad('events S-H', 16),
      pad('seeds met', 10),
      'target',
    ].join(' '),
  );
  for (const r of rows) {
    const rsList = r.runs.map((x) => x.replicaSecondsRatio);
    const sloList = r.runs.map((x) => x.sloRatio);
    const evList = r.runs.map((x) => x.eventsDiff);
    console.log(
      [
        pad(`  ${r.trace}`, 30),
        pad(`${r.replicaSecondsRatio.toFixed(3)} (${range(rsList, 3)})`, 22),
        pad(`${Number.isFinite(r.sloRatio) ? r.sloRatio.toFixed(2) : 'inf'} (${range(sloList, 2)})`, 22),
        pad(`${r.eventsDiff} (${Math.min(...evList)}..${Math.max(...evList)})`, 16),
        pad(`${r.seedsMet}/${r.runs.length}`, 10),
        `${r.meetsTarget ? 'met' : 'MISSED'} (${r.why})`,
      ].join(' '),
    );
  }
  for (const m of skipped) console.log(`${pad(`  ${m.trace}`, 30)} SKIPPED: ${m.file} not found`);
  console.log(
    `attribution (seed ${SEEDS[0]}) — HPA engine (15 s sync) with Shoal's targets (ELU + rps) instead of CPU:`,
  );
  for (const r of rows) {
    const f = first(r);
    if (!f.hpaRps) continue;
    console.log(
      `  ${pad(r.trace, 28)} replica-s ${num(f.hpaRps.replicaSeconds)} (${(f.hpaRps.replicaSeconds / f.hpa.replicaSeconds).toFixed(2)}× HPA)  SLO-viol ${f.hpaRps.sloViolationSeconds} s  events ${f.hpaRps.scaleEvents}`,
    );
  }
  console.log(
    `reference (seed ${SEEDS[0]}) — an HPA without spec.behavior (Kubernetes' legacy path: max(2×, 4) per sync, 300 s hold):`,
  );
  for (const r of rows) {
    const f = first(r);
    const l = f.hpaLegacy;
    if (!l) continue;
    console.log(
      `  ${pad(r.trace, 28)} replica-s ${num(l.replicaSeconds)} (${(l.replicaSeconds / f.hpa.replicaSeconds).toFixed(2)}× HPA default behavior)  SLO-viol ${l.sloViolationSeconds} s (HPA ${f.hpa.sloViolationSeconds})  events ${l.scaleEvents} (HPA ${f.hpa.scaleEvents})`,
    );
  }
  console.log(
    'oracle — exactly the replicas the 70 % target asks for each second, no cold start (a floor on cost at this target):',
  );
  for (const r of rows) {
    const toHpa = r.runs.map((x) => r.oracleReplicaSeconds / x.hpa.replicaSeconds);
    console.log(
      `  ${pad(r.trace, 28)} replica-s ${num(r.oracleReplicaSeconds)}: ${median(toHpa).toFixed(3)}× HPA (${range(toHpa, 3)}); Shoal ${median(r.runs.map((x) => x.shoal.replicaSeconds / r.oracleReplicaSeconds)).toFixed(2)}× oracle`,
    );
  }
  console.log(
    `decide() with 1,000 instances: mean ${timing.meanUs.toFixed(0)} µs, median ${timing.p50Us.toFixed(0)} µs, p99 ${timing.p99Us.toFixed(0)} µs over ${timing.runs} runs (target < 1000 µs)`,
  );
  const fin = (x: number, d: number): number | null => (Number.isFinite(x) ? +x.toFixed(d) : null);
  console.log(
    JSON.stringify({
      bench: 'scaling',
      quick,
      seeds: SEEDS,
      model: { ...MODEL, seed: undefined, capacityRps: CAPACITY, shoalSyncMs: SHOAL_SYNC_MS, hpaSyncMs: HPA_SYNC_MS },
      rows: rows.map((r) => ({
        trace: r.trace,
        oracleReplicaSeconds: r.oracleReplicaSeconds,
        replicaSecondsRatio: fin(r.replicaSecondsRatio, 3),
        sloRatio: fin(r.sloRatio, 3),
        eventsDiff: r.eventsDiff,
        seedsMet: r.seedsMet,
        meetsTarget: r.meetsTarget,
        perSeed: r.runs.map((x) => ({
          seed: x.seed,
          shoal: pick(x.shoal),
          hpa: pick(x.hpa),
          ...(x.hpaRps ? { hpaSameTargets: pick(x.hpaRps) } : {}),
          ...(x.hpaLegacy ? { hpaLegacy: pick(x.hpaLegacy) } : {}),
          replicaSecondsRatio: fin(x.replicaSecondsRatio, 3),
          sloRatio: fin(x.sloRatio, 3),
          meetsTarget: x.meetsTarget,
        })),
      })),
      tracesMet: rows.filter((r) => r.meetsTarget).length,
      traces: rows.length,
      skipped: skipped.map((m) => m.trace),
      decide1000: {
        meanUs: +timing.meanUs.toFixed(1),
        p50Us: +timing.p50Us.toFixed(1),
        p99Us: +timing.p99Us.toFixed(1),
        runs: timing.runs,
      },
    }),
  );
}

function pick(s: SimulationResult['summary']): Record<string, number> {
  return {
    replicaSeconds: s.replicaSeconds,
    sloViolationSeconds: s.sloViolationSeconds,
    droppedRequests: s.droppedRequests,
    scaleEvents: s.scaleEvents,
    reversals: s.reversals,
    flaps: s.flaps,
    peakReplicas: s.peakReplicas,
    surges: s.surges,
    timeToAdequateMeanS: +s.timeToAdequateS.mean.toFixed(1),
    timeToAdequateMaxS: s.timeToAdequateS.max,
  };
}

// Run when executed (npm run bench:scaling); importing the module (a parameter sweep) only takes its parts.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
