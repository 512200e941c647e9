/**
 * Chaos: one of three replicas hangs (a real child process stopped with SIGSTOP: its sockets stay open and the
 * kernel still accepts connections, but nothing answers) under steady idempotent traffic through `consul:///svc`
 * (gRPC, hedging) and `@shoal/http` (per-try timeout + hedging), with the documented settings. Consul keeps
 * reporting the replica healthy (its TTL heartbeat comes from this process), so only the clients can route around
 * it. Every failed call is counted (goal 0), and no process is left behind. Figures: docs/reliability.md.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { ServiceRegistration } from '@shoal/consul';
import { createClient, register } from '@shoal/grpc';
import { createDispatcher } from '@shoal/http';
import type { ShoalDispatcher } from '@shoal/http';
import { EchoClient, echo } from '../../packages/grpc/test/support/echo.js';
import type { EchoClientInstance } from '../../packages/grpc/test/support/echo.js';
import { startTestConsul, type TestConsul } from '../support/consul.js';
import { survivors, waitFor } from '../kit/index.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/replica-process.ts', import.meta.url));
const PHASE_MS = { before: 2000, during: 5000, after: 2000 };
const WORKERS = 4;
/** A call slower than this counts as touched by the hung replica (healthy p99 on a loaded 2-core box is far below). */
const SLOW_MS = 150;

type Phase = 'before' | 'during' | 'after';
interface Sample {
  phase: Phase;
  startedAt: number;
  ms: number;
  ok: boolean;
  error?: string;
}

function p99(samples: Sample[]): number {
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

function figures(samples: Sample[], stoppedAt: number) {
  const by = (phase: Phase) => samples.filter((s) => s.phase === phase);
  const slowDuring = by('during').filter((s) => s.ms > SLOW_MS);
  const lastSlow = slowDuring.reduce((max, s) => Math.max(max, s.startedAt), stoppedAt);
  return {
    calls: samples.length,
    failed: samples.filter((s) => !s.ok).length,
    p99BeforeMs: Math.round(p99(by('before'))),
    p99DuringMs: Math.round(p99(by('during'))),
    p99AfterMs: Math.round(p99(by('after'))),
    slowDuring: slowDuring.length,
    /** From SIGSTOP to the start of the last call slower than SLOW_MS while the replica was stopped. */
    recoveryMs: Math.round(lastSlow - stoppedAt),
    errors: [...new Set(samples.filter((s) => !s.ok).map((s) => s.error))].slice(0, 5),
  };
}

describe('chaos: a replica hangs (SIGSTOP)', function () {
  this.timeout(90_000);
  let consul: TestConsul;
  const children: ChildProcess[] = [];
  const registrations: ServiceRegistration[] = [];
  let client: EchoClientInstance | undefined;
  let dispatcher: ShoalDispatcher | undefined;

  afterEach(async () => {
    client?.close();
    await dispatcher?.destroy();
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = once(child, 'exit');
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    }
    const pids = children.map((c) => c.pid!).filter(Boolean);
    children.length = 0;
    for (const r of registrations.splice(0)) await r.close().catch(() => {});
    await consul?.close();
    assert.deepEqual(survivors(pids), [], 'no replica process is left behind');
  });

  it('loses no idempotent gRPC or HTTP call while one of three replicas is stopped, and recovers', async () => {
    consul = await startTestConsul();
    const consulOptions = { url: consul.url, ...(consul.token ? { token: consul.token } : {}) };
    const names = ['r1', 'r2', 'r3'];
    for (const name of names) {
      const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, name], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const { grpcPort, httpPort } = JSON.parse(line) as { grpcPort: number; httpPort: number };
      for (const [service, port] of [
        ['hung-grpc', grpcPort],
        ['hung-http', httpPort],
      ] as const) {
        const registration = new ServiceRegistration({
          consul: consulOptions,
          service,
          id: `${service}-${name}`,
          address: '127.0.0.1',
          port,
          check: { ttlMs: 30_000 },
          registry: new Registry(),
        });
        await registration.register();
        registrations.push(registration);
      }
    }

    // The documented settings (packages/grpc/README.md, packages/http/README.md, docs/choosing-a-strategy.md).
    register({ consul: consulOptions, registry: new Registry() });
    client = createClient(EchoClient, 'consul:///hung-grpc', {
      policyConfig: { slowStart: false },
      hedging: { methods: [{ service: 'shoal.test.Echo' }], delayMs: 200, maxAttempts: 3 },
    });
    dispatcher = createDispatcher({
      consul: consulOptions,
      slowStart: false,
      retry: { maxAttempts: 3, perTryTimeoutMs: 1000 },
      hedge: { delayMs: 200 },
      registry: new Registry(),
    });
    const d = dispatcher;
    const c = client;
    const grpcCall = async () => (await echo(c, 'x', { deadlineMs: 5000 })).server;
    const httpCall = async () => {
      const res = await request('http://hung-http.service.consul/', { dispatcher: d, headersTimeout: 5000 });
      const body = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      return body;
    };
    // Every replica answers before the chaos starts.
    await waitFor(
      async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 30; i++) seen.add(await grpcCall()).add(await httpCall());
        return seen.size === 3;
      },
      { timeoutMs: 30_000, what: 'all three replicas answering', retryErrors: true },
    );

    let phase: Phase = 'before';
    let running = true;
    const samples = { grpc: [] as Sample[], http: [] as Sample[] };
    const drive = async (call: () => Promise<string>, into: Sample[]) => {
      while (running) {
        const startedAt = performance.now();
        const at = phase;
        try {
          await call();
          into.push({ phase: at, startedAt, ms: performance.now() - startedAt, ok: true });
        } catch (err) {
          into.push({ phase: at, startedAt, ms: performance.now() - startedAt, ok: false, error: String(err) });
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const load = [
      ...Array.from({ length: WORKERS }, () => drive(grpcCall, samples.grpc)),
      ...Array.from({ length: WORKERS }, () => drive(httpCall, samples.http)),
    ];
    const stopped = children[0]!;
    let stoppedAt = 0;
    try {
      await new Promise((r) => setTimeout(r, PHASE_MS.before));
      stopped.kill('SIGSTOP');
      stoppedAt = performance.now();
      phase = 'during';
      await new Promise((r) => setTimeout(r, PHASE_MS.during));
      stopped.kill('SIGCONT');
      phase = 'after';
      await new Promise((r) => setTimeout(r, PHASE_MS.after));
    } finally {
      stopped.kill('SIGCONT');
      running = false;
      await Promise.all(load);
    }

    const result = { grpc: figures(samples.grpc, stoppedAt), http: figures(samples.http, stoppedAt) };
    console.log(`      replica-hung figures: ${JSON.stringify(result)}`);
    assert.ok(result.grpc.calls > 50 && result.http.calls > 50, JSON.stringify(result));
    assert.ok(
      samples.grpc.some((s) => s.phase === 'during') && samples.http.some((s) => s.phase === 'during'),
      'traffic went on while the replica was stopped',
    );
    assert.equal(result.grpc.failed, 0, JSON.stringify(result.grpc));
    assert.equal(result.http.failed, 0, JSON.stringify(result.http));
  });
});
