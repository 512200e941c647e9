import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createCoordinator, type Coordinator } from '@shoal/coordinator';
import { RecordingActuator } from './support/agent-client.js';
import { recordingLogger } from './support/recording-logger.js';

const policy = { targets: [{ metric: 'inFlight', value: 10 }] };
const actuator = { type: 'command' as const, command: 'true' };

describe('coordinator metrics', () => {
  let coordinator: Coordinator | undefined;
  afterEach(async () => {
    await coordinator?.close();
    coordinator = undefined;
  });

  it('starts every service decision and actuator-error series at 0, and forgets a service removed by reload', async () => {
    const registry = new Registry();
    const services = [
      { name: 'orders', token: 'orders-token-0123456789abcdef', policy, actuator },
      { name: 'users', token: 'users-token-0123456789abcdef', policy, actuator },
    ];
    coordinator = createCoordinator(
      { listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' }, syncPeriodMs: 3_600_000, services },
      { registry, logger: recordingLogger(), actuatorFactory: () => new RecordingActuator(1) },
    );
    await coordinator.start();
    const decisions = async () =>
      (await registry.getSingleMetric('shoal_coordinator_decisions_total')!.get()).values.map(
        (v) => `${String(v.labels.service)} ${String(v.labels.direction)} ${String(v.labels.applied)} ${v.value}`,
      );
    const before = await decisions();
    for (const service of ['orders', 'users']) {
      for (const direction of ['up', 'down', 'none']) {
        for (const applied of ['true', 'false']) assert.ok(before.includes(`${service} ${direction} ${applied} 0`));
      }
    }
    const errors = (await registry.getSingleMetric('shoal_coordinator_actuator_errors_total')!.get()).values;
    assert.deepEqual(errors.map((v) => [v.labels.service, v.value]).sort(), [
      ['orders', 0],
      ['users', 0],
    ]);
    await coordinator.reload({
      listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
      syncPeriodMs: 3_600_000,
      services: [services[0]!],
    });
    assert.ok(
      (await decisions()).every((line) => line.startsWith('orders ')),
      'users series removed',
    );
  });
});
