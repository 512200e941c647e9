/**
 * External metrics from Prometheus (issue #20): the real `prometheus` binary (Debian's package; `.ci/run` installs
 * it) scrapes a tiny exporter whose value the test changes; a coordinator whose target is a PromQL query follows
 * that value, and with minReplicas 0 wakes from zero above its activationValue and goes back once idle. A bad query
 * and an unreachable server leave the metric missing (no scale-down) with the reason in
 * the decision log. The client's timeout, retries, Authorization header and TLS CA are tested over real sockets.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { hasErrorCode } from '@shoal/core';
import {
  createCoordinator,
  type Actuator,
  type Coordinator,
  type ReplicaInfo,
  type ScaleOptions,
} from '@shoal/coordinator';
import { PrometheusClient } from '@shoal/coordinator/internal';
import { findPrometheus, startPrometheus, type RunningPrometheus } from '../monitoring/prometheus-process.js';
import { ROOT, freePort, waitFor } from '../kit/index.js';

const prometheusBinary = findPrometheus();

function requirePrometheus(ctx: Mocha.Context): string {
  if (prometheusBinary) return prometheusBinary;
  const why = 'the `prometheus` binary is not on PATH (Debian: apt-get install prometheus; .ci/run installs it)';
  if (process.env.CI) assert.fail(`cannot run the Prometheus test in CI: ${why}`);
  if (ctx.test) ctx.test.title += ` (skipped: ${why})`;
  ctx.skip();
}

/** A tiny exporter: `shoal_test_queue_depth{queue="q"} <depth>` (and a second series for the "several" case). */
async function startExporter(): Promise<{ port: number; set(v: number): void; close(): Promise<void> }> {
  let depth = 0;
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(
      `# TYPE shoal_test_queue_depth gauge\nshoal_test_queue_depth{queue="q"} ${depth}\n` +
        `# TYPE shoal_test_pair gauge\nshoal_test_pair{n="1"} 1\nshoal_test_pair{n="2"} 2\n`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    set: (v) => {
      depth = v;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

class CountingActuator implements Actuator {
  readonly type = 'counting';
  constructor(public count: number) {}
  async getReplicas(): Promise<number> {
    return this.count;
  }
  async scaleTo(replicas: number, _options?: ScaleOptions): Promise<void> {
    this.count = replicas;
  }
  watch(): () => void {
    return () => {};
  }
  replicas(): readonly ReplicaInfo[] {
    return [];
  }
  async close(): Promise<void> {}
}

describe('external metrics from a real Prometheus', function () {
  this.timeout(60_000);
  let prometheus: RunningPrometheus | undefined;
  let exporter: Awaited<ReturnType<typeof startExporter>> | undefined;
  let client: PrometheusClient | undefined;
  let coordinator: Coordinator | undefined;

  before(async function () {
    const binary = requirePrometheus(this);
    exporter = await startExporter();
    prometheus = await startPrometheus(
      binary,
      [
        'global:',
        '  scrape_interval: 1s',
        'scrape_configs:',
        '  - job_name: queue',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${exporter.port}']`,
        '',
      ].join('\n'),
    );
  });

  afterEach(async () => {
    await coordinator?.close();
    coordinator = undefined;
    await client?.close();
    client = undefined;
  });

  after(async () => {
    await prometheus?.close();
    await exporter?.close();
  });

  it('evaluates a query to one number and follows the exporter; refuses a bad query at once and several series', async () => {
    client = new PrometheusClient({ url: prometheus!.url, timeoutMs: 5000 });
    exporter!.set(30);
    await waitFor(async () => (await client!.query('sum(shoal_test_queue_depth)')) === 30, {
      timeoutMs: 20_000,
      what: 'Prometheus to scrape 30',
    });
    assert.equal(await client.query('scalar(sum(shoal_test_queue_depth)) * 2'), 60, 'a scalar result');
    assert.equal(await client.query('sum(shoal_test_no_such_metric)'), 0, 'no series: 0 (as KEDA)');
    await assert.rejects(client.query('sum(shoal_test_queue_depth'), (error: unknown) => {
      assert.ok(hasErrorCode(error, 'SHOAL_ERR_EXTERNAL_METRIC'), String(error));
      assert.match((error as Error).message, /Prometheus refused the query \(HTTP 400\): bad_data: .*parse error/);
      assert.equal((error as { retryable: boolean }).retryable, false);
      return true;
    });
    await assert.rejects(client.query('shoal_test_pair'), /returned 2 series; it must return one number/);
  });

  it('a coordinator whose target is a PromQL query follows its value; a bad query or a dead server holds the count with the reason logged', async () => {
    const actuator = new CountingActuator(1);
    const config = (query: string, url = prometheus!.url) => ({
      insecureDev: true,
      listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
      syncPeriodMs: 60_000, // the test ticks by hand
      prometheus: { url, timeoutMs: 2000, maxAttempts: 2, backoff: { baseMs: 50, capMs: 100 } },
      services: [
        {
          name: 'worker',
          minReplicas: 1,
          maxReplicas: 10,
          policy: {
            targets: [{ metric: 'queue_depth', query, value: 10 }],
            panic: false,
            scaleUpHeadroom: 0,
            behavior: {
              scaleUp: { stabilizationWindowSeconds: 0 },
              scaleDown: {
                stabilizationWindowSeconds: 0,
                policies: [{ type: 'Percent', value: 100, periodSeconds: 1 }],
              },
            },
          },
          actuator: { type: 'command' as const, command: 'true' },
        },
      ],
    });
    const query = 'sum(shoal_test_queue_depth{queue="q"})';
    coordinator = createCoordinator(config(query), { actuatorFactory: () => actuator });
    await coordinator.start();

    exporter!.set(45);
    await waitFor(async () => (await coordinator!.tick('worker'), actuator.count === 5), {
      timeoutMs: 20_000,
      what: () => `5 replicas for 45 messages (have ${actuator.count})`,
    });
    exporter!.set(12);
    const down = await waitFor(
      async () => {
        const d = await coordinator!.tick('worker');
        return actuator.count === 2 ? d : undefined;
      },
      { timeoutMs: 20_000, what: () => `2 replicas for 12 messages (have ${actuator.count})` },
    );
    assert.ok(
      down!.reasons.some((r) => r.startsWith('queue_depth total 12 / target 10 → 2')),
      down!.reasons.join('; '),
    );

    // A bad query: the target has no value, the count holds, and the log says why.
    await coordinator.reload(config('sum(shoal_test_queue_depth'));
    exporter!.set(0);
    const bad = await coordinator.tick('worker');
    assert.equal(actuator.count, 2);
    assert.equal(bad!.desiredReplicas, 2);
    assert.ok(
      bad!.reasons.some((r) => /^external metric queue_depth: Prometheus refused the query \(HTTP 400\)/.test(r)),
      bad!.reasons.join('; '),
    );
    await coordinator.close();

    // An unreachable server (nothing listens on the port): retried, then missing, the count holds.
    const deadPort = await freePort();
    coordinator = createCoordinator(config(query, `http://127.0.0.1:${deadPort}`), { actuatorFactory: () => actuator });
    await coordinator.start();
    const dead = await coordinator.tick('worker');
    assert.equal(actuator.count, 2);
    assert.ok(
      dead!.reasons.some((r) =>
        r.startsWith(`external metric queue_depth: cannot reach Prometheus at 127.0.0.1:${deadPort}: ECONNREFUSED`),
      ),
      dead!.reasons.join('; '),
    );
  });

  it('minReplicas 0 on a PromQL target: stays at 0 at or below activationValue, wakes sized to the value above it, back to 0 once idle', async () => {
    // The last test left the exporter at 0 after 12: either is at or below the activation value (20).
    const actuator = new CountingActuator(0);
    coordinator = createCoordinator(
      {
        insecureDev: true,
        listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
        syncPeriodMs: 60_000, // the test ticks by hand
        prometheus: { url: prometheus!.url, timeoutMs: 2000, maxAttempts: 2, backoff: { baseMs: 50, capMs: 100 } },
        services: [
          {
            name: 'worker',
            minReplicas: 0,
            maxReplicas: 10,
            idleCooldownMs: 500,
            policy: {
              targets: [
                {
                  metric: 'queue_depth',
                  query: 'sum(shoal_test_queue_depth{queue="q"})',
                  value: 10,
                  activationValue: 20,
                },
              ],
              panic: false,
              scaleUpHeadroom: 0,
              behavior: {
                // Every tick at 0 below the activation value is a decision too: none may spend the wake's scale-up.
                scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: 'Pods', value: 10, periodSeconds: 15 }] },
                scaleDown: {
                  stabilizationWindowSeconds: 0,
                  policies: [{ type: 'Percent', value: 100, periodSeconds: 1 }],
                },
              },
            },
            actuator: { type: 'command' as const, command: 'true' },
          },
        ],
      },
      { actuatorFactory: () => actuator },
    );
    await coordinator.start();
    const tickUntil = (what: string, done: () => boolean) =>
      waitFor(
        async () => {
          const d = await coordinator!.tick('worker');
          return d && done() ? d : undefined;
        },
        { timeoutMs: 20_000, what: () => `${what} (have ${actuator.count})` },
      );
    const quiet = await coordinator.tick('worker');
    assert.equal(actuator.count, 0, `not woken at or below activationValue: ${quiet!.reasons.join('; ')}`);
    exporter!.set(45);
    const woke = await tickUntil('woken for 45 messages', () => actuator.count > 0);
    assert.equal(actuator.count, 5, woke.reasons.join('; '));
    assert.ok(
      woke.reasons.includes('activated from zero (queue_depth 45 > activation 20) → 5'),
      woke.reasons.join('; '),
    );
    exporter!.set(0);
    const idle = await tickUntil('back to 0 once idle for idleCooldownMs', () => actuator.count === 0);
    assert.ok(
      idle.reasons.some((r) => /^idle for \d+ s \(queue_depth 0 ≤ activation 20\): scaling to zero$/.test(r)),
      idle.reasons.join('; '),
    );
  });
});

describe('PrometheusClient over real sockets', () => {
  const fixtures = join(ROOT, 'packages', 'consul', 'test', 'fixtures', 'tls');
  const servers: Array<http.Server> = [];
  let client: PrometheusClient | undefined;

  afterEach(async () => {
    await client?.close();
    client = undefined;
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });

  async function listen(server: http.Server): Promise<number> {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  const answer = (res: http.ServerResponse, value: string) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ status: 'success', data: { resultType: 'scalar', result: [1, value] } }));
  };

  it('sends the Authorization header over TLS trusting only the given CA', async () => {
    const seen: Array<string | undefined> = [];
    const port = await listen(
      https.createServer(
        { cert: readFileSync(join(fixtures, 'server.pem')), key: readFileSync(join(fixtures, 'server.key')) },
        (req, res) => {
          seen.push(req.headers.authorization);
          answer(res, '7');
        },
      ),
    );
    client = new PrometheusClient({
      url: `https://127.0.0.1:${port}`,
      authorization: 'Bearer s3cret-token',
      ca: readFileSync(join(fixtures, 'ca.pem')),
    });
    assert.equal(await client.query('up'), 7);
    assert.deepEqual(seen, ['Bearer s3cret-token']);
    const untrusting = new PrometheusClient({ url: `https://127.0.0.1:${port}`, maxAttempts: 1 });
    await assert.rejects(
      untrusting.query('up'),
      /cannot reach Prometheus at 127\.0\.0\.1:\d+: (SELF_SIGNED|UNABLE_TO)/,
    );
    await untrusting.close();
  });

  it('times out each attempt and retries with backoff, then fails without showing the credential', async () => {
    let calls = 0;
    const port = await listen(
      http.createServer(() => {
        calls++; // never answers
      }),
    );
    client = new PrometheusClient({
      url: `http://127.0.0.1:${port}`,
      timeoutMs: 200,
      maxAttempts: 3,
      backoff: { baseMs: 10, capMs: 20 },
      authorization: 'Bearer s3cret-token',
    });
    await assert.rejects(client.query('up'), (error: unknown) => {
      assert.ok(hasErrorCode(error, 'SHOAL_ERR_TIMEOUT'), String(error));
      assert.match((error as Error).message, /did not answer within 200 ms/);
      assert.ok(!String((error as Error).message).includes('s3cret'));
      return true;
    });
    assert.equal(calls, 3);
  });

  it('retries a 503 and takes the next answer', async () => {
    let calls = 0;
    const port = await listen(
      http.createServer((_req, res) => {
        if (++calls === 1) {
          res.statusCode = 503;
          res.end('{"status":"error","errorType":"unavailable","error":"starting"}');
        } else answer(res, '3');
      }),
    );
    client = new PrometheusClient({ url: `http://127.0.0.1:${port}`, backoff: { baseMs: 10, capMs: 20 } });
    assert.equal(await client.query('up'), 3);
    assert.equal(calls, 2);
  });

  it('validates its options with the option name and the value', () => {
    assert.throws(
      () => new PrometheusClient({ url: 'ftp://x' }),
      /prometheus.url must be an http\(s\) URL, got "ftp:\/\/x"/,
    );
    assert.throws(() => new PrometheusClient({ url: 'http://u:p@x' }), /must not carry credentials/);
    assert.throws(() => new PrometheusClient({ url: 'http://x', timeoutMs: 0 }), /prometheus.timeoutMs/);
    assert.throws(
      () => new PrometheusClient({ url: 'http://x', maxAttempts: 11 }),
      /maxAttempts must be <= 10, got 11/,
    );
    assert.throws(() => new PrometheusClient({ url: 'http://x', authorization: 'a\nb' }), /one line/);
  });
});
