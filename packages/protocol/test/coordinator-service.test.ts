import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import {
  COORDINATOR_CHANNEL_OPTIONS,
  PROTO_PATH,
  bearer,
  emptyLoadReport,
  loadCoordinatorService,
  parseBearer,
  validateDirective,
  validateHello,
  validateReport,
  type CoordinatorHandlers,
  type Hello,
  type WireAgentMessage,
} from '@shoal/protocol';

const hello: Hello = {
  protocolVersion: 1,
  service: 'orders',
  instanceId: 'orders-1',
  address: '127.0.0.1',
  port: 8080,
  startedAtMs: 1_700_000_000_000,
};

describe('shoal.v1 Coordinator service', () => {
  let server: grpc.Server | undefined;
  const clients: grpc.Client[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    if (server) await new Promise<void>((resolve) => server!.tryShutdown(() => resolve()));
    server = undefined;
  });

  it('ships the proto file in the package and finds it relative to the module', () => {
    assert.ok(existsSync(PROTO_PATH), PROTO_PATH);
    assert.match(readFileSync(PROTO_PATH, 'utf8'), /package shoal\.v1;/);
    const pkg = createRequire(import.meta.url)('@shoal/protocol/package.json') as { files: string[] };
    assert.ok(pkg.files.includes('proto'), 'package.json "files" must include proto/');
  });

  it('carries hello, reports and directives over a real stream, and the unary Report', async () => {
    const { CoordinatorService, CoordinatorClient } = loadCoordinatorService(grpc);
    const received: unknown[] = [];
    let seenToken: string | undefined;
    const handlers: CoordinatorHandlers = {
      connect(call) {
        seenToken = parseBearer(call.metadata.get('authorization')[0]);
        call.on('data', (message: WireAgentMessage) => {
          if (message.msg === 'hello') received.push(validateHello(message.hello));
          if (message.msg === 'report') {
            received.push(validateReport(message.report));
            call.write({ directive: { reportIntervalMs: 2000, drain: { deadlineMs: 50 } } });
          }
        });
        call.on('end', () => call.end());
      },
      report(call, callback) {
        const req = call.request as { report: unknown };
        const report = validateReport(req.report);
        callback(null, { directive: { desiredReplicas: report.requests } });
      },
    };
    server = new grpc.Server(COORDINATOR_CHANNEL_OPTIONS);
    server.addService(CoordinatorService, handlers);
    const port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const client = new CoordinatorClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    clients.push(client);

    const metadata = new grpc.Metadata();
    metadata.set('authorization', bearer('s3cret'));
    const stream = client.connect(metadata);
    const directive = new Promise<unknown>((resolve) =>
      stream.once('data', (m: { directive: unknown }) => resolve(m.directive)),
    );
    stream.write({ hello });
    stream.write({
      report: { ...emptyLoadReport(), seq: 1, intervalMs: 1000, inFlight: 0, requests: 4, custom: { q: 0 } },
    });
    assert.deepEqual(validateDirective(await directive), { reportIntervalMs: 2000, drain: { deadlineMs: 50 } });
    stream.end();
    await new Promise<void>((resolve) => stream.on('status', () => resolve()));
    assert.equal(seenToken, 's3cret');
    assert.deepEqual(received[0], hello);
    const report = received[1] as { inFlight: number; requests: number; custom: object };
    assert.equal(report.inFlight, 0);
    assert.equal(report.requests, 4);
    assert.deepEqual(report.custom, { q: 0 });

    const response = await new Promise<{ directive?: unknown }>((resolve, reject) =>
      client.report(
        { hello, report: { ...emptyLoadReport(), seq: 1, intervalMs: 1000, requests: 3 } },
        new grpc.Metadata(),
        {},
        (e, r) => (e ? reject(e) : resolve(r!)),
      ),
    );
    assert.deepEqual(validateDirective(response.directive), { desiredReplicas: 3 });
  });

  it('parses bearer values strictly', () => {
    assert.equal(parseBearer('Bearer abc.def'), 'abc.def');
    assert.equal(parseBearer('bearer   x'), 'x');
    assert.equal(parseBearer('Basic abc'), undefined);
    assert.equal(parseBearer('Bearer '), undefined);
    assert.equal(parseBearer(undefined), undefined);
    // The coordinator's rule too (one parser): trailing spaces only, a token of at most 4096 characters.
    assert.equal(parseBearer('Bearer abc  '), 'abc');
    assert.equal(parseBearer('Bearer abc\t'), undefined);
    assert.equal(parseBearer(`Bearer ${'t'.repeat(4096)}`), 't'.repeat(4096));
    assert.equal(parseBearer(`Bearer ${'t'.repeat(4097)}`), undefined);
  });
});
