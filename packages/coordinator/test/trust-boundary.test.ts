import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { ServiceWindow } from '@shoal/coordinator/internal';
import {
  CommandActuator,
  createCoordinator,
  parseConfig,
  type Coordinator,
  type CoordinatorConfigInput,
} from '@shoal/coordinator';
import { hasErrorCode } from '@shoal/core';
import { waitFor } from '../../../test/kit/index.js';
import { RecordingActuator, TestAgent, hello, report } from './support/agent-client.js';

const ORDERS = 'orders-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';

function config(extra: Partial<CoordinatorConfigInput> = {}): CoordinatorConfigInput {
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: 3_600_000,
    limits: { reportsPerSecondPerInstance: 50 },
    services: [
      {
        name: 'orders',
        token: ORDERS,
        policy: { targets: [{ metric: 'eventLoopUtilization', value: 0.5 }] },
        actuator: { type: 'command', command: 'true' },
      },
    ],
    ...extra,
  };
}

/** A raw HTTP request whose path is sent exactly as given (fetch would normalize `//`). */
function rawGet(base: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method: 'GET', headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the trust boundary (issue 18)', () => {
  let coordinator: Coordinator | undefined;
  let agents: TestAgent[] = [];
  let registry: Registry;

  async function start(extra: Partial<CoordinatorConfigInput> = {}): Promise<Coordinator> {
    registry = new Registry();
    coordinator = createCoordinator(config(extra), { registry, actuatorFactory: () => new RecordingActuator(1) });
    await coordinator.start();
    return coordinator;
  }
  function agent(token?: string): TestAgent {
    const a = new TestAgent(coordinator!.urls().grpc, token);
    agents.push(a);
    return a.open();
  }

  afterEach(async () => {
    for (const a of agents) a.close();
    agents = [];
    await coordinator?.close();
    coordinator = undefined;
  });

  it('refuses an anonymous stream when it opens: 200 of them cannot lock out a real agent (finding 1)', async () => {
    await start({ limits: { reportsPerSecondPerInstance: 50, maxStreams: 20 } });
    // One connection, 200 streams without a token that never say hello (before: each counted until its hello
    // timeout, and the 21st real agent heard "too many agent streams").
    const anonymous = new TestAgent(coordinator!.urls().grpc);
    agents.push(anonymous);
    const streams = Array.from({ length: 200 }, () => {
      const s = anonymous.client.connect(new grpc.Metadata());
      const status = new Promise<grpc.StatusObject>((resolve) => s.on('status', resolve));
      s.on('error', () => {});
      return status;
    });
    const statuses = await Promise.all(streams);
    // Refused by us (UNAUTHENTICATED, before anything counts), or — on Node 22+, whose HTTP/2 server guards against
    // a flood of streams reset at once — by the HTTP/2 stack itself (ENHANCE_YOUR_CALM, which grpc-js reports as
    // RESOURCE_EXHAUSTED). Either way none is accepted.
    const codes = statuses.map((s) => s.code);
    const why = JSON.stringify([...new Set(statuses.map((s) => `${s.code} ${s.details}`))]);
    assert.ok(
      codes.every((c) => c === grpc.status.UNAUTHENTICATED || c === grpc.status.RESOURCE_EXHAUSTED),
      `every anonymous stream refused: ${why}`,
    );
    assert.ok(codes.includes(grpc.status.UNAUTHENTICATED), `refused for want of a token: ${why}`);
    assert.match(await registry.metrics(), /shoal_coordinator_streams 0\b/);
    const real = agent(ORDERS);
    real.send({ hello: hello('orders', 'orders-1') });
    await waitFor(() => real.directives.length > 0, { what: 'the real agent’s hello answered' });
    assert.equal(real.status, undefined, 'the real agent’s stream stays open');
  });

  it('keeps a service’s streams within twice its instance limit (a stolen token cannot take every stream)', async () => {
    await start({ limits: { reportsPerSecondPerInstance: 50, maxInstancesPerService: 2 } });
    const open = Array.from({ length: 4 }, () => agent(ORDERS));
    const extra = agent(ORDERS);
    const s = await extra.closed();
    assert.equal(s.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(s.details, /too many streams for service "orders" \(4\)/);
    open[0]!.close();
    await waitFor(
      async () => {
        const a = agent(ORDERS);
        a.send({ hello: hello('orders', 'orders-9') });
        return (await Promise.race([a.closed(), waitFor(() => a.directives.length > 0 && 'ok')])) === 'ok';
      },
      { what: 'a stream slot freed by a closed stream' },
    );
  });

  it('answers // paths with 404, never 500 and never as another path (finding 7)', async () => {
    await start();
    const base = coordinator!.urls().http;
    assert.equal(await rawGet(base, '//'), 404);
    assert.equal(await rawGet(base, '//evil.example/v1/services'), 404);
    assert.equal(await rawGet(base, '//v1/services'), 404);
    assert.equal(await rawGet(base, '/v1/services/%zz'), 400);
    assert.equal(await rawGet(base, '/healthz'), 200);
  });

  it('puts everything but /healthz and /readyz behind the read token (finding 4)', async () => {
    await start({ api: { readToken: READ } });
    const base = coordinator!.urls().http;
    for (const path of ['/v1/services', '/v1/services/orders', '/v1/services/orders/decisions', '/v1/sd', '/metrics']) {
      assert.equal(await rawGet(base, path), 401, `${path} without a token`);
      assert.equal(await rawGet(base, path, { authorization: `Bearer ${ORDERS}` }), 401, `${path}, agent token`);
      assert.equal(await rawGet(base, path, { authorization: `Bearer ${READ}` }), 200, `${path} with the read token`);
    }
    assert.equal(await rawGet(base, '/healthz'), 200);
    assert.equal(await rawGet(base, '/readyz'), 200);
    const res = await fetch(`${base}/v1/services`);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="shoal-coordinator"');
  });

  it('refuses a sequence number going backwards, takes a repeated one (a retry) (finding 9)', async () => {
    await start();
    const a = agent(ORDERS);
    const started = { startedAtMs: 1_700_000_000_000 };
    await a.unary({ hello: hello('orders', 'orders-1', started), report: report({ seq: 5 }) });
    await a.unary({ hello: hello('orders', 'orders-1', started), report: report({ seq: 5 }) }); // a retried report
    await assert.rejects(
      a.unary({ hello: hello('orders', 'orders-1', started), report: report({ seq: 3 }) }),
      (e: unknown) => {
        const err = e as grpc.ServiceError;
        return (
          err.code === grpc.status.INVALID_ARGUMENT && /report\.seq went backwards \(3 after 5\)/.test(err.details)
        );
      },
    );
    await a.unary({ hello: hello('orders', 'orders-1', started), report: report({ seq: 6 }) });
    // A restarted process (new startedAtMs) starts its sequence again.
    await a.unary({ hello: hello('orders', 'orders-1', { startedAtMs: Date.now() }), report: report({ seq: 1 }) });
  });

  it('lets an honest new instance in when invented ids filled the table and went silent (finding 9)', () => {
    const w = new ServiceWindow('orders', { reportIntervalMs: 1000, windowMs: 5000, maxSamples: 8, maxInstances: 3 });
    const h = (id: string) => hello('orders', id);
    for (const id of ['fake-1', 'fake-2', 'fake-3']) {
      w.hello(h(id), 0);
      w.report(id, report({ seq: 1 }), 0);
    }
    // While the invented ids keep reporting, the table is full (a stolen token is bounded to its own service).
    assert.throws(() => w.hello(h('honest'), 2000), /already has 3 instances/);
    // Once one is silent past the missing threshold (3 intervals), the honest replica takes its place.
    w.report('fake-2', report({ seq: 2 }), 3500);
    w.report('fake-3', report({ seq: 2 }), 3500);
    w.hello(h('honest'), 3500);
    assert.equal(w.has('honest'), true);
    assert.equal(w.has('fake-1'), false);
  });

  it('never prints a secret for a config mistake (finding 8)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-trust-'));
    try {
      // A token pasted where its file's path belongs.
      const pasted = 'p4sted-t0ken-value-0123456789';
      const c = createCoordinator(
        config({
          services: [
            {
              name: 'orders',
              tokenFile: pasted,
              policy: { targets: [{ metric: 'cpu', value: 1 }] },
              actuator: { type: 'command', command: 'true' },
            },
          ],
        }),
        { baseDir: dir, actuatorFactory: () => new RecordingActuator(1) },
      );
      await assert.rejects(c.start(), (e: unknown) => {
        assert.ok(hasErrorCode(e, 'SHOAL_ERR_CONFIG'));
        const text = `${(e as Error).message} ${String((e as Error).cause ?? '')}`;
        assert.ok(!text.includes(pasted), text);
        assert.match(text, /services\[0\]\.tokenFile: cannot read the file it names \(ENOENT/);
        return true;
      });
      await writeFile(join(dir, 'short'), 'x');
      // A webhook secret put in `url:`.
      const secret = 'whsec_0123456789abcdefghij';
      assert.throws(
        () =>
          parseConfig(
            config({
              services: [
                {
                  name: 'orders',
                  token: ORDERS,
                  policy: { targets: [{ metric: 'cpu', value: 1 }] },
                  actuator: { type: 'command', webhook: { url: secret, secret: 'x'.repeat(20) } },
                },
              ],
            }),
          ),
        (e: unknown) => {
          const text = (e as Error).message;
          assert.ok(!text.includes(secret), text);
          assert.match(text, /services\[0\]\.actuator\.webhook\.url: .*not shown/);
          return true;
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('passes only grammatical victim ids to a command, and redacts its output in errors (findings 3, 4)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-trust-'));
    try {
      const out = join(dir, 'argv.json');
      const ok = new CommandActuator({
        service: 'orders',
        command: process.execPath,
        args: [
          '-e',
          `require('fs').writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)))`,
          out,
          '--',
          '{victims}',
        ],
        initialReplicas: 4,
      });
      await ok.scaleTo(1, { victims: ['orders-1', '--kubeconfig=/tmp/evil', 'orders-2,db-0', '..', 'orders-3'] });
      const { readFile } = await import('node:fs/promises');
      assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), ['--', 'orders-1,orders-3']);
      await ok.close();

      const failing = new CommandActuator({
        service: 'orders',
        command: process.execPath,
        args: [
          '-e',
          `console.error('curl: 401 for Authorization: Bearer abc.def.ghi token=s3cr3t https://u:pw@h/x'); process.exit(3)`,
        ],
      });
      await assert.rejects(failing.scaleTo(2), (e: unknown) => {
        const text = (e as Error).message;
        for (const leaked of ['abc.def.ghi', 's3cr3t', 'u:pw']) assert.ok(!text.includes(leaked), text);
        assert.match(text, /exit code 3/);
        assert.match(text, /\[redacted\]/);
        return true;
      });
      await failing.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
