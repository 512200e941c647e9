import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import type { Coordinator } from '@shoal/coordinator';
import type { AgentMessage } from '@shoal/protocol';
import { TestAgent, hello, report, startOrdersCoordinator } from './support/agent-client.js';

const ORDERS = 'orders-token-0123456789abcdef';

/** Strings an attacker would try in an id, a name or an address, and arbitrary ones. */
const hostileString = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    '.',
    '..',
    '../../etc/passwd',
    '--kubeconfig=/tmp/evil',
    'orders-1,db-0',
    'orders-1\n',
    ' ',
    '\u0000',
    'x'.repeat(300),
    'orders',
    'orders-1',
    '127.0.0.1',
    '::1',
    '/metrics?x=1',
  ),
);
const uint32 = fc.oneof(fc.nat({ max: 4_294_967_295 }), fc.constantFrom(0, 1, 65_535, 65_536, 4_294_967_295));

/** Hellos with type-correct fields (they must serialize) and hostile values; any key may be missing. */
const hostileHello = fc.record(
  {
    protocolVersion: fc.oneof(fc.constantFrom(0, 1, 2), uint32),
    service: fc.oneof(fc.constant('orders'), hostileString),
    instanceId: hostileString,
    address: hostileString,
    port: uint32,
    zone: hostileString,
    version: hostileString,
    startedAtMs: fc.oneof(fc.integer(), fc.constantFrom(0, -1, Number.MAX_SAFE_INTEGER, Date.now() + 1e10)),
    metricsPort: uint32,
    metricsPath: hostileString,
  },
  { requiredKeys: [] },
);

/** gRPC codes that mean the server failed rather than refused: never acceptable. */
const SERVER_FAILURES = new Set([grpc.status.UNKNOWN, grpc.status.INTERNAL, grpc.status.UNAVAILABLE]);

describe('hostile agent hellos over gRPC and HTTP (property-based, issue 18)', () => {
  let coordinator: Coordinator | undefined;
  let agent: TestAgent | undefined;
  afterEach(async () => {
    agent?.close();
    agent = undefined;
    await coordinator?.close();
    coordinator = undefined;
  });

  async function start(): Promise<Coordinator> {
    coordinator = await startOrdersCoordinator(ORDERS);
    return coordinator;
  }

  it('ends every stream opened with a generated hello with a refusal status or OK, never a server failure', async () => {
    const c = await start();
    agent = new TestAgent(c.urls().grpc, ORDERS);
    const client = agent.client;
    await fc.assert(
      fc.asyncProperty(hostileHello, fc.boolean(), async (h, withToken) => {
        const md = new grpc.Metadata();
        if (withToken) md.set('authorization', `Bearer ${ORDERS}`);
        const stream = client.connect(md);
        const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
        stream.on('data', () => {});
        stream.on('error', () => {});
        stream.write({ hello: h } as AgentMessage);
        stream.write({ report: report() });
        stream.end(); // a finished agent: the coordinator ends the stream with its verdict
        const s = await status;
        assert.ok(!SERVER_FAILURES.has(s.code), `status ${s.code} ${s.details}`);
        if (!withToken) assert.equal(s.code, grpc.status.UNAUTHENTICATED, s.details);
        if (s.code !== grpc.status.OK) assert.ok(s.details.length > 0 && s.details.length < 1000, 'a clear message');
      }),
      { numRuns: 150 },
    );
    // Still serving: an honest agent reports.
    const honest = new TestAgent(c.urls().grpc, ORDERS).open();
    honest.send({ hello: hello('orders', 'orders-honest') });
    honest.send({ report: report() });
    honest.stream!.end();
    assert.equal((await honest.closed()).code, grpc.status.OK);
    honest.close();
  });

  it('answers every generated hello over HTTP with 200 or a 4xx, never a 5xx', async () => {
    const c = await start();
    const url = `${c.urls().http}/v1/report`;
    await fc.assert(
      fc.asyncProperty(hostileHello, async (h) => {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${ORDERS}` },
          body: JSON.stringify({ hello: h, report: report() }),
        });
        const text = await res.text();
        assert.ok(res.status === 200 || (res.status >= 400 && res.status < 500), `got ${res.status}: ${text}`);
        assert.doesNotMatch(text, /\n\s+at /, 'no stack trace');
      }),
      { numRuns: 150 },
    );
    assert.equal((await fetch(`${c.urls().http}/healthz`)).status, 200);
  });
});
