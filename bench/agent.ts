/**
 * Agent overhead benchmark: a node:http hello-world server, with and without @shoal/agent (HTTP instrumentation,
 * event-loop/CPU sampling, /metrics, and a live report stream to a real gRPC coordinator), driven by autocannon
 * from this (separate) process at 64 connections. Runs alternate in ABBA order over at least 3 pairs; the
 * figures are medians of the per-pair ratios.
 *
 *   npm run bench:agent                 # 3 pairs x 10 s per run
 *   npm run bench:agent -- --quick      # 3 pairs x 3 s per run
 *   npm run bench:agent -- --pairs 5 --duration 10
 *
 * The last line of output is one JSON object with every figure.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Agent } from '@shoal/agent';
import type { CoordinatorHandlers } from '@shoal/protocol';

// Heavy modules (grpc-js, prom-client, the agent) are imported dynamically, so the baseline server process does
// not load them and the RSS difference includes what loading the agent costs.

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p99: number; p50: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;

const BODY = 'hello world\n';

// ---------------------------------------------------------------------------------------------------------------
// Server role (child process)
// ---------------------------------------------------------------------------------------------------------------

async function serve(withAgent: boolean, coordinatorUrl: string | undefined): Promise<void> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(BODY);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let agent: Agent | undefined;
  if (withAgent) {
    const { createAgent } = await import('@shoal/agent');
    const { Registry } = await import('prom-client');
    agent = createAgent({
      service: 'bench',
      port,
      address: '127.0.0.1',
      registry: new Registry(),
      reportIntervalMs: 1000,
      ...(coordinatorUrl ? { coordinator: { url: coordinatorUrl, token: 'bench' } } : {}),
      onDrained: () => {},
    });
    agent.instrumentHttpServer(server);
    agent.gauge('queue_depth', () => 0);
    await agent.start();
  }
  const send = (message: unknown) => process.send?.(message);
  process.on('message', (message: { cmd: string }) => {
    if (message.cmd === 'stats') {
      send({
        rss: process.memoryUsage().rss,
        reports: agent?.coordinatorStatus()?.sent ?? 0,
        connected: agent?.coordinatorStatus()?.connected ?? false,
      });
    } else if (message.cmd === 'load-modules') {
      // Baseline only: what loading the agent's code (and its dependencies, and the parsed proto) costs.
      void (async () => {
        const grpc = await import('@grpc/grpc-js');
        await import('prom-client');
        await import('@shoal/agent');
        (await import('@shoal/protocol')).loadCoordinatorService(grpc);
        await new Promise((resolve) => setTimeout(resolve, 200));
        send({ rss: process.memoryUsage().rss });
      })();
    } else if (message.cmd === 'exit') {
      void (agent?.close() ?? Promise.resolve()).finally(() => process.exit(0));
    }
  });
  send({ ready: true, port });
}

// ---------------------------------------------------------------------------------------------------------------
// Driver role (this process)
// ---------------------------------------------------------------------------------------------------------------

function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number, got ${process.argv[i + 1]}`);
  return v;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function request<T>(child: ChildProcess, cmd: string): Promise<T> {
  return new Promise<T>((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send({ cmd });
  });
}

async function startCoordinator(): Promise<{ url: string; reports: () => number; close: () => void }> {
  const grpc = await import('@grpc/grpc-js');
  const { COORDINATOR_CHANNEL_OPTIONS, loadCoordinatorService } = await import('@shoal/protocol');
  const { CoordinatorService } = loadCoordinatorService(grpc);
  let reports = 0;
  const handlers: CoordinatorHandlers = {
    connect(call) {
      call.on('data', (m) => {
        if (m.msg === 'hello') call.write({ directive: { reportIntervalMs: 1000 } });
        else reports++;
      });
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
    report(_call, cb) {
      cb(null, {});
    },
  };
  const server = new grpc.Server(COORDINATOR_CHANNEL_OPTIONS);
  server.addService(CoordinatorService, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { url: `127.0.0.1:${port}`, reports: () => reports, close: () => server.forceShutdown() };
}

interface Run {
  mode: 'baseline' | 'agent';
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  rssMb: number;
  reports: number;
  /** Baseline only: RSS after also loading the agent's modules. */
  rssWithModulesMb?: number;
}

async function runOnce(
  autocannon: Autocannon,
  withAgent: boolean,
  coordinatorUrl: string,
  durationS: number,
  warmupS: number,
): Promise<Run> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', withAgent ? '--agent' : '--plain', coordinatorUrl], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const { port } = await new Promise<{ port: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { port: number }));
      child.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    });
    const url = `http://127.0.0.1:${port}/`;
    await autocannon({ url, connections: 64, duration: warmupS });
    const result = await autocannon({ url, connections: 64, duration: durationS });
    const stats = await request<{ rss: number; reports: number }>(child, 'stats');
    const withModules = withAgent ? undefined : await request<{ rss: number }>(child, 'load-modules');
    return {
      ...(withModules ? { rssWithModulesMb: withModules.rss / 1024 / 1024 } : {}),
      mode: withAgent ? 'agent' : 'baseline',
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      errors: result.errors + result.timeouts + result.non2xx,
      rssMb: stats.rss / 1024 / 1024,
      reports: stats.reports,
    };
  } finally {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) child.send({ cmd: 'exit' });
    const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(kill);
  }
}

/**
 * In-process cost of the HTTP instrumentation per request (wrapper + counting + histogram), in nanoseconds: far
 * less noisy than the end-to-end figures on a shared machine. Request/response are minimal emitters.
 */
async function instrumentationCostNs(): Promise<number> {
  const { createAgent } = await import('@shoal/agent');
  const { Registry } = await import('prom-client');
  const agent = createAgent({
    service: 'micro',
    port: 1,
    address: '127.0.0.1',
    registry: new Registry(),
    onDrained: () => {},
  });
  type Fake = EventEmitter & { statusCode: number; writableFinished: boolean };
  const handler = (_req: unknown, res: Fake) => {
    res.writableFinished = true;
  };
  const wrapped = agent.httpListener(handler as unknown as http.RequestListener);
  const one = (fn: (req: unknown, res: unknown) => void) => {
    const req = new EventEmitter();
    const res = Object.assign(new EventEmitter(), { statusCode: 200, writableFinished: false });
    fn(req, res);
    res.emit('close');
  };
  const time = (fn: (req: unknown, res: unknown) => void, n: number) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) one(fn);
    return Number(process.hrtime.bigint() - t0) / n;
  };
  const n = 200_000;
  time(handler as never, n); // warm up both paths
  time(wrapped as never, n);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) samples.push(time(wrapped as never, n) - time(handler as never, n));
  await agent.close();
  return median(samples);
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const pairs = Math.max(3, Math.floor(argValue('--pairs', quick ? 3 : 5)));
  const durationS = argValue('--duration', quick ? 3 : 10);
  const warmupS = quick ? 1 : 2;
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const costNs = await instrumentationCostNs();
  const coordinator = await startCoordinator();
  const runs: Array<{ baseline: Run; agent: Run }> = [];
  console.log(
    `agent overhead: node:http hello world, autocannon 64 connections, ${durationS} s per run, ${pairs} pairs`,
  );
  try {
    for (let i = 0; i < pairs; i++) {
      // ABBA: alternate which mode goes first so drift on a shared machine does not favour one side.
      const order = i % 2 === 0 ? [false, true] : [true, false];
      const pair: Partial<Record<'baseline' | 'agent', Run>> = {};
      for (const withAgent of order) {
        const run = await runOnce(autocannon, withAgent, coordinator.url, durationS, warmupS);
        pair[run.mode] = run;
        console.log(
          `  pair ${i + 1} ${run.mode.padEnd(8)} ${run.rps.toFixed(0).padStart(7)} req/s  p50 ${run.p50.toFixed(2)} ms  p99 ${run.p99.toFixed(2)} ms  rss ${run.rssMb.toFixed(1)} MB  errors ${run.errors}${run.mode === 'agent' ? `  reports sent ${run.reports}` : ''}`,
        );
      }
      runs.push(pair as { baseline: Run; agent: Run });
    }
  } finally {
    coordinator.close();
  }
  const throughputRatio = median(runs.map((p) => p.agent.rps / p.baseline.rps));
  const p99Ratio = median(runs.map((p) => p.agent.p99 / p.baseline.p99));
  const rssOverheadMb = median(runs.map((p) => p.agent.rssMb - p.baseline.rssMb));
  const moduleLoadMb = median(runs.map((p) => p.baseline.rssWithModulesMb! - p.baseline.rssMb));
  const figures = {
    bench: 'agent',
    quick,
    pairs,
    durationS,
    connections: 64,
    baselineRps: median(runs.map((p) => p.baseline.rps)),
    agentRps: median(runs.map((p) => p.agent.rps)),
    baselineP99Ms: median(runs.map((p) => p.baseline.p99)),
    agentP99Ms: median(runs.map((p) => p.agent.p99)),
    baselineRssMb: median(runs.map((p) => p.baseline.rssMb)),
    agentRssMb: median(runs.map((p) => p.agent.rssMb)),
    throughputRatio,
    p99Ratio,
    rssOverheadMb,
    moduleLoadMb,
    rssOverheadExcludingModulesMb: rssOverheadMb - moduleLoadMb,
    instrumentationNsPerRequest: costNs,
    errors: runs.reduce((n, p) => n + p.baseline.errors + p.agent.errors, 0),
    reportsReceived: coordinator.reports(),
    targets: { throughputRatio: '>= 0.97', p99Ratio: '<= 1.05', rssOverheadMb: '< 10' },
    met: { throughputRatio: throughputRatio >= 0.97, p99Ratio: p99Ratio <= 1.05, rssOverheadMb: rssOverheadMb < 10 },
  };
  const row = (name: string, base: string, agent: string, ratio: string, target: string) =>
    console.log(`${name.padEnd(18)}${base.padStart(12)}${agent.padStart(12)}${ratio.padStart(10)}   ${target}`);
  console.log('');
  row('median', 'baseline', 'agent', 'ratio', 'target');
  row(
    'throughput req/s',
    figures.baselineRps.toFixed(0),
    figures.agentRps.toFixed(0),
    throughputRatio.toFixed(3),
    '>= 0.97',
  );
  row(
    'p99 latency ms',
    figures.baselineP99Ms.toFixed(2),
    figures.agentP99Ms.toFixed(2),
    p99Ratio.toFixed(3),
    '<= 1.05',
  );
  row(
    'RSS MB',
    figures.baselineRssMb.toFixed(1),
    figures.agentRssMb.toFixed(1),
    `+${rssOverheadMb.toFixed(1)}`,
    '< 10 MB',
  );
  console.log(
    `of which loading grpc-js, prom-client, the agent and the proto: +${moduleLoadMb.toFixed(1)} MB; the running agent: +${(rssOverheadMb - moduleLoadMb).toFixed(1)} MB`,
  );
  console.log(`HTTP instrumentation cost in process: ${costNs.toFixed(0)} ns per request (median of 5 x 200k)`);
  console.log(JSON.stringify(figures));
}

if (process.argv.includes('--serve')) {
  await serve(process.argv.includes('--agent'), process.argv[process.argv.indexOf('--serve') + 2]);
} else {
  await main();
}
