// The control loop's cost for one service of 1,000 instances (issue 19: "decide() plus the controller for 1,000
// instances < 1 ms p99"). Times, per sync period, what the coordinator's loop runs between reading the replica
// count and applying the decision:
//
//   controller  `ServiceAutoscaler.observe(window, now, 1000)` (the window's averages over one 5 s sync period of
//               1 s reports: 5 samples per instance, latency histograms merged, p95 from them) plus
//               `ServiceAutoscaler.step(observation)` (decide() and the leadership guard);
//   decide()    `decide()` alone on the same observation (the baseline: the engine without the window).
//
// For Shoal's default policy (ELU + rps targets, SLO on p95, panic) and the HPA preset (CPU utilization). Between
// two timed loops the window receives the next 5 reports of every instance (not timed: ingestion is measured by
// bench:coordinator). Wall time (hrtime) and process CPU time are both reported: on a loaded machine wall time
// includes the time the process waited for a core, CPU time does not.
//
//   npm run bench:decide             (3,000 timed loops per configuration after 200 warm-up loops)
//   npm run bench:decide -- --quick  (500 timed loops)
//   npm run bench:decide -- --instances 5000
//
// The last line of output is one JSON object with every figure.
import { loadavg } from 'node:os';
import { LATENCY_BUCKET_COUNT, PROTOCOL_VERSION, type LoadReport } from '@shoal/protocol';
import { decide, resolvePolicy, ServiceAutoscaler, ServiceWindow, serviceWindowOptions } from '@shoal/policy';
import type { Observation, PolicyInput } from '@shoal/policy';

const quick = process.argv.includes('--quick');
const instancesArg = process.argv.indexOf('--instances');
const INSTANCES = instancesArg >= 0 ? Number(process.argv[instancesArg + 1]) : 1_000;
if (!Number.isInteger(INSTANCES) || INSTANCES < 1 || INSTANCES > 100_000) {
  throw new Error(`--instances must be an integer 1-100000, got ${String(process.argv[instancesArg + 1])}`);
}
const RUNS = quick ? 500 : 3_000;
const WARMUP = 200;
const REPORT_MS = 1_000;
const SYNC_MS = 5_000; // the coordinator's default syncPeriodMs

const SHOAL: PolicyInput = {
  minReplicas: 1,
  maxReplicas: 2 * INSTANCES,
  targets: [
    { metric: 'eventLoopUtilization', value: 0.7 },
    { metric: 'rps', value: 56 },
  ],
  slo: { thresholdMs: 250 },
};
const HPA: PolicyInput = {
  preset: 'hpa',
  minReplicas: 1,
  maxReplicas: 2 * INSTANCES,
  targets: [{ metric: 'cpu', type: 'utilization', value: 70 }],
};

/** A deterministic pseudo-random sequence (the same loads every run). */
function lcg(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    return x / 2_147_483_648;
  };
}

interface Timing {
  meanUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  cpuP99Us: number;
  cpuMeanUs: number;
}

function summarize(wall: number[], cpu: number[]): Timing {
  const w = [...wall].sort((a, b) => a - b);
  const c = [...cpu].sort((a, b) => a - b);
  const q = (xs: number[], p: number): number => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number;
  return {
    meanUs: w.reduce((s, x) => s + x, 0) / w.length,
    p50Us: q(w, 0.5),
    p99Us: q(w, 0.99),
    maxUs: w.at(-1) as number,
    cpuMeanUs: c.reduce((s, x) => s + x, 0) / c.length,
    cpuP99Us: q(c, 0.99),
  };
}

function run(name: string, input: PolicyInput): { name: string; controller: Timing; decide: Timing } {
  const policy = resolvePolicy(input);
  const start = Date.UTC(2026, 0, 5, 12);
  const window = new ServiceWindow('bench', {
    ...serviceWindowOptions({
      reportIntervalMs: REPORT_MS,
      syncPeriodMs: SYNC_MS,
      windowSize: 1_000,
      maxInstances: 100_000,
    }),
    requests: { cpu: 1 },
  });
  const rnd = lcg(20_261_203);
  const ids = Array.from({ length: INSTANCES }, (_, k) => `instance-${k}`);
  const seq = new Array<number>(INSTANCES).fill(0);
  for (const [k, id] of ids.entries()) {
    window.hello(
      {
        protocolVersion: PROTOCOL_VERSION,
        service: 'bench',
        instanceId: id,
        address: '10.0.0.1',
        port: 8_000 + k,
        startedAtMs: start - 3_600_000 + k,
      },
      start - 3_600_000,
    );
    window.connected(id, 1);
  }
  /** Every instance's reports for the sync period ending at `until` (one per second). */
  const feed = (until: number): void => {
    for (let t = until - SYNC_MS + REPORT_MS; t <= until; t += REPORT_MS) {
      for (const [k, id] of ids.entries()) {
        const load = 0.45 + 0.4 * rnd();
        const buckets = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
        const requests = Math.round(60 * load + 10 * rnd());
        buckets[5] = Math.round(requests * 0.6);
        buckets[6] = Math.round(requests * 0.3);
        buckets[7] = requests - (buckets[5] as number) - (buckets[6] as number);
        const report: LoadReport = {
          seq: ++(seq[k] as number),
          intervalMs: REPORT_MS,
          ready: true,
          inFlight: Math.round(4 * load),
          inFlightAvg: 4 * load,
          requests,
          errors: 0,
          latencyBuckets: buckets,
          eventLoopUtilization: load,
          eventLoopDelayP99Ms: 12,
          cpu: load * 0.9,
          rssBytes: 80e6,
          heapUsedBytes: 40e6,
          custom: {},
          sentAtMs: t,
          droppedReports: 0,
        };
        window.report(id, report, t);
      }
    }
  };
  const controller = new ServiceAutoscaler({ policy });
  controller.lead(start);
  let state = decide(policy, { now: start, currentReplicas: INSTANCES, instances: [] }, undefined).state;
  const controllerWall: number[] = [];
  const controllerCpu: number[] = [];
  const decideWall: number[] = [];
  const decideCpu: number[] = [];
  let now = start;
  for (let k = 0; k < WARMUP + RUNS; k++) {
    now += SYNC_MS;
    feed(now);
    // The controller: the window's observation and the step (decide() and the leadership guard).
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const observation: Observation = controller.observe(window, now, INSTANCES);
    controller.step(observation);
    const t1 = process.hrtime.bigint();
    const c1 = process.cpuUsage(c0);
    // The baseline: decide() alone on the same observation.
    const c2 = process.cpuUsage();
    const t2 = process.hrtime.bigint();
    state = decide(policy, observation, state).state;
    const t3 = process.hrtime.bigint();
    const c3 = process.cpuUsage(c2);
    if (k < WARMUP) continue; // JIT, and a full scale-down window of recommendations in the state
    controllerWall.push(Number(t1 - t0) / 1_000);
    controllerCpu.push(c1.user + c1.system);
    decideWall.push(Number(t3 - t2) / 1_000);
    decideCpu.push(c3.user + c3.system);
  }
  return { name, controller: summarize(controllerWall, controllerCpu), decide: summarize(decideWall, decideCpu) };
}

function main(): void {
  const loadBefore = loadavg()[0] as number;
  const results = [run('shoal default', SHOAL), run('hpa preset', HPA)];
  const loadAfter = loadavg()[0] as number;
  const f = (x: number): string => x.toFixed(0).padStart(7);
  console.log(
    `${INSTANCES} instances, 5 reports each per ${SYNC_MS / 1000} s sync, ${RUNS} timed loops after ${WARMUP}; ` +
      `load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after; Node ${process.version}`,
  );
  console.log('  policy          what                 mean µs  p50 µs  p99 µs  max µs  CPU p99 µs  p99 / decide()');
  for (const r of results) {
    for (const [what, t] of [
      ['decide() (baseline)', r.decide],
      ['controller', r.controller],
    ] as const) {
      console.log(
        `  ${r.name.padEnd(15)} ${what.padEnd(20)} ${f(t.meanUs)} ${f(t.p50Us)} ${f(t.p99Us)} ${f(t.maxUs)} ${f(t.cpuP99Us).padStart(11)}  ${(t.p99Us / r.decide.p99Us).toFixed(2).padStart(13)}`,
      );
    }
  }
  const worst = Math.max(...results.map((r) => r.controller.p99Us));
  console.log(`controller p99 ≤ ${worst.toFixed(0)} µs (goal < 1000 µs: ${worst < 1_000 ? 'met' : 'NOT met'})`);
  const round = (t: Timing): Record<string, number> =>
    Object.fromEntries(Object.entries(t).map(([k, v]) => [k, +v.toFixed(1)]));
  console.log(
    JSON.stringify({
      bench: 'decide',
      quick,
      instances: INSTANCES,
      runs: RUNS,
      syncMs: SYNC_MS,
      reportIntervalMs: REPORT_MS,
      loadAverage: { before: +loadBefore.toFixed(2), after: +loadAfter.toFixed(2) },
      node: process.version,
      results: results.map((r) => ({
        policy: r.name,
        decide: round(r.decide),
        controller: round(r.controller),
        controllerP99OverDecide: +(r.controller.p99Us / r.decide.p99Us).toFixed(2),
      })),
      controllerP99Us: +worst.toFixed(1),
      goalMet: worst < 1_000,
    }),
  );
}

main();
