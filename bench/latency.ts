/**
 * Tail latency per balancing strategy: a seeded, deterministic discrete-event simulation.
 *
 * 10 backends, each a single-worker FIFO queue with exponential service times (mean 10 ms), except:
 *   - b0 is 5× slower (mean 50 ms);
 *   - b1 pauses for 200 ms every 2 s (a stop-the-world GC): work in progress waits.
 * Poisson arrivals at 70 % and 90 % of total capacity; one client whose balancer sees every call.
 * Each strategy runs the real @shoal/balancer (picks and completions through the public API, on a ManualClock
 * driven by simulated time), next to round_robin and a join-shortest-queue oracle that sees true queue lengths.
 * weighted_least_load gets a load report from every backend each simulated second (utilization, rps).
 *
 * A second scenario, "caller pauses", mirrors the gRPC benchmark's slow server: 4 backends answer in 1 ms, b0 adds
 * 50 ms to 20 % of its calls, 1 500 calls/s; the caller itself pauses 15 ms every 250 ms and 60 ms every 2.5 s
 * (GC, a busy CPU), which delays every call in flight at once and bunches the calls due meanwhile. Target there:
 * peak_ewma p99 ≤ 1/3 of round_robin's.
 *
 *   npm run bench:latency            (200,000 requests per run)
 *   npm run bench:latency -- --quick (50,000)
 *
 * Prints a table per load level; the last line is one JSON object with every figure.
 */
import { ManualClock, createInstance, type Instance } from '@shoal/core';
import { Balancer, createRandom, type PickHandle } from '@shoal/balancer';

const quick = process.argv.includes('--quick');
const REQUESTS = quick ? 50_000 : 200_000;
const WARMUP = Math.floor(REQUESTS / 10);
const SEED = 20261125;

const N = 10;
const MEAN_MS = Array.from({ length: N }, (_, i) => (i === 0 ? 50 : 10));
const PAUSE_BACKEND = 1;
const PAUSE_EVERY_MS = 2000;
const PAUSE_MS = 200;
const PAUSE_OFFSET_MS = 777;

/** [label, strategy, strategyOptions]; the oracle is simulated outside the balancer. */
const POLICIES: Array<[string, string, Record<string, unknown>]> = [
  ['round_robin', 'round_robin', {}],
  ['random', 'random', {}],
  ['least_connections', 'least_connections', {}],
  ['least_request', 'least_request', {}],
  ['peak_ewma', 'peak_ewma', {}],
  ['response_time_weighted', 'response_time_weighted', {}],
  ['weighted_least_load', 'weighted_least_load', {}],
  // A58's 10 s blackout runs plain round robin at first; this row shows the weights without it.
  ['weighted_least_load(blackout 0)', 'weighted_least_load', { blackoutPeriodMs: 0 }],
  ['oracle_jsq', 'oracle_jsq', {}],
];

/** Service capacity in requests per ms, counting b1's pauses. */
function capacityPerMs(): number {
  let c = 0;
  for (let i = 0; i < N; i++) {
    const rate = 1 / MEAN_MS[i]!;
    c += i === PAUSE_BACKEND ? rate * (1 - PAUSE_MS / PAUSE_EVERY_MS) : rate;
  }
  return c;
}

/** When work of `work` ms started at `start` finishes on backend `b`, skipping its pauses. */
function finishTime(b: number, start: number, work: number): number {
  if (b !== PAUSE_BACKEND) return start + work;
  let t = start;
  let left = work;
  for (;;) {
    const phase = (((t - PAUSE_OFFSET_MS) % PAUSE_EVERY_MS) + PAUSE_EVERY_MS) % PAUSE_EVERY_MS;
    if (phase < PAUSE_MS) {
      t += PAUSE_MS - phase;
      continue;
    }
    const nextPause = t + (PAUSE_EVERY_MS - phase);
    if (t + left <= nextPause) return t + left;
    left -= nextPause - t;
    t = nextPause + PAUSE_MS;
  }
}

interface RunResult {
  p50: number;
  p99: number;
  p999: number;
  mean: number;
  slowShare: number;
  pausingShare: number;
}

function percentile(sorted: Float64Array, p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

function run(policy: string, strategyOptions: Record<string, unknown>, load: number): RunResult {
  const rnd = createRandom(SEED); // arrivals and service times: identical for every policy
  const tieRandom = createRandom(SEED + 1);
  const exp = (mean: number) => -Math.log(1 - rnd()) * mean;
  const lambda = load * capacityPerMs();
  const instances: Instance[] = Array.from({ length: N }, (_, i) =>
    createInstance({ id: `b${i}`, service: 'sim', address: '10.0.0.1', port: 9000 + i }),
  );
  const clock = new ManualClock(0);
  const balancer =
    policy === 'oracle_jsq'
      ? undefined
      : new Balancer({
          strategy: policy,
          strategyOptions,
          clock,
          random: createRandom(SEED + 2),
          slowStart: false,
          outlierDetection: false,
          retryBudget: false,
          handleTimeoutMs: 86_400_000,
        });
  balancer?.setEndpoints(instances);

  // Per-backend FIFO queue: arrival time, request index, handle. The head is in service.
  const qArrival: number[][] = Array.from({ length: N }, () => []);
  const qIndex: number[][] = Array.from({ length: N }, () => []);
  const qHandle: Array<Array<PickHandle | undefined>> = Array.from({ length: N }, () => []);
  const qHead = new Array<number>(N).fill(0);
  const completion = new Float64Array(N).fill(Infinity);
  const busySince = new Float64Array(N).fill(-1);
  const busyMs = new Float64Array(N);
  const served = new Float64Array(N);
  const picked = new Float64Array(N);
  const latencies = new Float64Array(REQUESTS - WARMUP);
  let recorded = 0;
  let sumLatency = 0;

  let nextArrival = exp(1 / lambda);
  let arrivals = 0;
  let nextReport = 1000;
  let done = 0;
  const queueLength = (b: number) => qArrival[b]!.length - qHead[b]!;

  const startService = (b: number, now: number) => {
    if (queueLength(b) > 0) {
      completion[b] = finishTime(b, now, exp(MEAN_MS[b]!));
      if (busySince[b]! < 0) busySince[b] = now;
    } else {
      completion[b] = Infinity;
      if (busySince[b]! >= 0) {
        busyMs[b] = busyMs[b]! + (now - busySince[b]!);
        busySince[b] = -1;
      }
    }
  };

  while (done < REQUESTS) {
    // Next event: an arrival, a completion, or the once-a-second load report.
    let t = arrivals < REQUESTS ? nextArrival : Infinity;
    let kind = 0; // 0 arrival, 1 completion, 2 report
    let backend = -1;
    for (let b = 0; b < N; b++) {
      if (completion[b]! < t) {
        t = completion[b]!;
        kind = 1;
        backend = b;
      }
    }
    if (policy === 'weighted_least_load' && nextReport < t) {
      t = nextReport;
      kind = 2;
    }
    if (clock.now() < t) clock.advance(t - clock.now());

    if (kind === 0) {
      let b: number;
      let handle: PickHandle | undefined;
      if (balancer === undefined) {
        // Join the shortest queue; random among ties.
        let best = Infinity;
        let ties = 0;
        b = 0;
        for (let i = 0; i < N; i++) {
          const q = queueLength(i);
          if (q < best) {
            best = q;
            b = i;
            ties = 1;
          } else if (q === best && tieRandom() * ++ties < 1) {
            b = i;
          }
        }
      } else {
        handle = balancer.pick();
        b = Number(handle.instance.id.slice(1));
      }
      picked[b]!++;
      qArrival[b]!.push(t);
      qIndex[b]!.push(arrivals);
      qHandle[b]!.push(handle);
      if (queueLength(b) === 1) startService(b, t);
      arrivals++;
      nextArrival = t + exp(1 / lambda);
    } else if (kind === 1) {
      const b = backend;
      const h = qHead[b]!;
      const latency = t - qArrival[b]![h]!;
      const index = qIndex[b]![h]!;
      qHandle[b]![h]?.complete('success', latency);
      qHandle[b]![h] = undefined;
      qHead[b] = h + 1;
      if (qHead[b]! > 4096 && qHead[b]! * 2 > qArrival[b]!.length) {
        qArrival[b] = qArrival[b]!.slice(qHead[b]);
        qIndex[b] = qIndex[b]!.slice(qHead[b]);
        qHandle[b] = qHandle[b]!.slice(qHead[b]);
        qHead[b] = 0;
      }
      served[b]!++;
      done++;
      if (index >= WARMUP) {
        latencies[recorded++] = latency;
        sumLatency += latency;
      }
      startService(b, t);
    } else {
      for (let b = 0; b < N; b++) {
        let busy = busyMs[b]!;
        if (busySince[b]! >= 0) busy += t - busySince[b]!;
        balancer!.reportLoad(`b${b}`, { utilization: Math.min(1, busy / 1000), rps: served[b]! });
        busyMs[b] = 0;
        if (busySince[b]! >= 0) busySince[b] = t;
        served[b] = 0;
      }
      nextReport = t + 1000;
    }
  }
  void balancer?.close();
  const sorted = latencies.subarray(0, recorded).sort();
  return {
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    p999: percentile(sorted, 0.999),
    mean: sumLatency / recorded,
    slowShare: picked[0]! / REQUESTS,
    pausingShare: picked[PAUSE_BACKEND]! / REQUESTS,
  };
}

/** Caller-pauses scenario (see the header): [label, strategy, strategyOptions]. */
const PAUSE_POLICIES: Array<[string, string, Record<string, unknown>]> = [
  ['round_robin', 'round_robin', {}],
  ['least_request', 'least_request', {}],
  ['peak_ewma', 'peak_ewma', {}],
  ['peak_ewma(sampleWindow 0)', 'peak_ewma', { sampleWindow: 0 }],
];
const CALLER_PAUSE_MS = quick ? 30_000 : 120_000;

interface PauseResult {
  p50: number;
  p99: number;
  slowShare: number;
}

function runCallerPauses(policy: string, strategyOptions: Record<string, unknown>): PauseResult {
  const rnd = createRandom(SEED + 3);
  const clock = new ManualClock(0);
  const balancer = new Balancer({
    strategy: policy,
    strategyOptions,
    clock,
    random: createRandom(SEED + 4),
    slowStart: false,
    retryBudget: false,
  });
  balancer.setEndpoints(
    Array.from({ length: 4 }, (_, i) =>
      createInstance({ id: `b${i}`, service: 'sim', address: '10.0.0.1', port: 9000 + i }),
    ),
  );
  const calls: Array<{ due: number; start: number; handle: PickHandle }> = [];
  const latencies: number[] = [];
  let owed = 0;
  let picks = 0;
  let slow = 0;
  const warmup = 2000;
  for (let ms = 0; ms < CALLER_PAUSE_MS; ms++) {
    owed += 1.5;
    const paused = ms % 250 >= 235 || ms % 2500 >= 2440;
    if (!paused) {
      let kept = 0;
      for (const c of calls) {
        if (c.due <= ms) {
          c.handle.complete('success', ms - c.start);
          if (c.start >= warmup) latencies.push(ms - c.start);
        } else calls[kept++] = c;
      }
      calls.length = kept;
      for (; owed >= 1; owed--) {
        const handle = balancer.pick();
        const toSlow = handle.instance.id === 'b0';
        if (ms >= warmup) {
          picks++;
          if (toSlow) slow++;
        }
        calls.push({ due: ms + 1 + (toSlow && rnd() < 0.2 ? 50 : 0), start: ms, handle });
      }
    }
    clock.advance(1);
  }
  void balancer.close();
  const sorted = Float64Array.from(latencies).sort();
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), slowShare: slow / picks };
}

const fmt = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(1)} ms`);
const results: Record<string, Record<string, RunResult>> = {};
const started = performance.now();
for (const load of [0.7, 0.9]) {
  const key = `load_${Math.round(load * 100)}`;
  results[key] = {};
  for (const [label, policy, options] of POLICIES) results[key]![label] = run(policy, options, load);
  const rows = results[key]!;
  const rr = rows.round_robin!;
  const oracle = rows.oracle_jsq!;
  console.log(
    `\nLoad ${Math.round(load * 100)} % (${REQUESTS.toLocaleString('en')} requests, λ = ${(load * capacityPerMs() * 1000).toFixed(0)}/s)`,
  );
  console.log(
    `${'strategy'.padEnd(32)}${'p50'.padStart(10)}${'p99'.padStart(11)}${'p99.9'.padStart(11)}${'p99/rr'.padStart(9)}${'p99/oracle'.padStart(12)}${'to slow b0'.padStart(12)}${'to b1'.padStart(8)}`,
  );
  for (const [name, r] of Object.entries(rows)) {
    console.log(
      `${name.padEnd(32)}${fmt(r.p50).padStart(10)}${fmt(r.p99).padStart(11)}${fmt(r.p999).padStart(11)}${(r.p99 / rr.p99).toFixed(3).padStart(9)}${(r.p99 / oracle.p99).toFixed(2).padStart(12)}${`${(r.slowShare * 100).toFixed(1)} %`.padStart(12)}${`${(r.pausingShare * 100).toFixed(1)} %`.padStart(8)}`,
    );
  }
}
const at90 = results.load_90!;
const targets = {
  peakEwmaP99VsRoundRobinAt90: at90.peak_ewma!.p99 / at90.round_robin!.p99,
  peakEwmaP99VsOracleAt90: at90.peak_ewma!.p99 / at90.oracle_jsq!.p99,
};
const pauses: Record<string, PauseResult> = {};
for (const [label, policy, options] of PAUSE_POLICIES) pauses[label] = runCallerPauses(policy, options);
console.log(
  `\nCaller pauses (4 backends, 1 ms; b0 +50 ms on 20 % of calls; 1 500 calls/s; caller pauses 15 ms / 250 ms and 60 ms / 2.5 s; ${CALLER_PAUSE_MS / 1000} s)`,
);
console.log(
  `${'strategy'.padEnd(32)}${'p50'.padStart(10)}${'p99'.padStart(11)}${'p99/rr'.padStart(9)}${'to slow b0'.padStart(12)}`,
);
for (const [name, r] of Object.entries(pauses)) {
  console.log(
    `${name.padEnd(32)}${fmt(r.p50).padStart(10)}${fmt(r.p99).padStart(11)}${(r.p99 / pauses.round_robin!.p99).toFixed(3).padStart(9)}${`${(r.slowShare * 100).toFixed(2)} %`.padStart(12)}`,
  );
}
const peakEwmaP99VsRoundRobinCallerPauses = pauses.peak_ewma!.p99 / pauses.round_robin!.p99;
const met =
  targets.peakEwmaP99VsRoundRobinAt90 <= 1 / 3 &&
  targets.peakEwmaP99VsOracleAt90 <= 1.5 &&
  peakEwmaP99VsRoundRobinCallerPauses <= 1 / 3;
console.log(
  `\nTargets at 90 %: peak_ewma p99 / round_robin p99 = ${targets.peakEwmaP99VsRoundRobinAt90.toFixed(4)} (≤ 0.333), ` +
    `peak_ewma p99 / oracle p99 = ${targets.peakEwmaP99VsOracleAt90.toFixed(2)} (≤ 1.5); caller pauses: ` +
    `peak_ewma p99 / round_robin p99 = ${peakEwmaP99VsRoundRobinCallerPauses.toFixed(3)} (≤ 0.333): ${met ? 'met' : 'NOT met'}` +
    ` (${((performance.now() - started) / 1000).toFixed(1)} s)`,
);
console.log(
  JSON.stringify({
    bench: 'latency',
    requests: REQUESTS,
    seed: SEED,
    backends: {
      count: N,
      meanServiceMs: MEAN_MS,
      pause: { backend: PAUSE_BACKEND, everyMs: PAUSE_EVERY_MS, ms: PAUSE_MS },
    },
    results,
    callerPauses: pauses,
    targets: { ...targets, peakEwmaP99VsRoundRobinCallerPauses, met },
  }),
);
