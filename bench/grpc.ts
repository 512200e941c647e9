/**
 * bench:grpc — Shoal's gRPC balancing against grpc-js's built-in round_robin, in one run.
 *
 *   npm run bench:grpc            (full: ~2 min)
 *   node --import tsx bench/grpc.ts --quick
 *
 * 1. Overhead: unary echo, 4 local servers (in one child process, so their CPU is not the client's), 64 calls in
 *    flight. `consul:///` target + `shoal_round_robin` vs the built-in `round_robin` on a static `ipv4:` target.
 *    Target: QPS ratio >= 0.97.
 * 2. A slow server: the same servers, one of which adds 50 ms to 20 % of its calls. p99 of `shoal_peak_ewma` and
 *    `shoal_least_request` vs `round_robin`, at a fixed offered rate (`--rate=1500` calls/s, 64 workers) so the
 *    latency is the servers' and not a saturated client's queue. Target: shoal_peak_ewma p99 <= 1/3 of round_robin's.
 *    `--decay-ms=N` adds a row: shoal_peak_ewma with `strategyOptions.decayMs` = N. A row with
 *    `strategyOptions.sampleWindow: 0` (Finagle's time-only EWMA decay) is always there, for comparison.
 *    `--caller-pauses` makes this client process pause now and then during part 2 (a seeded, heavy-tailed busy
 *    wait every 100 ms: 3-10 ms mostly, 10-30 ms in 25 %, 40-80 ms in 5 %), as a loaded machine does.
 *
 * The last line printed is one JSON object with every figure.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { ServiceRegistration } from '@shoal/consul';
import { startConsulDev } from '@shoal/consul-dev';
import { createClient, register } from '@shoal/grpc';
import type { ShoalPolicyName } from '@shoal/grpc';
import { averageRuns, loadResult, loadTable, type LoadResult } from './support/load-results.js';
import { announcePortsAndWait, startServers as startServerChild, stopServers } from './support/server-child.js';

const identity = (b: Buffer) => b;
const ECHO = {
  echo: {
    path: '/bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(ECHO, 'bench.Echo');
type Client = InstanceType<typeof EchoClient>;

// ---------------------------------------------------------------------------------------------------------------
// Server role: `bench/grpc.ts --servers <n> [slowMs] [slowFraction]` starts n servers (the first one slow when asked)
// and prints their ports as JSON.
async function serve(): Promise<void> {
  const n = Number(process.argv[3]);
  const slowMs = Number(process.argv[4] ?? 0);
  const slowFraction = Number(process.argv[5] ?? 0);
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const server = new grpc.Server();
    const slow = i === 0 && slowMs > 0;
    server.addService(ECHO, {
      echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        // The reply is the server's index, so the client can count where its calls went.
        const reply = Buffer.from([i]);
        if (slow && Math.random() < slowFraction) setTimeout(() => cb(null, reply), slowMs);
        else cb(null, reply);
      },
    });
    ports.push(
      await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
          e ? reject(e) : resolve(p),
        ),
      ),
    );
  }
  announcePortsAndWait(ports);
}

// ---------------------------------------------------------------------------------------------------------------
const startServers = (n: number, slowMs = 0, slowFraction = 0) =>
  startServerChild(fileURLToPath(import.meta.url), n, slowMs, slowFraction);

/** One unary call; resolves with the index of the server that answered. */
function call(client: Client, payload: Buffer): Promise<number> {
  return new Promise((resolve, reject) =>
    (client as unknown as Record<string, (...a: unknown[]) => void>).echo!(
      payload,
      (err: Error | null, reply: Buffer) => (err ? reject(err) : resolve(reply[0] ?? -1)),
    ),
  );
}

async function measure(name: string, client: Client, durationMs: number, concurrency: number): Promise<LoadResult> {
  const payload = Buffer.from('hello shoal');
  // Warm up: connect every subchannel and let the balancer see some latency.
  const warmEnd = performance.now() + Math.min(1000, durationMs / 4);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < warmEnd) await call(client, payload).catch(() => undefined);
    }),
  );
  const latencies: number[] = [];
  let errors = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          await call(client, payload);
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = performance.now() - start;
  return loadResult(name, latencies, elapsed, errors, undefined, process.cpuUsage(cpuStart));
}

/**
 * Offered load at a fixed rate (spread over `concurrency` workers), so latency reflects the servers and not a
 * saturated client queue: what a tail-latency comparison needs.
 */
async function measurePaced(
  name: string,
  client: Client,
  durationMs: number,
  concurrency: number,
  rate: number,
): Promise<LoadResult> {
  const payload = Buffer.from('hello shoal');
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const run = async (
    ms: number,
    record: boolean,
    latencies: number[],
    counters: { errors: number; toSlow: number },
  ) => {
    const interval = (concurrency * 1000) / rate;
    const start = performance.now();
    const end = start + ms;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, w) => {
        let next = start + (w * interval) / concurrency;
        while (next < end) {
          const wait = next - performance.now();
          if (wait > 0) await sleep(wait);
          next += interval;
          const t = performance.now();
          try {
            const server = await call(client, payload);
            if (record) {
              latencies.push(performance.now() - t);
              if (server === 0) counters.toSlow++;
            }
          } catch {
            counters.errors++;
          }
        }
      }),
    );
    return performance.now() - start;
  };
  await run(Math.min(2000, durationMs / 3), false, [], { errors: 0, toSlow: 0 });
  const latencies: number[] = [];
  const counters = { errors: 0, toSlow: 0 };
  const cpuStart = process.cpuUsage();
  const elapsed = await run(durationMs, true, latencies, counters);
  return loadResult(name, latencies, elapsed, counters.errors, counters.toSlow, process.cpuUsage(cpuStart));
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const durationMs = quick ? 2000 : 6000;
  const rounds = quick ? 2 : 4;
  const concurrency = 64;
  const rate = Number(process.argv.find((a) => a.startsWith('--rate='))?.slice(7) ?? 1500);
  // `--decay-ms=N` adds a row: shoal_peak_ewma with strategyOptions.decayMs = N (default decay: 10 s).
  const decayArg = process.argv.find((a) => a.startsWith('--decay-ms='))?.slice(11);
  const decayMs = decayArg === undefined ? undefined : Number(decayArg);
  const callerPauses = process.argv.includes('--caller-pauses');
  const consul = await startConsulDev({ port: 0 });
  register({ consul: { url: consul.url }, registry: new Registry() });
  const registrations: ServiceRegistration[] = [];
  const clients: Client[] = [];

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

  function builtin(ports: number[]): Client {
    const c = new EchoClient(
      `ipv4:///${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
      grpc.credentials.createInsecure(),
      {
        'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
      },
    );
    clients.push(c);
    return c;
  }

  function shoal(service: string, policy: ShoalPolicyName, strategyOptions?: Record<string, unknown>): Client {
    const c = createClient(EchoClient, `consul:///${service}`, {
      policy,
      policyConfig: { slowStart: false, ...(strategyOptions ? { strategyOptions } : {}) },
    });
    clients.push(c);
    return c;
  }

  try {
    // Phase 1: overhead.
    const fast = await startServers(4);
    await registerAll('echo', fast.ports);
    const rr = builtin(fast.ports);
    const srr = shoal('echo', 'shoal_round_robin');
    // Warm both up (JIT, connections) before anything is recorded, then alternate the order of the runs.
    await measure('warm-up', rr, 1500, concurrency);
    await measure('warm-up', srr, 1500, concurrency);
    const phase1: LoadResult[] = [];
    for (let round = 0; round < rounds; round++) {
      const pair: Array<[string, Client]> = [
        ['grpc-js round_robin (ipv4:)', rr],
        ['shoal_round_robin (consul:)', srr],
      ];
      if (round % 2 === 1) pair.reverse();
      for (const [name, c] of pair) phase1.push(await measure(name, c, durationMs, concurrency));
    }
    await stopServers(fast.child);
    const avg = (name: string, key: 'qps' | 'p50Ms' | 'p99Ms' | 'cpuUsPerCall') => {
      const rows = phase1.filter((r) => r.name === name);
      return rows.reduce((s, r) => s + r[key], 0) / rows.length;
    };
    const rrName = 'grpc-js round_robin (ipv4:)';
    const srrName = 'shoal_round_robin (consul:)';
    const qpsRatio = avg(srrName, 'qps') / avg(rrName, 'qps');
    const cpuRatio = avg(srrName, 'cpuUsPerCall') / avg(rrName, 'cpuUsPerCall');

    // Phase 2: one slow server (50 ms on 20 % of its calls).
    const slow = await startServers(4, 50, 0.2);
    await registerAll('echo-slow', slow.ports);
    const phase2: LoadResult[] = [];
    const slowClients: Array<[string, Client]> = [
      ['grpc-js round_robin (ipv4:)', builtin(slow.ports)],
      ['shoal_round_robin', shoal('echo-slow', 'shoal_round_robin')],
      ['shoal_peak_ewma', shoal('echo-slow', 'shoal_peak_ewma')],
      ['shoal_least_request', shoal('echo-slow', 'shoal_least_request')],
      ['shoal_peak_ewma sampleWindow=0', shoal('echo-slow', 'shoal_peak_ewma', { sampleWindow: 0 })],
    ];
    if (decayMs !== undefined) {
      slowClients.push([`shoal_peak_ewma decayMs=${decayMs}`, shoal('echo-slow', 'shoal_peak_ewma', { decayMs })]);
    }
    let seed = 20261125;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const pauses = callerPauses
      ? setInterval(() => {
          const u = random();
          const ms = u < 0.7 ? 3 + 7 * random() : u < 0.95 ? 10 + 20 * random() : 40 + 40 * random();
          const until = performance.now() + ms;
          while (performance.now() < until) {
            // busy: the event loop is blocked, as under GC or a busy CPU
          }
        }, 100)
      : undefined;
    // An unrecorded pass first: connections, JIT and each balancer's first latency samples.
    for (const [name, c] of slowClients) await measurePaced(name, c, Math.min(1000, durationMs / 2), concurrency, rate);
    // Two passes in opposite orders (ABCD, DCBA), averaged, so a drift in machine load favours nobody.
    const passes: LoadResult[] = [];
    for (const order of [slowClients, [...slowClients].reverse()]) {
      for (const [name, c] of order) passes.push(await measurePaced(name, c, durationMs, concurrency, rate));
    }
    if (pauses) clearInterval(pauses);
    for (const [name] of slowClients) phase2.push(averageRuns(passes.filter((r) => r.name === name)));
    await stopServers(slow.child);
    const rrP99 = phase2[0]!.p99Ms;
    const ewmaRatio = phase2[2]!.p99Ms / rrP99;
    const lrRatio = phase2[3]!.p99Ms / rrP99;
    const timeOnlyRatio = phase2[4]!.p99Ms / rrP99;
    const tunedRatio = phase2[5] ? phase2[5].p99Ms / rrP99 : undefined;

    console.log(
      `\nbench:grpc — unary echo, 4 servers, ${concurrency} in flight, ${durationMs / 1000} s per run${quick ? ' (quick)' : ''}\n`,
    );
    console.log('1. Overhead (all servers fast)');
    console.log(loadTable(phase1, 'client', 'calls'));
    console.log(`QPS ratio shoal_round_robin / round_robin = ${qpsRatio.toFixed(3)} (target >= 0.97)`);
    console.log(`CPU per call ratio shoal_round_robin / round_robin = ${cpuRatio.toFixed(3)}\n`);
    console.log(
      `2. One server adds 50 ms to 20 % of its calls (offered load ${rate} calls/s, up to ${concurrency} in flight)` +
        (callerPauses ? ', with caller pauses' : ''),
    );
    console.log(loadTable(passes, 'client', 'calls'));
    console.log('averaged over both passes:');
    console.log(loadTable(phase2, 'client', 'calls'));
    console.log(`p99 ratio shoal_peak_ewma / round_robin = ${ewmaRatio.toFixed(3)} (target <= 0.333)`);
    console.log(`p99 ratio shoal_least_request / round_robin = ${lrRatio.toFixed(3)}`);
    console.log(`p99 ratio shoal_peak_ewma sampleWindow=0 / round_robin = ${timeOnlyRatio.toFixed(3)}`);
    if (tunedRatio !== undefined) {
      console.log(`p99 ratio shoal_peak_ewma decayMs=${decayMs} / round_robin = ${tunedRatio.toFixed(3)}`);
    }
    console.log('');
    console.log(
      JSON.stringify({
        bench: 'grpc',
        quick,
        durationMs,
        concurrency,
        overhead: {
          roundRobinQps: Math.round(avg(rrName, 'qps')),
          shoalRoundRobinQps: Math.round(avg(srrName, 'qps')),
          qpsRatio: Number(qpsRatio.toFixed(3)),
          roundRobinCpuUsPerCall: Number(avg(rrName, 'cpuUsPerCall').toFixed(2)),
          shoalRoundRobinCpuUsPerCall: Number(avg(srrName, 'cpuUsPerCall').toFixed(2)),
          cpuPerCallRatio: Number(cpuRatio.toFixed(3)),
          roundRobinP50Ms: Number(avg(rrName, 'p50Ms').toFixed(3)),
          roundRobinP99Ms: Number(avg(rrName, 'p99Ms').toFixed(3)),
          shoalRoundRobinP50Ms: Number(avg(srrName, 'p50Ms').toFixed(3)),
          shoalRoundRobinP99Ms: Number(avg(srrName, 'p99Ms').toFixed(3)),
          target: 0.97,
          met: qpsRatio >= 0.97,
        },
        slowServer: {
          offeredRate: rate,
          callerPauses,
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
          peakEwmaTimeOnlyP99Ratio: Number(timeOnlyRatio.toFixed(3)),
          ...(tunedRatio !== undefined
            ? { peakEwmaTunedDecayMs: decayMs, peakEwmaTunedP99Ratio: Number(tunedRatio.toFixed(3)) }
            : {}),
          target: 1 / 3,
          met: ewmaRatio <= 1 / 3,
        },
      }),
    );
  } finally {
    for (const c of clients) c.close();
    await Promise.all(registrations.map((r) => r.close().catch(() => undefined)));
    await consul.close();
  }
}

if (process.argv[2] === '--servers') await serve();
else await main();
