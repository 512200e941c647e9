/**
 * Agent overhead benchmark: a node:http hello-world server, with and without @shoal/agent (HTTP instrumentation,
 * event-loop/CPU sampling and a live report link to a real coordinator), driven by autocannon from this (separate)
 * process at 64 connections.
 *
 * Each round runs five servers, in an order that rotates from round to round so drift on a shared machine favours
 * none:
 *   baseline       the plain server;
 *   http           + an agent reporting over HTTP/JSON (POST /v1/report) to a real node:http coordinator endpoint
 *                  in this process that parses and validates every report with @shoal/protocol (the lighter
 *                  transport: no grpc-js, protobufjs or prom-client is loaded);
 *   grpc           + an agent reporting on a gRPC stream to a real gRPC coordinator (shoal.v1.Coordinator) in this
 *                  process;
 *   prom-baseline  the plain server of an application that already uses prom-client (a registry with the default
 *                  process metrics);
 *   prom-http      that application + an agent (HTTP transport) given the application's registry, so prom-client's
 *                  code is the application's and the agent adds only its own metrics.
 * Figures are medians over rounds of per-round comparisons: http and grpc against baseline, prom-http against
 * prom-baseline.
 *
 *   npm run bench:agent                    # 3 rounds x 7 s per run  (~2.5 min)
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

// Everything but node: builtins is imported dynamically, so a baseline server process loads none of it.

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p99: number; p50: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
const MODES = ['baseline', 'http', 'grpc', 'prom-baseline', 'prom-http'] as const;
type Mode = (typeof MODES)[number];

/** Each agent configuration and the server it is compared with. */
const CONFIGS = [
  { name: 'http', agent: 'http', base: 'baseline', what: 'agent, HTTP/JSON transport' },
  { name: 'grpc', agent: 'grpc', base: 'baseline', what: 'agent, gRPC stream transport' },
  { name: 'promHttp', agent: 'prom-http', base: 'prom-baseline', what: 'app has prom-client; agent, HTTP' },
] as const satisfies ReadonlyArray<{ name: string; agent: Mode; base: Mode; what: string }>;

const BODY = 'hello world\n';
const TOKEN = 'bench-token';

// ---------------------------------------------------------------------------------------------------------------
// Server role (child process)
// ---------------------------------------------------------------------------------------------------------------

async function serve(mode: Mode, grpcUrl: string, httpUrl: string): Promise<void> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(BODY);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let agent: Agent | undefined;
  let registry: unknown;
  if (mode === 'prom-baseline' || mode === 'prom-http') {
    const prom = await import('prom-client');
    const appRegistry = new prom.Registry();
    prom.collectDefaultMetrics({ register: appRegistry });
    registry = appRegistry;
  }
  if (mode === 'http' || mode === 'grpc' || mode === 'prom-http') {
    const { createAgent } = await import('@shoal/agent');
    agent = createAgent({
      service: 'bench',
      port,
      address: '127.0.0.1',
      reportIntervalMs: 1000,
      coordinator: { url: mode === 'grpc' ? grpcUrl : httpUrl, token: TOKEN },
      ...(registry !== undefined ? { registry: registry as never } : {}),
      onDrained: () => {},
    });
    agent.instrumentHttpServer(server);
    agent.gauge('queue_depth', () => 0);
    await agent.start();
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
      const memory = process.memoryUsage();
      send({
        cpuMicros: cpu.user + cpu.system,
        rss: memory.rss,
        heapUsed: memory.heapUsed,
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

interface TestCoordinator {
  url: string;
  reports: () => number;
  close: () => Promise<void>;
}

/** A real gRPC coordinator endpoint: shoal.v1.Coordinator from the shipped proto, answering a Hello with a directive. */
async function startGrpcCoordinator(): Promise<TestCoordinator> {
  const grpc = await import('@grpc/grpc-js');
  const { COORDINATOR_CHANNEL_OPTIONS, loadCoordinatorService, validateReport } = await import('@shoal/protocol');
  const { CoordinatorService } = loadCoordinatorService(grpc);
  let reports = 0;
  const handlers: CoordinatorHandlers = {
    connect(call) {
      call.on('data', (m) => {
        if (m.msg === 'hello') call.write({ directive: { reportIntervalMs: 1000 } });
        else if (m.report) {
          validateReport(m.report);
          reports++;
        }
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
  return { url: `grpc://127.0.0.1:${port}`, reports: () => reports, close: async () => server.forceShutdown() };
}

/**
 * A real HTTP/JSON coordinator endpoint: `POST /v1/report` checked (bearer token, content type) and parsed and
 * validated with @shoal/protocol's JSON mapping, answered with `responseToJson` (a directive on the first report).
 */
async function startHttpCoordinator(): Promise<TestCoordinator> {
  const { parseBearer, reportFromJson, responseToJson } = await import('@shoal/protocol');
  let reports = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/v1/report') return answer(404, { error: 'not found' });
      if (parseBearer(req.headers.authorization) !== TOKEN) return answer(401, { error: 'bad token' });
      try {
        reportFromJson(Buffer.concat(chunks));
      } catch (error) {
        return answer(400, { error: (error as Error).message });
      }
      reports++;
      answer(200, responseToJson(reports === 1 ? { directive: { reportIntervalMs: 1000 } } : {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    reports: () => reports,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
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
  urls: { grpc: string; http: string },
  durationS: number,
  warmupS: number,
): Promise<Run> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', mode, urls.grpc, urls.http], {
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
  const agent = createAgent({ service: 'micro', port: 1, address: '127.0.0.1', onDrained: () => {} });
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
  const durationS = argValue('--duration', quick ? 3 : 7);
  const warmupS = quick ? 1 : 1.5;
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const costNs = await instrumentationCostNs();
  const grpcCoordinator = await startGrpcCoordinator();
  const httpCoordinator = await startHttpCoordinator();
  const urls = { grpc: grpcCoordinator.url, http: httpCoordinator.url };
  const runs: Array<Record<Mode, Run>> = [];
  console.log(
    `agent overhead: node:http hello world, autocannon 64 connections, ${durationS} s per run, ${rounds} rounds`,
  );
  try {
    for (let i = 0; i < rounds; i++) {
      const round: Partial<Record<Mode, Run>> = {};
      for (let k = 0; k < MODES.length; k++) {
        const mode = MODES[(i + k) % MODES.length]!; // rotate the order round by round
        const run = await runOnce(autocannon, mode, urls, durationS, warmupS);
        round[mode] = run;
        console.log(
          `  round ${i + 1} ${mode.padEnd(13)} ${run.rps.toFixed(0).padStart(7)} req/s  cpu ${run.cpuUsPerRequest.toFixed(1)} us/req  p50 ${run.p50.toFixed(0)} ms  p99 ${run.p99.toFixed(0)} ms  rss ${run.rssMb.toFixed(1)} MB (heap ${run.heapUsedMb.toFixed(1)}, young gen ${run.youngGenMb.toFixed(0)})  errors ${run.errors}${run.reports > 0 ? `  reports ${run.reports}` : ''}`,
        );
      }
      runs.push(round as Record<Mode, Run>);
    }
  } finally {
    await grpcCoordinator.close();
    await httpCoordinator.close();
  }
  const med = (f: (r: Record<Mode, Run>) => number) => median(runs.map(f));
  const servers = Object.fromEntries(
    MODES.map((m) => [
      m,
      {
        rps: med((r) => r[m].rps),
        p99Ms: med((r) => r[m].p99),
        cpuUsPerRequest: med((r) => r[m].cpuUsPerRequest),
        rssMb: med((r) => r[m].rssMb),
        youngGenMb: med((r) => r[m].youngGenMb),
      },
    ]),
  );
  const configs = Object.fromEntries(
    CONFIGS.map((c) => {
      const throughputRatio = med((r) => r[c.agent].rps / r[c.base].rps);
      const p99Ratio = med((r) => r[c.agent].p99 / r[c.base].p99);
      const rssOverheadMb = med((r) => r[c.agent].rssMb - r[c.base].rssMb);
      // RSS less the young generation's reserved size, which V8 sizes to the allocation rate (16 or 32 MB here)
      // whatever runs in the process: the steadier view of what the agent itself keeps.
      const rssOverheadExclYoungGenMb = med(
        (r) => r[c.agent].rssMb - r[c.agent].youngGenMb - (r[c.base].rssMb - r[c.base].youngGenMb),
      );
      const cpuPerRequestRatio = med((r) => r[c.agent].cpuUsPerRequest / r[c.base].cpuUsPerRequest);
      return [
        c.name,
        {
          against: c.base,
          throughputRatio,
          p99Ratio,
          cpuPerRequestRatio,
          rssOverheadMb,
          rssOverheadExclYoungGenMb,
          met: {
            throughputRatio: throughputRatio >= 0.97,
            p99Ratio: p99Ratio <= 1.05,
            rssOverheadMb: rssOverheadMb < 10,
          },
        },
      ];
    }),
  ) as Record<
    (typeof CONFIGS)[number]['name'],
    {
      against: Mode;
      throughputRatio: number;
      p99Ratio: number;
      cpuPerRequestRatio: number;
      rssOverheadMb: number;
      rssOverheadExclYoungGenMb: number;
      met: { throughputRatio: boolean; p99Ratio: boolean; rssOverheadMb: boolean };
    }
  >;
  const figures = {
    bench: 'agent',
    quick,
    rounds,
    durationS,
    connections: 64,
    servers,
    configs,
    instrumentationNsPerRequest: costNs,
    errors: runs.reduce((n, r) => n + MODES.reduce((m, mode) => m + r[mode].errors, 0), 0),
    reportsReceived: { http: httpCoordinator.reports(), grpc: grpcCoordinator.reports() },
    targets: { throughputRatio: '>= 0.97', p99Ratio: '<= 1.05', rssOverheadMb: '< 10' },
    met: Object.fromEntries(CONFIGS.map((c) => [c.name, Object.values(configs[c.name].met).every(Boolean)])),
  };
  const row = (cells: string[]) =>
    console.log(cells.map((c, i) => (i === 0 ? c.padEnd(44) : c.padStart(i === 5 ? 12 : 10))).join(''));
  console.log('');
  row(['median (vs its baseline)', 'req/s', 'thr ratio', 'p99 ratio', 'cpu ratio', 'RSS +MB', 'excl. young']);
  for (const c of CONFIGS) {
    const f = configs[c.name];
    row([
      `${c.name}: ${c.what}`,
      servers[c.agent]!.rps.toFixed(0),
      f.throughputRatio.toFixed(3),
      f.p99Ratio.toFixed(3),
      f.cpuPerRequestRatio.toFixed(3),
      `+${f.rssOverheadMb.toFixed(1)}`,
      `+${f.rssOverheadExclYoungGenMb.toFixed(1)}`,
    ]);
  }
  row(['targets', '', '>= 0.97', '<= 1.05', '', '< 10', '']);
  for (const m of MODES) {
    const s = servers[m]!;
    console.log(
      `  ${m.padEnd(13)} ${s.rps.toFixed(0).padStart(7)} req/s  p99 ${s.p99Ms.toFixed(0)} ms  cpu ${s.cpuUsPerRequest.toFixed(1)} us/req  rss ${s.rssMb.toFixed(1)} MB (young gen ${s.youngGenMb.toFixed(0)})`,
    );
  }
  console.log(`HTTP instrumentation cost in process: ${costNs.toFixed(0)} ns per request (median of 5 x 200k)`);
  console.log(`reports received: HTTP ${figures.reportsReceived.http}, gRPC ${figures.reportsReceived.grpc}`);
  console.log(JSON.stringify(figures));
}

if (process.argv.includes('--serve')) {
  const i = process.argv.indexOf('--serve');
  await serve(process.argv[i + 1] as Mode, process.argv[i + 2]!, process.argv[i + 3]!);
} else {
  await main();
}
