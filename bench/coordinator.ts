/**
 * Coordinator ingestion benchmark: simulated agents in separate processes hold report streams to a coordinator
 * (its own process) over loopback, one report per second each, at 1,000 / 5,000 / 10,000 agents. Measures the
 * achieved reports/s, p99 receipt→window (handler entry to the report being in its window) and send→window
 * (agent's send timestamp to window, queueing included), control-loop duration, coordinator CPU and RSS.
 * Baseline in the same run: a bare grpc-js server draining the same streams (no auth, validation or windows),
 * so the ratios show what the coordinator adds over the transport.
 *
 *   npm run bench:coordinator                 # 1,000, 5,000, 10,000 agents, 10 s windows
 *   npm run bench:coordinator -- --quick      # 1,000 and 5,000 agents, 5 s windows
 *   npm run bench:coordinator -- --agents 10000   # one size only
 *
 * The last line of output is one JSON object with every figure.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { emptyLoadReport, loadCoordinatorService } from '@shoal/protocol';

const SELF = fileURLToPath(import.meta.url);
const PER_SERVICE = 1000;
const PER_WORKER = 2500;
const PER_CHANNEL = 500;
const token = (svc: number) => `bench-token-${svc}-0123456789abcdef`;

interface Stats {
  reports: number;
  heapUsedBytes: number;
  wallMs: number;
  cpuMs: number;
  rssMaxBytes: number;
  receiptP99Ms: number;
  sendP99Ms: number;
  loopP99Ms: number;
  loopMaxMs: number;
  streams: number;
}

// ---- child: the coordinator (or the baseline sink) -------------------------------------------------------------
// Plain JavaScript run by `node --input-type=module -e`, without the TypeScript loader, so the coordinator's CPU
// and RSS are measured as in production (tsx alone adds ~100 MB to a process).

const SERVER_SOURCE = `
import * as grpc from ${JSON.stringify(import.meta.resolve('@grpc/grpc-js'))};
import { loadCoordinatorService } from ${JSON.stringify(import.meta.resolve('@shoal/protocol'))};
import { createCoordinator } from ${JSON.stringify(import.meta.resolve('@shoal/coordinator'))};
const [kind, agentsArg, perServiceArg] = process.argv.slice(1);
const agents = Number(agentsArg), PER_SERVICE = Number(perServiceArg);
const token = (svc) => 'bench-token-' + svc + '-0123456789abcdef';
const quantile = (v, q) => { if (!v.length) return 0; const s = Float64Array.from(v).sort(); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
let receipt = [], send = [], reports = 0, streams = 0, cpu = process.cpuUsage(), wall = performance.now(), windowStart = Date.now(), rssMax = 0;
const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage.rss())), 250);
const onReport = (latencyMs, report) => { reports++; receipt.push(latencyMs); send.push(Date.now() - report.sentAtMs); };
let address, loops = () => [], close;
if (kind === 'coordinator') {
  const c = createCoordinator({
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' }, dryRun: true,
    limits: { maxStreams: agents + 100, maxInstancesPerService: PER_SERVICE },
    services: Array.from({ length: Math.ceil(agents / PER_SERVICE) }, (_, i) => ({
      name: 'bench-' + i, token: token(i), minReplicas: 1, maxReplicas: 2000,
      policy: { targets: [{ metric: 'eventLoopUtilization', value: 0.6 }] },
      actuator: { type: 'command', command: 'true' },
    })),
  }, { onReportAccepted: onReport });
  await c.start();
  address = c.urls().grpc.replace('grpc://', '');
  loops = () => c.services().flatMap((s) => (c.decisions(s.name) ?? []).filter((d) => d.atMs >= windowStart).map((d) => d.durationMs));
  const gauge = setInterval(() => { streams = c.services().reduce((a, s) => a + s.instances.filter((i) => i.connected).length, 0); }, 500);
  close = async () => { clearInterval(gauge); await c.close(); };
} else {
  const { CoordinatorService } = loadCoordinatorService(grpc);
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': agents + 100 });
  server.addService(CoordinatorService, {
    connect: (call) => { streams++; call.on('data', (m) => { if (m.report) onReport(0, m.report); }); call.on('end', () => call.end()); call.on('close', () => streams--); call.on('error', () => {}); },
    report: (_call, cb) => cb(null, {}),
  });
  const port = await new Promise((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  address = '127.0.0.1:' + port;
  close = () => new Promise((r) => server.tryShutdown(() => r()));
}
process.send({ type: 'ready', address });
process.on('message', (m) => {
  if (m.type === 'reset') {
    receipt = []; send = []; reports = 0; cpu = process.cpuUsage(); wall = performance.now(); windowStart = Date.now(); rssMax = process.memoryUsage.rss();
    process.send({ type: 'reset' });
  } else if (m.type === 'stats') {
    const c = process.cpuUsage(cpu); const l = loops();
    process.send({ type: 'stats', stats: { reports, wallMs: performance.now() - wall, cpuMs: (c.user + c.system) / 1000,
      rssMaxBytes: Math.max(rssMax, process.memoryUsage.rss()), heapUsedBytes: process.memoryUsage().heapUsed,
      receiptP99Ms: quantile(receipt, 0.99), sendP99Ms: quantile(send, 0.99), loopP99Ms: quantile(l, 0.99),
      loopMaxMs: l.length ? Math.max(...l) : 0, streams } });
  } else if (m.type === 'streams') process.send({ type: 'streams', streams });
  else if (m.type === 'stop') { clearInterval(rssTimer); close().then(() => process.exit(0)); }
});
`;

// ---- child: a process of simulated agents ------------------------------------------------------------------------

function agentsRole(address: string, first: number, count: number): void {
  const { CoordinatorClient } = loadCoordinatorService(grpc);
  const clients: InstanceType<typeof CoordinatorClient>[] = [];
  const streams: Array<grpc.ClientDuplexStream<unknown, unknown>> = [];
  let seq = 0;
  for (let k = 0; k < count; k++) {
    if (k % PER_CHANNEL === 0) {
      clients.push(
        new CoordinatorClient(address, grpc.credentials.createInsecure(), {
          'grpc.use_local_subchannel_pool': 1,
          'grpc.max_send_message_length': 65536,
        }),
      );
    }
    const i = first + k;
    const svc = Math.floor(i / PER_SERVICE);
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token(svc)}`);
    const stream = clients[clients.length - 1]!.connect(md) as unknown as grpc.ClientDuplexStream<unknown, unknown>;
    stream.on('data', () => {});
    stream.on('error', () => {});
    stream.write({
      hello: {
        protocolVersion: 1,
        service: `bench-${svc}`,
        instanceId: `agent-${i}`,
        address: '127.0.0.1',
        port: 10_000 + (i % 50_000),
        startedAtMs: Date.now(),
      },
    });
    streams.push(stream);
  }
  const base = emptyLoadReport();
  // Each agent reports once a second, spread evenly: every 10 ms a hundredth of them send.
  let tick = 0;
  const timer = setInterval(() => {
    const slot = tick++ % 100;
    const now = Date.now();
    for (let k = slot; k < streams.length; k += 100) {
      streams[k]!.write({
        report: {
          ...base,
          seq: ++seq,
          intervalMs: 1000,
          ready: true,
          inFlight: (k * 7) % 20,
          requests: 100 + (k % 50),
          eventLoopUtilization: 0.3 + (k % 10) / 40,
          cpu: 0.2,
          rssBytes: 80e6,
          heapUsedBytes: 30e6,
          sentAtMs: now,
        },
      });
    }
  }, 10);
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stop') {
      clearInterval(timer);
      for (const s of streams) s.cancel();
      for (const c of clients) c.close();
      setTimeout(() => process.exit(0), 100);
    }
  });
  process.send!({ type: 'started' });
}

// ---- parent --------------------------------------------------------------------------------------------------------

function request<T>(child: ChildProcess, type: string, extra: object = {}): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { type: string } & T) => {
      if (m.type === type) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
    child.send({ type, ...extra });
  });
}

function start(args: string[]): ChildProcess {
  return fork(SELF, args, { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function startServer(kind: 'coordinator' | 'baseline', agents: number): ChildProcess {
  return spawn(
    process.execPath,
    ['--input-type=module', '-e', SERVER_SOURCE, kind, String(agents), String(PER_SERVICE)],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
}

async function phase(kind: 'coordinator' | 'baseline', agents: number, windowS: number): Promise<Stats> {
  const server = startServer(kind, agents);
  const { address } = await new Promise<{ address: string }>((resolve) =>
    server.once('message', (m) => resolve(m as { address: string })),
  );
  const workers: ChildProcess[] = [];
  for (let first = 0; first < agents; first += PER_WORKER) {
    const w = start([
      '--role',
      'agents',
      '--address',
      address,
      '--first',
      String(first),
      '--count',
      String(Math.min(PER_WORKER, agents - first)),
    ]);
    workers.push(w);
  }
  await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { streams } = await request<{ streams: number }>(server, 'streams');
    if (streams >= agents || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await new Promise((r) => setTimeout(r, 2000)); // warm-up
  await request(server, 'reset');
  await new Promise((r) => setTimeout(r, windowS * 1000));
  const { stats } = await request<{ stats: Stats }>(server, 'stats');
  for (const w of workers) w.send({ type: 'stop' });
  server.send({ type: 'stop' });
  await Promise.all(
    [...workers, server].map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))),
  );
  return stats;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string) => argv[argv.indexOf(`--${name}`) + 1] as string;
  if (argv.includes('--role')) {
    return agentsRole(arg('address'), Number(arg('first')), Number(arg('count')));
  }
  const quick = argv.includes('--quick');
  const only = argv.includes('--agents') ? [Number(arg('agents'))] : undefined;
  const sizes = only ?? (quick ? [1000, 5000] : [1000, 5000, 10_000]);
  const windowS = quick ? 5 : 10;
  const rows: Array<
    Record<string, number> & {
      agents: number;
      reportsPerSecond: number;
      receiptToWindowP99Ms: number;
      cpuCores: number;
      rssMB: number;
    }
  > = [];
  for (const agents of sizes) {
    const c = await phase('coordinator', agents, windowS);
    const b = await phase('baseline', agents, windowS);
    const cores = c.cpuMs / c.wallMs;
    const baseCores = b.cpuMs / b.wallMs;
    rows.push({
      agents,
      reportsPerSecond: Math.round((c.reports / c.wallMs) * 1000),
      receiptToWindowP99Ms: +c.receiptP99Ms.toFixed(3),
      sendToWindowP99Ms: +c.sendP99Ms.toFixed(1),
      loopP99Ms: +c.loopP99Ms.toFixed(2),
      loopMaxMs: +c.loopMaxMs.toFixed(2),
      cpuCores: +cores.toFixed(3),
      rssMB: Math.round(c.rssMaxBytes / 1e6),
      heapMB: Math.round(c.heapUsedBytes / 1e6),
      baselineReportsPerSecond: Math.round((b.reports / b.wallMs) * 1000),
      baselineSendToWindowP99Ms: +b.sendP99Ms.toFixed(1),
      baselineCpuCores: +baseCores.toFixed(3),
      baselineRssMB: Math.round(b.rssMaxBytes / 1e6),
      cpuRatio: +(cores / Math.max(baseCores, 1e-6)).toFixed(2),
      coresPer10kReportsPerSecond: +((cores / Math.max(1, (c.reports / c.wallMs) * 1000)) * 10_000).toFixed(3),
      baselineCoresPer10kReportsPerSecond: +((baseCores / Math.max(1, (b.reports / b.wallMs) * 1000)) * 10_000).toFixed(
        3,
      ),
      rssRatio: +(c.rssMaxBytes / b.rssMaxBytes).toFixed(2),
    });
    console.log(`done: ${agents} agents`);
  }
  const header = [
    'agents',
    'reports/s',
    'p99 rcpt→win ms',
    'p99 send→win ms',
    'loop p99/max ms',
    'CPU cores',
    'RSS MB',
    'heap MB',
    'cores/10k rps',
    'base reports/s',
    'base CPU',
    'base cores/10k rps',
    'base RSS MB',
    'CPU ×',
    'RSS ×',
  ];
  console.log(`\n${header.join(' | ')}`);
  for (const r of rows) {
    console.log(
      [
        r.agents,
        r.reportsPerSecond,
        r.receiptToWindowP99Ms,
        r.sendToWindowP99Ms,
        `${r.loopP99Ms}/${r.loopMaxMs}`,
        r.cpuCores,
        r.rssMB,
        r.heapMB,
        r.coresPer10kReportsPerSecond,
        r.baselineReportsPerSecond,
        r.baselineCpuCores,
        r.baselineCoresPer10kReportsPerSecond,
        r.baselineRssMB,
        r.cpuRatio,
        r.rssRatio,
      ].join(' | '),
    );
  }
  const largest = rows[rows.length - 1]!;
  const target = { agents: 10_000, receiptToWindowP99Ms: 20, cpuCores: 1, rssMB: 500 };
  // Sustained: the coordinator took in at least 95 % of what the agents could send. On a small shared machine the
  // agent processes themselves top out below 10,000 reports/s; the bare-gRPC baseline in the same run measures
  // that ceiling, so the coordinator is held to min(agents, baseline reports/s).
  const offered = Math.min(largest.agents, largest.baselineReportsPerSecond ?? largest.agents);
  const sustained = largest.reportsPerSecond >= 0.95 * offered;
  const meets =
    largest.agents >= target.agents &&
    sustained &&
    largest.receiptToWindowP99Ms < 20 &&
    largest.cpuCores < 1 &&
    largest.rssMB < 500;
  console.log(
    `\nagents could offer ${offered} reports/s (baseline ceiling on this machine); the coordinator took ${largest.reportsPerSecond}` +
      `\ntarget (10,000 agents sustained, p99 < 20 ms, < 1 core, < 500 MB): ${meets ? 'met' : largest.agents < 10_000 ? 'not measured (--quick)' : `NOT met${sustained ? '' : ` (took ${largest.reportsPerSecond} of ${offered} reports/s)`}`}`,
  );
  console.log(
    JSON.stringify({
      bench: 'coordinator',
      quick,
      windowS,
      node: process.version,
      cpus: availableParallelism(),
      rows,
      target,
      offeredReportsPerSecond: offered,
      sustained,
      meetsTarget: meets,
    }),
  );
}

void main();
