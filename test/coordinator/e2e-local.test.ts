import assert from 'node:assert/strict';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createCoordinator, type Coordinator } from '@shoal/coordinator';
import { pino } from 'pino';

const FIXTURES = {
  'a minimal script speaking @shoal/protocol': fileURLToPath(
    new URL('./fixtures/replica-service.mjs', import.meta.url),
  ),
  'a service built on @shoal/agent': fileURLToPath(new URL('./fixtures/agent-service.mjs', import.meta.url)),
};
const TOKEN = 'web-token-0123456789abcdef';

interface Target {
  targets: string[];
  labels: Record<string, string>;
}

/** A client that calls the service throughout, finding replicas through the coordinator's /v1/sd. */
class Client {
  ok = 0;
  failed: string[] = [];
  byInstance = new Map<string, number>();
  private endpoints: string[] = [];
  private next = 0;
  private running = true;
  private readonly loops: Promise<void>[] = [];
  rate = 5;

  constructor(private readonly sdUrl: string) {}

  start(): void {
    this.loops.push(this.refreshLoop(), this.callLoop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  ready(): number {
    return this.endpoints.length;
  }

  private async refreshLoop(): Promise<void> {
    while (this.running) {
      try {
        const groups = (await (await fetch(this.sdUrl)).json()) as Target[];
        this.endpoints = groups
          .filter((g) => g.labels.service === 'web' && g.labels.ready === 'true')
          .flatMap((g) => g.targets);
      } catch {
        // keep the last list
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async callLoop(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    while (this.running) {
      if (this.endpoints.length > 0) {
        const target = this.endpoints[this.next++ % this.endpoints.length] as string;
        const p = this.call(target).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await new Promise((r) => setTimeout(r, 1000 / this.rate));
    }
    await Promise.all(inFlight);
  }

  private call(target: string): Promise<void> {
    const [host, port] = target.split(':');
    return new Promise((resolve) => {
      const req = request({ host, port: Number(port), path: '/', agent: false, timeout: 5000 }, (res) => {
        const instance = String(res.headers['x-instance']);
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) {
            this.ok++;
            this.byInstance.set(instance, (this.byInstance.get(instance) ?? 0) + 1);
          } else this.failed.push(`${target}: HTTP ${res.statusCode}`);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        this.failed.push(`${target}: ${e.message}`);
        resolve();
      });
      req.end();
    });
  }
}

async function until<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('coordinator end to end with the local actuator', function () {
  this.timeout(90_000);
  let coordinator: Coordinator | undefined;
  let client: Client | undefined;

  afterEach(async () => {
    await client?.stop();
    client = undefined;
    await coordinator?.close();
    coordinator = undefined;
  });

  for (const [what, REPLICA] of Object.entries(FIXTURES)) {
    it(`with ${what}: scales up as load rises, drains a victim as it falls, and a client calling throughout sees no failure`, async () => {
      const logger = pino({ level: process.env.SHOAL_TEST_LOG ?? 'silent' });
      coordinator = createCoordinator(
        {
          listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
          syncPeriodMs: 500,
          services: [
            {
              name: 'web',
              token: TOKEN,
              minReplicas: 1,
              maxReplicas: 4,
              reportIntervalMs: 200,
              drainTimeoutMs: 5000,
              policy: {
                targets: [{ metric: 'rps', value: 10 }],
                panic: false,
                scaleUpHeadroom: 0,
                forecast: false,
                behavior: {
                  scaleUp: { stabilizationWindowSeconds: 0 },
                  scaleDown: {
                    stabilizationWindowSeconds: 2,
                    policies: [{ type: 'Percent', value: 100, periodSeconds: 1 }],
                  },
                },
              },
              actuator: {
                type: 'local',
                command: process.execPath,
                args: [REPLICA],
                env: { REPORT_INTERVAL_MS: '200', DRAIN_GRACE_MS: '800' },
                stopTimeoutMs: 3000,
              },
            },
          ],
        },
        { logger, env: process.env },
      );
      await coordinator.start();
      const actuator = coordinator.actuator('web')!;
      client = new Client(`${coordinator.urls().http}/v1/sd`);
      client.start();

      // Start: the loop raises the count to minReplicas; low load keeps it there.
      await until('one ready replica', () => client!.ready() === 1, 20_000);

      // Load rises: 35 req/s against a target of 10 per replica.
      client.rate = 35;
      await until('scale-up to 4 ready replicas', () => client!.ready() === 4, 30_000);
      await new Promise((r) => setTimeout(r, 1500)); // the load spreads over the new replicas
      const up = coordinator.decisions('web')!.find((d) => d.desiredReplicas > d.currentReplicas && d.applied);
      assert.ok(up, 'a scale-up decision was applied');
      assert.ok(
        up.reasons.some((r) => r.startsWith('rps')),
        up.reasons.join('; '),
      );

      // Load falls: 4 req/s in total.
      client.rate = 4;
      const down = await until(
        'a scale-down with drained victims',
        () =>
          coordinator!.decisions('web')!.find((d) => d.desiredReplicas < d.currentReplicas && d.applied && d.drained),
        40_000,
      );
      assert.ok(
        Object.values(down.drained!).every((v) => v === 'drained'),
        JSON.stringify(down.drained),
      );
      await until('the victims gone', async () => (await actuator.getReplicas()) === down.desiredReplicas, 10_000);
      for (const victim of down.victims ?? []) {
        assert.ok(!actuator.replicas().some((r) => r.id === victim), `${victim} was removed`);
      }
      await new Promise((r) => setTimeout(r, 500));
      await client.stop();

      assert.deepEqual(client.failed, [], 'no request failed');
      assert.ok(client.ok > 50, `${client.ok} requests succeeded`);
      if (process.env.SHOAL_TEST_LOG) {
        for (const d of coordinator.decisions('web')!.reverse()) {
          if (d.currentReplicas !== d.desiredReplicas)
            console.log(d.currentReplicas, '→', d.desiredReplicas, d.reasons.join('; '), d.drained ?? '');
        }
        console.log(client.ok, [...client.byInstance.entries()]);
      }
      assert.ok(client.byInstance.size >= 4, 'the load was spread over the new replicas');
    });
  }
});
