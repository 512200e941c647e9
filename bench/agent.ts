/**
 * Agent overhead benchmark: a node:http hello-world server, with and without @shoal/agent (HTTP instrumentation,
 * event-loop/CPU sampling, /metrics registry, and a live report stream to a real gRPC coordinator), driven by
 * autocannon from this (separate) process at 64 connections.
 *
 * Each round runs three servers, in rotating order so drift on a shared machine favours none:
 *   baseline  the plain server;
 *   modules   the plain server that also imported the agent's code (grpc-js, prom-client, protobufjs, the proto)
 *             without using it — separates "loading the code" from "running the agent" in the memory figures;
 *   agent     the server instrumented by a running agent.
 * Figures are medians over rounds of per-round ratios (agent vs baseline).
 *
 *   npm run bench:agent                    # 3 rounds x 10 s per run  (~2 min)
 *   npm run bench:agent -- --quick         # 3 rounds x 3 s per run
 *   npm run bench:agent -- --rounds 5 --duration 10
 *
 * The last line of output is one JSON object with every figure.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics } from 'node:v8';
import type { Agent } from '@shoal/agent';
import type { CoordinatorHandlers } from '@shoal/protocol';

// Heavy modules (grpc-js, prom-client, the agent) are imported dynamically, so the baseline server process does
// not load them.

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p99: number; p50: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
type Mode = 'baseline' | 'modules' | 'agent';
const MODES: readonly Mode[] = ['baseline', 'modules', 'agent'];

const BODY = 'hello world\n';

// ---------------------------------------------------------------------------------------------------------------
// Server role (child process)
// ---------------------------------------------------------------------------------------------------------------

async function serve(mode: Mode, coordinatorUrl: string): Promise<void> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(BODY);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let agent: Agent | undefined;
  if (mode !== 'baseline') {
    const grpc = await import('@grpc/grpc-js');
    const { Registry } = await import('prom-client');
    const { createAgent } = await import('@shoal/agent');
    (await import('@shoal/protocol')).loadCoordinatorService(grpc);
    if (mode === 'agent') {
      agent = createAgent({
        service: 'bench',
        port,
        address: '127.0.0.1',
        registry: new Registry(),
        reportIntervalMs: 1000,
        coordinator: { url: coordinatorUrl, token: 'bench' },
        onDrained: () => {},
      });
      agent.instrumentHttpServer(server);
      agent.gauge('queue_depth', () => 0);
      await agent.start();
    }
  }
  const send = (message: unknown) => process.send?.(message);
  let cpuMark = process.cpuUsage();
  // Memory is read after full collections (the child runs with --expose-gc): retained memory, not garbage.
  const collectGarbage = () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
  };
  process.on('message', (message: { cmd: string }) => {
    if (message.cmd === 'mark') {
      cpuMark = process.cpuUsage();
      send({ marked: true });
    } else if (message.cmd === 'stats') {
      const cpu = process.cpuUsage(cpuMark);
      collectGarbage();
      send({
        cpuMicros: cpu.user + cpu.system,
        rss: process.memoryUsage().rss,
        heapUsed: process.memoryUsage().heapUsed,
        youngGen: getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')?.space_size ?? 0,
        reports: agent?.coordinatorStatus()?.sent ?? 0,
      });
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
  mode: Mode;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Server CPU time per request served, microseconds (less sensitive to a busy machine than req/s). */
  cpuUsPerRequest: number;
  rssMb: number;
  heapUsedMb: number;
  youngGenMb: number;
  reports: number;
}

async function runOnce(
  autocannon: Autocannon,
  mode: Mode,
  coordinatorUrl: string,
  durationS: number,
  warmupS: number,
): Promise<Run> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', mode, coordinatorUrl], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [...process.execArgv, '--expose-gc'],
  });
  try {
    const { port } = await new Promise<{ port: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { port: number }));
      child.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    });
    const url = `http://127.0.0.1:${port}/`;
    await autocannon({ url, connections: 64, duration: warmupS });
    await request(child, 'mark');
    const result = await autocannon({ url, connections: 64, duration: durationS });
    const stats = await request<{
      cpuMicros: number;
      rss: number;
      heapUsed: number;
      youngGen: number;
      reports: number;
    }>(child, 'stats');
    const mb = (bytes: number) => bytes / 1024 / 1024;
    return {
      mode,
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      errors: result.errors + result.timeouts + result.non2xx,
      cpuUsPerRequest: stats.cpuMicros / Math.max(1, result.requests.total),
      rssMb: mb(stats.rss),
      heapUsedMb: mb(stats.heapUsed),
      youngGenMb: mb(stats.youngGen),
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
 * In-process cost of the HTTP instrumentation per request (wrapper + counting), in nanoseconds: far less noisy
 * than the end-to-end figures on a shared machine. Requests and responses are minimal emitters.
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
  const rounds = Math.max(3, Math.floor(argValue('--rounds', 3)));
  const durationS = argValue('--duration', quick ? 3 : 10);
  const warmupS = quick ? 1 : 2;
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const costNs = await instrumentationCostNs();
  const coordinator = await startCoordinator();
  const runs: Array<Record<Mode, Run>> = [];
  console.log(
    `agent overhead: node:http hello world, autocannon 64 connections, ${durationS} s per run, ${rounds} rounds`,
  );
  try {
    for (let i = 0; i < rounds; i++) {
      const round: Partial<Record<Mode, Run>> = {};
      for (let k = 0; k < MODES.length; k++) {
        const mode = MODES[(i + k) % MODES.length]!; // rotate the order round by round
        const run = await runOnce(autocannon, mode, coordinator.url, durationS, warmupS);
        round[mode] = run;
        console.log(
          `  round ${i + 1} ${mode.padEnd(8)} ${run.rps.toFixed(0).padStart(7)} req/s  cpu ${run.cpuUsPerRequest.toFixed(1)} us/req  p50 ${run.p50.toFixed(0)} ms  p99 ${run.p99.toFixed(0)} ms  rss ${run.rssMb.toFixed(1)} MB (heap ${run.heapUsedMb.toFixed(1)}, young gen ${run.youngGenMb.toFixed(0)})  errors ${run.errors}${mode === 'agent' ? `  reports ${run.reports}` : ''}`,
        );
      }
      runs.push(round as Record<Mode, Run>);
    }
  } finally {
    coordinator.close();
  }
  const med = (f: (r: Record<Mode, Run>) => number) => median(runs.map(f));
  const throughputRatio = med((r) => r.agent.rps / r.baseline.rps);
  const p99Ratio = med((r) => r.agent.p99 / r.baseline.p99);
  const cpuPerRequestRatio = med((r) => r.agent.cpuUsPerRequest / r.baseline.cpuUsPerRequest);
  const rssOverheadMb = med((r) => r.agent.rssMb - r.baseline.rssMb);
  const codeLoadMb = med((r) => r.modules.rssMb - r.baseline.rssMb);
  const runningAgentMb = med((r) => r.agent.rssMb - r.modules.rssMb);
  const figures = {
    bench: 'agent',
    quick,
    rounds,
    durationS,
    connections: 64,
    baselineRps: med((r) => r.baseline.rps),
    agentRps: med((r) => r.agent.rps),
    throughputRatio,
    baselineP99Ms: med((r) => r.baseline.p99),
    agentP99Ms: med((r) => r.agent.p99),
    p99Ratio,
    baselineCpuUsPerRequest: med((r) => r.baseline.cpuUsPerRequest),
    agentCpuUsPerRequest: med((r) => r.agent.cpuUsPerRequest),
    cpuPerRequestRatio,
    baselineRssMb: med((r) => r.baseline.rssMb),
    modulesRssMb: med((r) => r.modules.rssMb),
    agentRssMb: med((r) => r.agent.rssMb),
    rssOverheadMb,
    codeLoadMb,
    runningAgentMb,
    youngGenMb: {
      baseline: med((r) => r.baseline.youngGenMb),
      modules: med((r) => r.modules.youngGenMb),
      agent: med((r) => r.agent.youngGenMb),
    },
    instrumentationNsPerRequest: costNs,
    errors: runs.reduce((n, r) => n + r.baseline.errors + r.modules.errors + r.agent.errors, 0),
    reportsReceived: coordinator.reports(),
    targets: { throughputRatio: '>= 0.97', p99Ratio: '<= 1.05', rssOverheadMb: '< 10' },
    met: {
      throughputRatio: throughputRatio >= 0.97,
      p99Ratio: p99Ratio <= 1.05,
      rssOverheadMb: rssOverheadMb < 10,
      runningAgentMb: runningAgentMb < 10,
    },
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
    figures.baselineP99Ms.toFixed(0),
    figures.agentP99Ms.toFixed(0),
    p99Ratio.toFixed(3),
    '<= 1.05',
  );
  row(
    'CPU us/request',
    figures.baselineCpuUsPerRequest.toFixed(1),
    figures.agentCpuUsPerRequest.toFixed(1),
    cpuPerRequestRatio.toFixed(3),
    '(1/this = capacity ratio)',
  );
  row(
    'RSS MB',
    figures.baselineRssMb.toFixed(1),
    figures.agentRssMb.toFixed(1),
    `+${rssOverheadMb.toFixed(1)}`,
    '< 10 MB',
  );
  console.log(
    `RSS split: loading the agent's code (grpc-js, prom-client, protobufjs, proto) +${codeLoadMb.toFixed(1)} MB; running the agent +${runningAgentMb.toFixed(1)} MB`,
  );
  console.log(`HTTP instrumentation cost in process: ${costNs.toFixed(0)} ns per request (median of 5 x 200k)`);
  console.log(JSON.stringify(figures));
}

if (process.argv.includes('--serve')) {
  const i = process.argv.indexOf('--serve');
  await serve(process.argv[i + 1] as Mode, process.argv[i + 2]!);
} else {
  await main();
}
