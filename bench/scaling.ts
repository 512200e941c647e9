// Scaling benchmark: Shoal's default policy vs an HPA-default configuration of the same engine, on the real
// traces in ../shared/traces plus synthetic step, ramp and noisy-flat traces, through the same queueing model
// in the same run. Also times one decide() for a service with 1,000 instances.
//
//   npm run bench:scaling            (all traces, full length; SVGs + docs/benchmarks/scaling/*.svg)
//   npm run bench:scaling -- --quick (NASA cut to 7 days, fewer decide() timings)
//
// The last line of output is one JSON object with every figure.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decide, parseTraceCsv, renderSimulationSvg, resolvePolicy, simulate, syntheticTrace } from '@shoal/policy';
import type { Observation, PolicyInput, SimulationModelInput, SimulationResult, Trace } from '@shoal/policy';

const quick = process.argv.includes('--quick');
const noSvg = process.argv.includes('--no-svg');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tracesDir = process.env.SHOAL_TRACES ?? join(root, '..', 'shared', 'traces');
const svgDir = join(root, 'docs', 'benchmarks', 'scaling');

// The stated model: one replica serves 4 requests at once at 50 ms mean (exponential) = 80 req/s;
// a new replica serves 30 s after the decision; p95 ≤ 250 ms is the SLO; agents report every second.
const CAPACITY = 80;
const MODEL: SimulationModelInput = {
  concurrency: 4,
  serviceTimeMs: 50,
  serviceTimeDistribution: 'exponential',
  coldStartMs: 30_000,
  timeoutMs: 2_000,
  sloP95Ms: 250,
  reportIntervalMs: 1_000,
  metricLagMs: 1_000,
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
const HPA_SYNC_MS = 15_000;

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
const SHOAL_SYNC_MS = 5_000; // @shoal/coordinator's default syncPeriodMs

/** For attribution only: the HPA engine and sync period with Shoal's targets (request rate instead of CPU). */
export const HPA_RPS_POLICY: PolicyInput = { ...HPA_POLICY, targets: SHOAL_POLICY.targets };

function loadTraces(): Trace[] {
  const traces: Trace[] = [];
  const csv = (file: string): string => readFileSync(join(tracesDir, file), 'utf8');
  const wc = 'wc98_per_minute_1998-07-06_to_1998-07-09.csv';
  const nasa = 'nasa_jul95_per_minute.csv';
  const azure = 'AzureLLMInferenceTrace_conv_per_second.csv';
  if (existsSync(join(tracesDir, wc)))
    traces.push(parseTraceCsv(csv(wc), { name: 'wc98', peakRps: 40 * CAPACITY * 0.7 }));
  if (existsSync(join(tracesDir, nasa))) {
    traces.push(
      parseTraceCsv(csv(nasa), {
        name: quick ? 'nasa (7 days)' : 'nasa',
        peakRps: 30 * CAPACITY * 0.7,
        ...(quick ? { durationS: 7 * 86_400 } : {}),
      }),
    );
  }
  if (existsSync(join(tracesDir, azure)))
    traces.push(parseTraceCsv(csv(azure), { name: 'azure-llm', peakRps: 20 * CAPACITY * 0.7 }));
  const base = 4 * CAPACITY * 0.7;
  traces.push(
    syntheticTrace('step 10x in 10 s', 3_600, 1, (t) =>
      t < 900 ? base : t < 910 ? base * (1 + (9 * (t - 900)) / 10) : base * 10,
    ),
  );
  traces.push(
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
  traces.push(
    syntheticTrace(
      'noisy-flat',
      7_200,
      10,
      (t) => 10 * CAPACITY * 0.6 * (1 + 0.5 * (noise[Math.floor(t / 10) % 1_000] as number)),
    ),
  );
  return traces;
}

interface Row {
  trace: string;
  shoal: SimulationResult['summary'];
  hpa: SimulationResult['summary'];
  hpaRps: SimulationResult['summary'];
  sloRatio: number;
  replicaSecondsRatio: number;
  meetsTarget: boolean;
  why: string;
}

function verdict(shoal: SimulationResult['summary'], hpa: SimulationResult['summary']): { ok: boolean; why: string } {
  const rs = shoal.replicaSeconds / hpa.replicaSeconds;
  const fewerEvents = shoal.scaleEvents <= hpa.scaleEvents;
  const sloHalf = shoal.sloViolationSeconds <= hpa.sloViolationSeconds / 2;
  const a = sloHalf && rs <= 1.1;
  const b = rs <= 0.8 && shoal.sloViolationSeconds <= hpa.sloViolationSeconds;
  const parts: string[] = [];
  if (!(a || b)) {
    if (!sloHalf && !(rs <= 0.8)) parts.push('SLO-violation not ≤ half of HPA and replica-seconds not ≥ 20 % lower');
    else if (sloHalf) parts.push(`replica-seconds +${((rs - 1) * 100).toFixed(0)} % (> +10 %)`);
    else parts.push('SLO-violation above HPA');
  }
  if (!fewerEvents) parts.push(`more scale events (${shoal.scaleEvents} vs ${hpa.scaleEvents})`);
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

function main(): void {
  const traces = loadTraces();
  const rows: Row[] = [];
  if (!noSvg) mkdirSync(svgDir, { recursive: true });
  for (const trace of traces) {
    const hpa = simulate({ trace, policy: HPA_POLICY, model: { ...MODEL, syncPeriodMs: HPA_SYNC_MS } });
    const shoal = simulate({ trace, policy: SHOAL_POLICY, model: { ...MODEL, syncPeriodMs: SHOAL_SYNC_MS } });
    const hpaRps = simulate({ trace, policy: HPA_RPS_POLICY, model: { ...MODEL, syncPeriodMs: HPA_SYNC_MS } });
    const v = verdict(shoal.summary, hpa.summary);
    rows.push({
      trace: trace.name,
      shoal: shoal.summary,
      hpa: hpa.summary,
      hpaRps: hpaRps.summary,
      sloRatio:
        hpa.summary.sloViolationSeconds === 0
          ? shoal.summary.sloViolationSeconds === 0
            ? 1
            : Infinity
          : shoal.summary.sloViolationSeconds / hpa.summary.sloViolationSeconds,
      replicaSecondsRatio: shoal.summary.replicaSeconds / hpa.summary.replicaSeconds,
      meetsTarget: v.ok,
      why: v.why,
    });
    if (!noSvg) {
      const file = join(
        svgDir,
        `${trace.name
          .replace(/[^a-z0-9]+/gi, '-')
          .replace(/-+$/, '')
          .toLowerCase()}.svg`,
      );
      writeFileSync(
        file,
        renderSimulationSvg([shoal, hpa], {
          title: `${trace.name}: Shoal default vs HPA default`,
          labels: [
            `Shoal default (sync ${SHOAL_SYNC_MS / 1000} s)`,
            `HPA default, CPU 70 % (sync ${HPA_SYNC_MS / 1000} s)`,
          ],
        }),
      );
    }
  }
  const timing = timeDecide();

  const pad = (s: string, n: number): string => s.padEnd(n);
  const num = (n: number): string =>
    n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(0)}k` : String(Math.round(n));
  console.log(
    `model: ${CAPACITY} req/s per replica (4 x 50 ms), cold start 30 s, SLO p95 <= 250 ms, report 1 s, lag 1 s; Shoal sync ${SHOAL_SYNC_MS / 1000} s, HPA sync ${HPA_SYNC_MS / 1000} s`,
  );
  console.log(
    [
      pad('trace', 18),
      pad('replica-s S/H', 20),
      pad('ratio', 7),
      pad('SLO-viol s S/H', 16),
      pad('dropped S/H', 16),
      pad('events S/H', 12),
      pad('revers. S/H', 12),
      'target',
    ].join(' '),
  );
  for (const r of rows) {
    console.log(
      [
        pad(r.trace, 18),
        pad(`${num(r.shoal.replicaSeconds)}/${num(r.hpa.replicaSeconds)}`, 20),
        pad(r.replicaSecondsRatio.toFixed(2), 7),
        pad(`${r.shoal.sloViolationSeconds}/${r.hpa.sloViolationSeconds}`, 16),
        pad(`${num(r.shoal.droppedRequests)}/${num(r.hpa.droppedRequests)}`, 16),
        pad(`${r.shoal.scaleEvents}/${r.hpa.scaleEvents}`, 12),
        pad(`${r.shoal.reversals}/${r.hpa.reversals}`, 12),
        `${r.meetsTarget ? 'met' : 'MISSED'} (${r.why})`,
      ].join(' '),
    );
  }
  console.log("attribution — HPA engine (15 s sync) with Shoal's targets (ELU + rps) instead of CPU:");
  for (const r of rows) {
    console.log(
      `  ${pad(r.trace, 18)} replica-s ${num(r.hpaRps.replicaSeconds)} (${(r.hpaRps.replicaSeconds / r.hpa.replicaSeconds).toFixed(2)}× HPA)  SLO-viol ${r.hpaRps.sloViolationSeconds} s  events ${r.hpaRps.scaleEvents}`,
    );
  }
  console.log(
    `decide() with 1,000 instances: mean ${timing.meanUs.toFixed(0)} µs, median ${timing.p50Us.toFixed(0)} µs, p99 ${timing.p99Us.toFixed(0)} µs over ${timing.runs} runs (target < 1000 µs)`,
  );
  console.log(
    JSON.stringify({
      bench: 'scaling',
      quick,
      model: { ...MODEL, capacityRps: CAPACITY, shoalSyncMs: SHOAL_SYNC_MS, hpaSyncMs: HPA_SYNC_MS },
      rows: rows.map((r) => ({
        trace: r.trace,
        shoal: pick(r.shoal),
        hpa: pick(r.hpa),
        hpaSameTargets: pick(r.hpaRps),
        replicaSecondsRatio: +r.replicaSecondsRatio.toFixed(3),
        sloRatio: Number.isFinite(r.sloRatio) ? +r.sloRatio.toFixed(3) : null,
        meetsTarget: r.meetsTarget,
      })),
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

main();
