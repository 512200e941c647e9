/**
 * consul-dev watcher fan-out benchmark (`npm run bench:consul-dev`, `-- --quick` for a short run).
 *
 * Question: when one service changes, how fast do N concurrent blocking queries on it
 * (`GET /v1/health/service/bench?index=X&wait=60s`) all come back? Goal: 1,000 watchers all woken within 50 ms.
 *
 * @shoal/consul-dev runs as its CLI in a child process on 127.0.0.1; the watchers run in this process, one
 * persistent socket each (as 1,000 client processes would have), either through node:http (`http` rows) or a
 * minimal HTTP/1.1 reader (`raw` rows, cheap enough that the figures are mostly the server's). For each change,
 * every watcher is parked first; t0 is just before the PUT that flips the service's TTL check (passing ↔ warning);
 * a watcher's wake latency is when its full response has arrived here, minus t0 (so it includes the PUT's own round
 * trip and this process reading every response). Server and client CPU per change come from /proc and cpuUsage().
 * Baseline in the same run: 10 watchers, same procedure. The last line printed is one JSON object with every figure.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

const quick = process.argv.includes('--quick');
const CHANGES = quick ? 4 : 12;
/** Watcher count and client; the first row is the baseline. */
const CONFIGS: Array<[number, ClientKind]> = [
  [10, 'http'],
  [100, 'http'],
  [1000, 'http'],
  [10, 'raw'],
  [1000, 'raw'],
];
const SETTLE_MS = 150; // after the last watcher's request is written, let the server park it
const TARGET_MS = 50;
const CLI = fileURLToPath(new URL('../packages/consul-dev/dist/cli.js', import.meta.url));

async function startServer(): Promise<{ host: string; port: number; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [CLI, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    proc.once('exit', (c) => reject(new Error(`shoal-consul-dev exited with ${c}`)));
    proc.stdout!.once('data', (d: Buffer) => {
      const m = /(http:\/\/\S+)/.exec(d.toString());
      if (m) resolve(m[1]!);
      else reject(new Error(`unexpected output: ${d.toString()}`));
    });
  });
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port), proc };
}

/** CPU time (user + system, ms) a process has used, from /proc (Linux; NaN elsewhere). 10 ms resolution. */
function cpuMsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  index: number;
  at: number;
}

function get(agent: Agent, host: string, port: number, path: string, onWritten?: () => void): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, agent, method: 'GET' }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, index: Number(res.headers['x-consul-index']), at: performance.now() }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (onWritten) req.on('finish', onWritten);
    req.end();
  });
}

function put(agent: Agent, host: string, port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, agent, method: 'PUT' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A minimal HTTP/1.1 client on one persistent socket: writes a GET, reads the status line, X-Consul-Index and
 * Content-Length, and resolves once the body is complete. It costs a fraction of node:http's client, so the
 * figures of the `raw` rows are closer to the server's own share.
 */
class RawWatcher {
  private readonly socket: Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private pending: { resolve: (a: Answer) => void; reject: (e: Error) => void } | undefined;

  constructor(host: string, port: number) {
    this.socket = connect({ host, port });
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => this.pending?.reject(err));
  }

  get(path: string, onWritten?: () => void): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: bench\r\n\r\n`, () => onWritten?.());
    });
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buffer.subarray(0, end).toString('latin1');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.buffer.length < end + 4 + length) return;
    const at = performance.now();
    const status = Number(head.slice(9, 12));
    const index = Number(/\r\nx-consul-index: *(\d+)/i.exec(head)?.[1] ?? NaN);
    this.buffer = this.buffer.subarray(end + 4 + length);
    const p = this.pending;
    this.pending = undefined;
    p?.resolve({ status, index, at });
  }

  close(): void {
    this.socket.destroy();
  }
}

type ClientKind = 'http' | 'raw';

interface Result {
  client: ClientKind;
  watchers: number;
  changes: number;
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Per change: when the last watcher woke; the median and worst over the changes. */
  lastWokeP50Ms: number;
  lastWokeMaxMs: number;
  putAckP50Ms: number;
  /** Mean CPU the server process spent per change (PUT + waking every watcher), and this process (the clients). */
  serverCpuMsPerChange: number;
  clientCpuMsPerChange: number;
  early: number;
  allWithinTarget: boolean;
}

async function runConfig(
  host: string,
  port: number,
  serverPid: number,
  n: number,
  client: ClientKind,
  service: string,
): Promise<Result> {
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity });
  const ctl = new Agent({ keepAlive: true, maxSockets: 1 });
  const raws = client === 'raw' ? Array.from({ length: n }, () => new RawWatcher(host, port)) : [];
  try {
    const reg = await new Promise<number>((resolve, reject) => {
      const req = request({ host, port, agent: ctl, method: 'PUT', path: '/v1/agent/service/register' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ Name: service, Port: 1, Check: { TTL: '1h', Status: 'passing' } }));
    });
    if (reg !== 200) throw new Error(`register answered ${reg}`);
    let index = (await get(ctl, host, port, `/v1/health/service/${service}`)).index;
    const latencies: number[] = [];
    const lastWoke: number[] = [];
    const acks: number[] = [];
    let early = 0;
    let serverCpu = 0;
    let clientCpu = 0;
    for (let c = 0; c < CHANGES; c++) {
      let written = 0;
      let allWritten!: () => void;
      const parked = new Promise<void>((r) => (allWritten = r));
      let t0 = Infinity;
      const path = `/v1/health/service/${service}?index=${index}&wait=60s`;
      const onWritten = () => {
        if (++written === n) allWritten();
      };
      const watchers =
        client === 'raw'
          ? raws.map((w) => w.get(path, onWritten))
          : Array.from({ length: n }, () => get(agent, host, port, path, onWritten));
      await parked;
      await sleep(SETTLE_MS);
      const serverBefore = cpuMsOf(serverPid);
      const clientBefore = process.cpuUsage();
      t0 = performance.now();
      const status = c % 2 === 0 ? 'warn' : 'pass';
      const acked = put(ctl, host, port, `/v1/agent/check/${status}/service:${service}`).then(() =>
        acks.push(performance.now() - t0),
      );
      const answers = await Promise.all(watchers);
      await acked;
      const clientUsed = process.cpuUsage(clientBefore);
      clientCpu += (clientUsed.user + clientUsed.system) / 1000;
      serverCpu += cpuMsOf(serverPid) - serverBefore;
      let worst = 0;
      for (const a of answers) {
        if (a.at < t0) early++;
        const ms = a.at - t0;
        latencies.push(ms);
        worst = Math.max(worst, ms);
        if (!(a.index > index)) throw new Error(`a watcher came back without a new index (${a.index} <= ${index})`);
      }
      lastWoke.push(worst);
      index = answers[0]!.index;
    }
    latencies.sort((a, b) => a - b);
    lastWoke.sort((a, b) => a - b);
    acks.sort((a, b) => a - b);
    return {
      client,
      watchers: n,
      changes: CHANGES,
      samples: latencies.length,
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      maxMs: round(latencies[latencies.length - 1]!),
      lastWokeP50Ms: round(percentile(lastWoke, 50)),
      lastWokeMaxMs: round(lastWoke[lastWoke.length - 1]!),
      putAckP50Ms: round(percentile(acks, 50)),
      serverCpuMsPerChange: round(serverCpu / CHANGES),
      clientCpuMsPerChange: round(clientCpu / CHANGES),
      early,
      allWithinTarget: early === 0 && latencies[latencies.length - 1]! <= TARGET_MS,
    };
  } finally {
    for (const w of raws) w.close();
    agent.destroy();
    ctl.destroy();
  }
}

async function main(): Promise<void> {
  const { host, port, proc } = await startServer();
  const results: Result[] = [];
  try {
    // Warm-up (JIT, sockets) that is not counted.
    await runConfig(host, port, proc.pid!, 50, 'http', 'warmup-http');
    await runConfig(host, port, proc.pid!, 50, 'raw', 'warmup-raw');
    for (const [n, client] of CONFIGS) {
      results.push(await runConfig(host, port, proc.pid!, n, client, `bench-${client}-${n}`));
    }
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
  const base = results[0]!;
  const rows = results.map((r) => ({
    client: r.client,
    watchers: r.watchers,
    'p50 ms': r.p50Ms,
    'p99 ms': r.p99Ms,
    'max ms': r.maxMs,
    'last woke p50 ms': r.lastWokeP50Ms,
    'last woke max ms': r.lastWokeMaxMs,
    'p99 / baseline': round(r.p99Ms / base.p99Ms),
    'PUT ack p50 ms': r.putAckP50Ms,
    'server CPU ms/change': r.serverCpuMsPerChange,
    'client CPU ms/change': r.clientCpuMsPerChange,
    [`all ≤ ${TARGET_MS} ms`]: r.allWithinTarget ? 'yes' : 'NO',
  }));
  console.log(`consul-dev watcher fan-out: ${CHANGES} changes per row, wake latency from just before the PUT`);
  console.table(rows);
  for (const big of results.filter((r) => r.watchers === 1000)) {
    console.log(
      `1,000 watchers (${big.client} client): p99 ${big.p99Ms} ms, max ${big.maxMs} ms ` +
        `(${round(big.p99Ms / base.p99Ms)}× the 10-watcher p99); target ≤ ${TARGET_MS} ms: ` +
        `${big.allWithinTarget ? 'met' : 'NOT met'}`,
    );
  }
  const load = (await import('node:os')).loadavg()[0]!;
  console.log(`1-minute load average at the end: ${round(load)} on ${(await import('node:os')).cpus().length} cores`);
  console.log(
    JSON.stringify({
      loadAverage1m: round(load),
      bench: 'consul-dev-watchers',
      quick,
      targetMs: TARGET_MS,
      baselineWatchers: base.watchers,
      results,
      ratioP99ToBaseline: Object.fromEntries(
        results.map((r) => [`${r.client}-${r.watchers}`, round(r.p99Ms / base.p99Ms)]),
      ),
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
