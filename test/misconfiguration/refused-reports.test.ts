import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { survivors, waitFor } from '../kit/index.js';

const CLI = fileURLToPath(new URL('../../packages/coordinator/dist/cli.js', import.meta.url));
const AGENT = fileURLToPath(new URL('./fixtures/wrong-token-agent.mjs', import.meta.url));
const RIGHT_TOKEN = 'orders-token-0123456789abcdef';
const WRONG_TOKEN = 'this-is-the-wrong-token-0123456789';

const CONFIG = `listen: { http: "127.0.0.1:0", grpc: "127.0.0.1:0" }
syncPeriodMs: 60000
services:
  - name: orders
    tokenFile: orders.token
    policy: { targets: [{ metric: inFlight, value: 10 }] }
    actuator: { type: command, command: "true" }
`;

interface Proc {
  child: ChildProcess;
  stdout: string[];
  stderr: string;
}

function start(args: string[], cwd?: string): Proc {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
  const p: Proc = { child, stdout: [], stderr: '' };
  createInterface({ input: child.stdout! }).on('line', (l) => p.stdout.push(l));
  child.stderr!.on('data', (c: Buffer) => (p.stderr += c.toString()));
  return p;
}

const exited = (p: Proc) =>
  p.child.exitCode !== null || p.child.signalCode !== null
    ? Promise.resolve(p.child.exitCode)
    : new Promise<number | null>((r) => p.child.once('exit', (code) => r(code)));

describe('misconfiguration that speaks: refused reports', function () {
  this.timeout(60_000);
  let dir: string;
  let coordinator: Proc;
  let urls: { http: string; grpc: string };
  const procs: Proc[] = [];
  const logs = () =>
    coordinator.stdout.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-refused-'));
    await writeFile(join(dir, 'orders.token'), `${RIGHT_TOKEN}\n`);
    await writeFile(join(dir, 'shoal.yaml'), CONFIG);
    coordinator = start([CLI, '--config', join(dir, 'shoal.yaml')]);
    procs.push(coordinator);
    const listening = await waitFor(() => logs().find((j) => j.msg === 'listening'), {
      timeoutMs: 30_000,
      what: () => `the coordinator to listen (stderr: ${coordinator.stderr})`,
    });
    urls = listening as unknown as { http: string; grpc: string };
  });
  after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map(exited));
    assert.deepEqual(survivors(procs.map((p) => p.child.pid!)), []);
    await rm(dir, { recursive: true, force: true });
  });

  async function refusedTotal(transport: string): Promise<number> {
    const text = await (await fetch(`${urls.http}/metrics`)).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith('shoal_coordinator_reports_refused_total{') && l.includes(`transport="${transport}"`));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  }

  it('logs each refusal once per sender (never the token); agents warn on stderr without a logger unless told not to', async () => {
    // Three applications with a wrong token and no logger: HTTP and gRPC transports, and one with warnOnRefusal false.
    const agents = {
      http: start([AGENT, urls.http, 'loud', 'http']),
      grpc: start([AGENT, urls.grpc, 'loud', 'grpc']),
      quiet: start([AGENT, urls.http, 'quiet', 'quiet']),
    };
    procs.push(...Object.values(agents));
    // Refused again and again (each agent retries every 50-200 ms) ...
    await waitFor(async () => (await refusedTotal('http')) >= 8 && (await refusedTotal('stream')) >= 4, {
      timeoutMs: 30_000,
      what: 'refused HTTP and gRPC reports',
    });
    // ... and an event subscribed before start() fired in each.
    for (const a of Object.values(agents)) {
      await waitFor(() => a.stdout.includes('breaker:open'), { what: 'the breaker event' });
    }
    for (const transport of ['http', 'grpc'] as const) {
      // One process warning on stderr, naming the instance, the coordinator and the reason; never the token.
      await waitFor(() => agents[transport].stderr.includes('ShoalWarning'), {
        what: () => `a warning (stderr: ${agents[transport].stderr})`,
      });
      const text = agents[transport].stderr;
      assert.match(
        text,
        new RegExp(`Shoal agent "orders/orders-wrong-token-${transport}": the coordinator at \\S+ refused its reports`),
      );
      assert.match(text, transport === 'http' ? /HTTP 401/ : /UNAUTHENTICATED/);
      assert.equal(text.match(/ShoalWarning/g)?.length, 1, 'one warning per episode, not one per attempt');
      assert.ok(!text.includes(WRONG_TOKEN), 'the token is never printed');
    }
    assert.equal(agents.quiet.stderr, '', 'warnOnRefusal: false prints nothing');

    // The coordinator: one warn line per sender and reason, with the instance (HTTP: the report said who it is)
    // or the peer's address (gRPC: refused when the stream opened, before any hello).
    const refused = logs().filter((j) => j.msg === 'agent report refused');
    const http = refused.filter((j) => j.transport === 'http');
    assert.deepEqual(http.map((j) => j.instance).sort(), ['orders-wrong-token-http', 'orders-wrong-token-quiet']);
    const stream = refused.filter((j) => j.transport === 'stream');
    assert.equal(stream.length, 1, JSON.stringify(stream));
    assert.equal(stream[0]!.peer, '127.0.0.1');
    for (const line of refused) {
      assert.equal(line.level, 40);
      assert.equal(line.reason, 'unauthenticated');
    }
    const all = coordinator.stdout.join('\n');
    assert.ok(!all.includes(WRONG_TOKEN) && !all.includes(RIGHT_TOKEN), 'no token in any log line');

    for (const a of Object.values(agents)) a.child.kill('SIGTERM');
    for (const a of Object.values(agents)) assert.equal(await exited(a), 0);
  });

  it('flushes its last log lines and exits 0 on SIGINT', async () => {
    coordinator.child.kill('SIGINT');
    assert.equal(await exited(coordinator), 0);
    const tail = logs()
      .slice(-3)
      .map((j) => j.msg);
    assert.deepEqual(tail, ['stopping', 'coordinator stopped', 'exiting']);
    assert.equal(logs().at(-1)!.code, 0);
  });
});
