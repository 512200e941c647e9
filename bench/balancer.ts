/**
 * Cost of one pick + complete per strategy (`npm run bench:balancer`, `-- --quick` for a short run).
 *
 * For 10, 100 and 1,000 endpoints: nanoseconds per `balancer.pick(ctx)` + `handle.complete('success', ms)` with
 * default options (outlier detection, slow start and retry budget on, the real clock), against a bare
 * `array[i++ % n]` in the same run. Each cell is the median of several timed rounds after a warm-up. Hashing
 * strategies get a key from a pre-built pool (no string building in the loop). The rows "1 warming" have one
 * endpoint in slow start for the whole cell (slow start is a weight in the strategy).
 *
 * Time is this process's CPU time (`process.cpuUsage()`, user + system), not wall time: on shared 2-core machines
 * wall time mostly measures how long the scheduler kept us off the CPU. Other processes still compete for caches.
 *
 * Target: peak_ewma and least_request ≤ 150 ns at 1,000 endpoints on the project's 2-core machines.
 * The last line printed is one JSON object with every figure.
 */
import { loadavg } from 'node:os';
import { createInstance, type Instance } from '@shoal/core';
import { Balancer, createRandom, strategyNames, type PickContext } from '@shoal/balancer';

const quick = process.argv.includes('--quick');
const SIZES = [10, 100, 1000];
const ITERATIONS = quick ? 100_000 : 400_000;
const ROUNDS = quick ? 3 : 5;
const TARGET_NS = 150;

function instances(n: number): Instance[] {
  return Array.from({ length: n }, (_, i) =>
    createInstance({ id: `i-${i}`, service: 'bench', address: '10.0.0.1', port: 1000 + i, weight: 1 + (i % 3) }),
  );
}

const contexts: PickContext[] = Array.from({ length: 1024 }, (_, i) => ({ key: `user-${i * 7919}` }));
const latencies = Float64Array.from({ length: 1024 }, (_, i) => 1 + ((i * 37) % 50));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

let sink = 0;

/** CPU nanoseconds since `start` (a `process.cpuUsage()` reading). */
function cpuNs(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) * 1000;
}

function timeBaseline(n: number): number {
  const arr = instances(n);
  const rounds: number[] = [];
  let i = 0;
  for (let r = 0; r < ROUNDS + 1; r++) {
    const t0 = process.cpuUsage();
    for (let k = 0; k < ITERATIONS; k++) sink += arr[i++ % n]!.port;
    const ns = cpuNs(t0) / ITERATIONS;
    if (r > 0) rounds.push(ns);
  }
  return median(rounds);
}

async function timeStrategy(strategy: string, n: number, localZone?: string, warming = false): Promise<number> {
  const list = instances(n).map((inst, i) => (localZone ? { ...inst, zone: i % 3 === 0 ? 'a' : 'b' } : inst));
  const balancer = new Balancer({ strategy, random: createRandom(1), ...(localZone ? { localZone } : {}) });
  // Warming: the last endpoint joins after the others, so it is in slow start (30 s) for the whole cell.
  if (warming) balancer.setEndpoints(list.slice(0, -1));
  balancer.setEndpoints(list);
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS + 1; r++) {
    const t0 = process.cpuUsage();
    for (let k = 0; k < ITERATIONS; k++) {
      const h = balancer.pick(contexts[k & 1023]);
      h.complete('success', latencies[k & 1023]!);
    }
    const ns = cpuNs(t0) / ITERATIONS;
    if (r > 0) rounds.push(ns);
  }
  await balancer.close();
  return median(rounds);
}

const started = performance.now();
const rows: Array<{ strategy: string; ns: Record<string, number> }> = [];
const baseline: Record<string, number> = {};
for (const n of SIZES) baseline[n] = timeBaseline(n);
rows.push({ strategy: 'baseline array[i++ % n]', ns: baseline });
const cases: Array<[string, string, string | undefined, boolean]> = strategyNames().map((s) => [
  s,
  s,
  undefined,
  false,
]);
cases.push(['zone_aware(peak_ewma)', 'peak_ewma', 'a', false]);
for (const s of ['round_robin', 'least_connections', 'least_request', 'peak_ewma']) {
  cases.push([`${s}, 1 warming`, s, undefined, true]);
}
for (const [label, strategy, zone, warming] of cases) {
  const ns: Record<string, number> = {};
  for (const n of SIZES) ns[n] = await timeStrategy(strategy, n, zone, warming);
  rows.push({ strategy: label, ns });
}

console.log(
  `\nCPU ns per pick + complete (median of ${ROUNDS} rounds × ${ITERATIONS.toLocaleString('en')}), Node ${process.version}, load average ${loadavg()[0]!.toFixed(2)}`,
);
console.log(
  `${'strategy'.padEnd(32)}${SIZES.map((n) => `n=${n}`.padStart(10)).join('')}${'× baseline @1000'.padStart(18)}`,
);
for (const row of rows) {
  console.log(
    `${row.strategy.padEnd(32)}${SIZES.map((n) => row.ns[n]!.toFixed(1).padStart(10)).join('')}${(row.ns[1000]! / baseline[1000]!).toFixed(1).padStart(18)}`,
  );
}
const at1000 = (s: string) => rows.find((r) => r.strategy === s)!.ns[1000]!;
const targets = { peak_ewma: at1000('peak_ewma'), least_request: at1000('least_request'), limitNs: TARGET_NS };
const met = targets.peak_ewma <= TARGET_NS && targets.least_request <= TARGET_NS;
console.log(
  `\nTarget at n=1000: peak_ewma ${targets.peak_ewma.toFixed(1)} ns, least_request ${targets.least_request.toFixed(1)} ns (≤ ${TARGET_NS}): ${met ? 'met' : 'NOT met'} (${((performance.now() - started) / 1000).toFixed(1)} s, sink ${sink % 10})`,
);
console.log(
  JSON.stringify({
    bench: 'balancer',
    node: process.version,
    timeBase: 'process CPU time',
    loadAverage: loadavg()[0],
    iterations: ITERATIONS,
    rounds: ROUNDS,
    nsPerPickComplete: Object.fromEntries(rows.map((r) => [r.strategy, r.ns])),
    targets: { ...targets, met },
  }),
);
