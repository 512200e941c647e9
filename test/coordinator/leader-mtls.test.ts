/**
 * HA under mutual TLS (`tls.requireClientCert`): an agent shows a certificate naming its service to a follower, and
 * the follower relays it to the leader with its own client certificate (`ha.relay`). Before `ha.relay` the relay
 * showed the coordinators' server certificate, which names no service, and the leader refused every relayed agent
 * (PERMISSION_DENIED: "the client certificate does not name service ..."). A follower whose certificate does not
 * carry `ha.relay.name` is still refused: the leader trusts a relay only by that name.
 */
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createAgent, type Agent } from '@shoal/agent';
import { createCoordinator, type Coordinator, type CoordinatorConfigInput } from '@shoal/coordinator';
import { loadCoordinatorService, type WireCoordinatorMessage } from '@shoal/protocol';
import { startTestConsul, type TestConsul } from '../support/consul.js';
import { createTestCa, issueClientCertificate, opensslAvailable, type TestCa } from '../support/test-ca.js';
import { waitFor } from '../kit/index.js';
import { RecordingActuator, hello } from '../../packages/coordinator/test/support/agent-client.js';

const TOKEN = 'orders-token-0123456789abcdef';
const SERVER_NAME = 'shoal-coordinator.shoal.svc';
const RELAY_NAME = 'shoal-relay.shoal.svc';

function config(consulUrl: string, ca: TestCa, relay: { certFile: string; keyFile: string }): CoordinatorConfigInput {
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    tls: {
      certFile: ca.certFile,
      keyFile: ca.keyFile,
      caFile: ca.caFile,
      serverName: SERVER_NAME,
      requireClientCert: true,
    },
    syncPeriodMs: 3_600_000,
    consul: { url: consulUrl, requestTimeoutMs: 3000 },
    ha: {
      enabled: true,
      sessionTtlMs: 10_000,
      lockDelayMs: 200,
      lockKey: 'mtls/leader',
      stateKeyPrefix: 'mtls/state',
      relay: { name: RELAY_NAME, certFile: relay.certFile, keyFile: relay.keyFile },
    },
    services: [
      {
        name: 'orders',
        token: TOKEN,
        minReplicas: 1,
        maxReplicas: 10,
        reportIntervalMs: 250,
        policy: { targets: [{ metric: 'inFlight', value: 10 }], panic: false, forecast: false },
        actuator: { type: 'command', command: 'true' },
      },
    ],
  };
}

(opensslAvailable ? describe : describe.skip)('HA with mutual TLS: the follower relays with ha.relay', function () {
  this.timeout(60_000);
  let ca: TestCa;
  let consul: TestConsul;
  const closers: Array<() => Promise<void> | void> = [];

  before(() => {
    ca = createTestCa([SERVER_NAME], []);
  });
  after(() => ca.remove());
  beforeEach(async () => {
    consul = await startTestConsul();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await consul.close();
  });

  async function start(id: string, relay: { certFile: string; keyFile: string }): Promise<Coordinator> {
    const c = createCoordinator(config(consul.url, ca, relay), {
      id,
      actuatorFactory: () => new RecordingActuator(1),
    });
    closers.push(() => c.close());
    await c.start();
    return c;
  }

  function agentOn(follower: Coordinator, instanceId: string): Agent {
    const cert = issueClientCertificate(ca, 'orders');
    const agent = createAgent({
      service: 'orders',
      port: 1,
      address: '127.0.0.1',
      instanceId,
      reportIntervalMs: 250,
      metrics: false,
      coordinator: {
        url: follower.urls().grpc,
        token: TOKEN,
        tls: { ca: ca.ca.toString(), cert: cert.cert.toString(), key: cert.key.toString(), serverName: SERVER_NAME },
      },
      onDrained: () => {},
    });
    closers.push(() => agent.close());
    return agent;
  }

  it('relays an mTLS agent to the leader; a follower whose certificate lacks the relay name is refused', async () => {
    const relay = issueClientCertificate(ca, RELAY_NAME);
    const a = await start('a', relay);
    await waitFor(() => a.isLeader, { timeoutMs: 10_000, what: 'a to lead' });
    const b = await start('b', relay);
    assert.equal(b.isLeader, false);

    // A real agent with a certificate naming its service reports to the follower; the leader takes it.
    await agentOn(b, 'orders-via-b').start();
    await waitFor(() => a.services()[0]!.instances.find((i) => i.id === 'orders-via-b' && i.lastReportAtMs), {
      timeoutMs: 15_000,
      what: 'the mTLS agent on b reporting to a through the relay',
    });
    assert.equal(b.services()[0]!.instances.length, 0, 'b relays, it keeps no window');

    // A follower relaying with a certificate that does not carry ha.relay.name (a valid one of the same CA).
    const c = await start('c', issueClientCertificate(ca, 'not-the-relay'));
    assert.equal(c.isLeader, false);
    const { CoordinatorClient } = loadCoordinatorService(grpc);
    const cert = issueClientCertificate(ca, 'orders');
    const client = new CoordinatorClient(
      c.urls().grpc.replace(/^grpcs:\/\//, ''),
      grpc.credentials.createSsl(ca.ca, cert.key, cert.cert),
      { 'grpc.ssl_target_name_override': SERVER_NAME, 'grpc.default_authority': SERVER_NAME },
    );
    closers.push(() => client.close());
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${TOKEN}`);
    const stream = client.connect(metadata) as unknown as grpc.ClientDuplexStream<unknown, WireCoordinatorMessage>;
    const ended = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
    // c checks the agent's certificate itself (it names "orders"), then relays the hello to a (as soon as it knows a).
    stream.write({ hello: hello('orders', 'orders-via-c') });
    const error = await ended;
    assert.equal(error.code, grpc.status.PERMISSION_DENIED);
    assert.match(error.details, /client certificate does not name service "orders"/);
    assert.equal(
      a.services()[0]!.instances.some((i) => i.id === 'orders-via-c'),
      false,
      'the leader never took the agent relayed without the relay name',
    );
  });
});
