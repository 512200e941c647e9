/**
 * bench:http — @shoal/http's balanced dispatcher against undici's BalancedPool, in one run.
 *
 *   npm run bench:http            (full: ~2 min)
 *   node --import tsx bench/http.ts --quick
 *
 * 1. Overhead: GET echo, 4 local HTTP servers (in one child process), 64 requests in flight: the Shoal dispatcher
 *    (`echo.service.consul` resolved through Consul, `round_robin`) vs `new BalancedPool([4 origins])`.
 *    Target: QPS ratio >= 0.97.
 * 2. A slow server (adds 50 ms to 20 % of its responses), at a fixed offered rate (`--rate=1500`/s, 64 workers):
 *    p99 of the dispatcher with `peak_ewma` and `least_request` vs BalancedPool. Target: peak_ewma p99 <= 1/3.
 *
 * Both sides use the undici 7 that @shoal/http depends on. The last line printed is one JSON object.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { ServiceRegistration } from '@shoal/consul';
import { startConsulDev } from '@shoal/consul-dev';
import { createDispatcher } from '@shoal/http';
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';
import { averageRuns, loadResult, loadTable, type LoadResult } from './support/load-results.js';
import { announcePortsAndWait, startServers as startServerChild, stopServers } from './support/server-child.js';

// The undici @shoal/http itself resolves (v7), not whatever the repository root has.
const undici = createRequire(fileURLToPath(import.meta.resolve('@shoal/http')))('undici') as typeof Undici;

async function serve(): Promise<void> {
  const n = Number(process.argv[3]);
  const slowMs = Number(process.argv[4] ?? 0);
  const slowFraction = Number(process.argv[5] ?? 0);
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const slow = i === 0 && slowMs > 0;
    const server = createServer((req, res) => {
      const reply = () => res.end(String(i)); // the server's index, so the client can count where requests went
      if (slow && Math.random() < slowFraction) setTimeout(reply, slowMs);
      else reply();
      req.resume();
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    ports.push((server.address() as AddressInfo).port);
  }
  announcePortsAndWait(ports);
}

const startServers = (n: number, slowMs = 0, slowFraction = 0) =>
  startServerChild(fileURLToPath(import.meta.url), n, slowMs, slowFraction);

/** One GET; resolves with the index of the server that answered. */
async function get(dispatcher: Dispatcher, origin: string): Promise<number> {
  const res = await dispatcher.request({ origin, path: '/', method: 'GET' });
  const body = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  return Number(body);
}

async function drive(
  dispatcher: Dispatcher,
  origin: string,
  ms: number,
  concurrency: number,
  rate: number | undefined,
  latencies: number[] | undefined,
): Promise<{ elapsed: number; errors: number; toSlow: number }> {
  let errors = 0;
  let toSlow = 0;
  const start = performance.now();
  const end = start + ms;
  const interval = rate ? (concurrency * 1000) / rate : 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      let next = start + (w * interval) / concurrency;
      while ((rate ? next : performance.now()) < end) {
        if (rate) {
          const wait = next - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          next += interval;
        }
        const t = performance.now();
        try {
          const server = await get(dispatcher, origin);
          latencies?.push(performance.now() - t);
          if (server === 0) toSlow++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { elapsed: performance.now() - start, errors, toSlow };
}

async function measure(
  name: string,
  dispatcher: Dispatcher,
  origin: string,
  durationMs: number,
  concurrency: number,
  rate?: number,
): Promise<LoadResult> {
  await drive(dispatcher, origin, Math.min(1500, durationMs / 3), concurrency, rate, undefined);
  const latencies: number[] = [];
  const cpuStart = process.cpuUsage();
  const { elapsed, errors, toSlow } = await drive(dispatcher, origin, durationMs, concurrency, rate, latencies);
  return loadResult(name, latencies, elapsed, errors, rate ? toSlow : undefined, process.cpuUsage(cpuStart));
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const durationMs = quick ? 2000 : 6000;
  const rounds = quick ? 2 : 4;
  const concurrency = 64;
  const rate = Number(process.argv.find((a) => a.startsWith('--rate='))?.slice(7) ?? 1500);
  const consul = await startConsulDev({ port: 0 });
  const registrations: ServiceRegistration[] = [];
  const dispatchers: Dispatcher[] = [];

  async function registerAll(service: string, ports: number[]): Promise<void> {
    for (const [i, port] of ports.entries()) {
      const r = new ServiceRegistration({
        consul: { url: consul.url },
        service,
        id: `${service}-${i}`,
        address: '127.0.0.1',
        port,
        registry: new Registry(),
      });
      await r.register();
      registrations.push(r);
    }
  }
  const pool = (ports: number[]) => {
    const d = new undici.BalancedPool(ports.map((p) => `http://127.0.0.1:${p}`));
    dispatchers.push(d);
    return d;
  };
  const shoal = (strategy: string) => {
    const d = createDispatcher({ consul: { url: consul.url }, strategy, slowStart: false, registry: new Registry() });
    dispatchers.push(d as unknown as Dispatcher);
    return d as unknown as Dispatcher;
  };

  try {
    const fast = await startServers(4);
    await registerAll('echo', fast.ports);
    const bp = pool(fast.ports);
    const rr = shoal('round_robin');
    const bpOrigin = `http://127.0.0.1:${fast.ports[0]}`;
    // Warm both up (JIT, connections) before anything is recorded, then alternate the order of the runs.
    await measure('warm-up', bp, bpOrigin, 1500, concurrency);
    await measure('warm-up', rr, 'http://echo.service.consul', 1500, concurrency);
    const phase1: LoadResult[] = [];
    for (let round = 0; round < rounds; round++) {
      const pair: Array<[string, Dispatcher, string]> = [
        ['undici BalancedPool', bp, bpOrigin],
        ['shoal round_robin (consul)', rr, 'http://echo.service.consul'],
      ];
      if (round % 2 === 1) pair.reverse();
      for (const [name, d, o] of pair) phase1.push(await measure(name, d, o, durationMs, concurrency));
    }
    await stopServers(fast.child);
    const avg = (name: string, key: 'qps' | 'p50Ms' | 'p99Ms' | 'cpuUsPerCall') => {
      const rows = phase1.filter((r) => r.name === name);
      return rows.reduce((s, r) => s + r[key], 0) / rows.length;
    };
    const qpsRatio = avg('shoal round_robin (consul)', 'qps') / avg('undici BalancedPool', 'qps');
    const cpuRatio = avg('shoal round_robin (consul)', 'cpuUsPerCall') / avg('undici BalancedPool', 'cpuUsPerCall');

    const slow = await startServers(4, 50, 0.2);
    await registerAll('echo-slow', slow.ports);
    const origin = 'http://echo-slow.service.consul';
    const phase2: LoadResult[] = [];
    const slowDispatchers: Array<[string, Dispatcher, string]> = [
      ['undici BalancedPool', pool(slow.ports), `http://127.0.0.1:${slow.ports[0]}`],
      ['shoal round_robin', shoal('round_robin'), origin],
      ['shoal peak_ewma', shoal('peak_ewma'), origin],
      ['shoal least_request', shoal('least_request'), origin],
    ];
    // An unrecorded pass first: connections, JIT and each balancer's first latency samples.
    for (const [name, d, o] of slowDispatchers)
      await measure(name, d, o, Math.min(1000, durationMs / 2), concurrency, rate);
    // Two passes in opposite orders (ABCD, DCBA), averaged, so a drift in machine load favours nobody.
    const passes: LoadResult[] = [];
    for (const order of [slowDispatchers, [...slowDispatchers].reverse()]) {
      for (const [name, d, o] of order) passes.push(await measure(name, d, o, durationMs, concurrency, rate));
    }
    for (const [name] of slowDispatchers) phase2.push(averageRuns(passes.filter((r) => r.name === name)));
    await stopServers(slow.child);
    const baseP99 = phase2[0]!.p99Ms;
    const ewmaRatio = phase2[2]!.p99Ms / baseP99;
    const lrRatio = phase2[3]!.p99Ms / baseP99;

    console.log(
      `\nbench:http — GET, 4 servers, ${concurrency} in flight, ${durationMs / 1000} s per run${quick ? ' (quick)' : ''}\n`,
    );
    console.log('1. Overhead (all servers fast)');
    console.log(loadTable(phase1, 'dispatcher', 'requests'));
    console.log(`QPS ratio shoal / BalancedPool = ${qpsRatio.toFixed(3)} (target >= 0.97)`);
    console.log(`CPU per call ratio shoal / BalancedPool = ${cpuRatio.toFixed(3)}\n`);
    console.log(
      `2. One server adds 50 ms to 20 % of its responses (offered load ${rate}/s, up to ${concurrency} in flight)`,
    );
    console.log(loadTable(passes, 'dispatcher', 'requests'));
    console.log('averaged over both passes:');
    console.log(loadTable(phase2, 'dispatcher', 'requests'));
    console.log(`p99 ratio shoal peak_ewma / BalancedPool = ${ewmaRatio.toFixed(3)} (target <= 0.333)`);
    console.log(`p99 ratio shoal least_request / BalancedPool = ${lrRatio.toFixed(3)}\n`);
    console.log(
      JSON.stringify({
        bench: 'http',
        quick,
        durationMs,
        concurrency,
        overhead: {
          balancedPoolQps: Math.round(avg('undici BalancedPool', 'qps')),
          shoalRoundRobinQps: Math.round(avg('shoal round_robin (consul)', 'qps')),
          qpsRatio: Number(qpsRatio.toFixed(3)),
          balancedPoolCpuUsPerCall: Number(avg('undici BalancedPool', 'cpuUsPerCall').toFixed(2)),
          shoalRoundRobinCpuUsPerCall: Number(avg('shoal round_robin (consul)', 'cpuUsPerCall').toFixed(2)),
          cpuPerCallRatio: Number(cpuRatio.toFixed(3)),
          balancedPoolP99Ms: Number(avg('undici BalancedPool', 'p99Ms').toFixed(3)),
          shoalRoundRobinP99Ms: Number(avg('shoal round_robin (consul)', 'p99Ms').toFixed(3)),
          target: 0.97,
          met: qpsRatio >= 0.97,
        },
        slowServer: {
          offeredRate: rate,
          runs: phase2.map((r) => ({
            name: r.name,
            slowShare: Number((r.slowShare ?? 0).toFixed(4)),
            qps: Math.round(r.qps),
            p50Ms: Number(r.p50Ms.toFixed(3)),
            p99Ms: Number(r.p99Ms.toFixed(3)),
            errors: r.errors,
          })),
          peakEwmaP99Ratio: Number(ewmaRatio.toFixed(3)),
          leastRequestP99Ratio: Number(lrRatio.toFixed(3)),
          target: 1 / 3,
          met: ewmaRatio <= 1 / 3,
        },
      }),
    );
  } finally {
    await Promise.all(dispatchers.map((d) => d.close()));
    await Promise.all(registrations.map((r) => r.close().catch(() => undefined)));
    await consul.close();
  }
}

if (process.argv[2] === '--servers') await serve();
else await main();
