import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createCoordinator, type Coordinator, type CoordinatorConfigInput } from '@shoal/coordinator';
import { startTestConsul, type TestConsul } from '../support/consul.js';
import { RecordingActuator, TestAgent, hello, report } from '../../packages/coordinator/test/support/agent-client.js';
import { waitFor } from '../../packages/coordinator/test/support/recording-logger.js';

const TOKEN = 'orders-token-0123456789abcdef';

function config(consulUrl: string): CoordinatorConfigInput {
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: 3_600_000,
    consul: { url: consulUrl, requestTimeoutMs: 3000 },
    ha: {
      enabled: true,
      sessionTtlMs: 10_000,
      lockDelayMs: 200,
      lockKey: 'relay/leader',
      stateKeyPrefix: 'relay/state',
    },
    services: [
      {
        name: 'orders',
        token: TOKEN,
        minReplicas: 3,
        maxReplicas: 10,
        drainTimeoutMs: 5000,
        policy: {
          targets: [{ metric: 'eventLoopUtilization', value: 0.5 }],
          panic: false,
          forecast: false,
          scaleUpHeadroom: 0,
          behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
        },
        actuator: { type: 'command', command: 'true' },
      },
    ],
  };
}

describe('coordinator followers relay agents to the leader (consul-dev)', function () {
  this.timeout(60_000);
  let consul: TestConsul;
  let a: Coordinator | undefined;
  let b: Coordinator | undefined;
  const agents: TestAgent[] = [];
  let actuatorA: RecordingActuator;

  beforeEach(async () => {
    consul = await startTestConsul();
  });
  afterEach(async () => {
    for (const x of agents.splice(0)) x.close();
    await b?.close();
    await a?.close();
    a = b = undefined;
    await consul.close();
  });

  it('relays streams, unary and HTTP reports to the leader, and the leader’s drain reaches an agent on the follower', async () => {
    actuatorA = new RecordingActuator(4);
    a = createCoordinator(config(consul.url), { id: 'a', actuatorFactory: () => actuatorA });
    await a.start();
    await waitFor(() => a!.isLeader, 10_000, 'a to lead');
    b = createCoordinator(config(consul.url), { id: 'b', actuatorFactory: () => new RecordingActuator(4) });
    await b.start();
    await waitFor(
      async () =>
        ((await (await fetch(`${b!.urls().http}/readyz`)).json()) as { reason: string }).reason === 'following a',
      10_000,
      'b to follow a',
    );

    const onB = new TestAgent(b.urls().grpc, TOKEN).open();
    const onA = new TestAgent(a.urls().grpc, TOKEN).open();
    agents.push(onB, onA);
    onB.send({ hello: hello('orders', 'on-b') });
    onB.send({ report: report({ eventLoopUtilization: 0.01 }) });
    onA.send({ hello: hello('orders', 'on-a') });
    onA.send({ report: report({ eventLoopUtilization: 0.2 }) });
    const unary = new TestAgent(b.urls().grpc, TOKEN);
    agents.push(unary);
    assert.deepEqual(
      await unary.unary({ hello: hello('orders', 'unary-via-b'), report: report({ eventLoopUtilization: 0.2 }) }),
      { directive: null },
    );
    const http = await fetch(`${b.urls().http}/v1/report`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ hello: hello('orders', 'http-via-b'), report: report({ eventLoopUtilization: 0.2 }) }),
    });
    assert.equal(http.status, 200);
    // A refusal by the leader reaches the client through the follower.
    await assert.rejects(
      unary.unary({ hello: hello('orders', 'x'), report: report() }, 'wrong-token-0123456789abcdef'),
      (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED,
    );

    const ids = await waitFor(
      () => {
        const inst = a!.services()[0]!.instances.filter((i) => i.lastReport);
        return inst.length === 4 ? inst.map((i) => i.id).sort() : undefined;
      },
      10_000,
      'all four instances in the leader window',
    );
    assert.deepEqual(ids, ['http-via-b', 'on-a', 'on-b', 'unary-via-b']);
    assert.equal(b.services()[0]!.instances.length, 0, 'the follower keeps no window of its own');

    // The leader scales 4 → 3 and drains the least loaded instance, whose stream is held by the follower.
    const pending = a.tick('orders');
    await waitFor(() => onB.directives.some((d) => d.drain), 10_000, 'the drain to reach the agent on b');
    onB.stream!.end();
    const record = await pending;
    assert.deepEqual(record?.victims, ['on-b']);
    assert.deepEqual(record?.drained, { 'on-b': 'drained' });
    assert.deepEqual(actuatorA.calls, [{ replicas: 3, victims: ['on-b'] }]);
  });
});
