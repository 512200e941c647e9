import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  EXTERNAL_SCALER_PROTO_PATH,
  createCoordinator,
  parseConfig,
  type Coordinator,
  type CoordinatorConfigInput,
} from '@shoal/coordinator';
import { loadCoordinatorService, type WireCoordinatorMessage } from '@shoal/protocol';
import { RecordingActuator, hello } from './support/agent-client.js';

const run = promisify(execFile);
/** The coordinator's certificate names localhost (a TLS server name cannot be an IP address). */
const NAME = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' };
const ORDERS = 'orders-token-0123456789abcdef';
const { CoordinatorClient } = loadCoordinatorService(grpc);

interface Pair {
  key: Buffer;
  cert: Buffer;
}

/** A CA, and certificates it signs, made with the openssl CLI for this test run. */
class TestPki {
  constructor(readonly dir: string) {}

  private path(name: string): string {
    return join(this.dir, name);
  }

  async ca(name: string): Promise<Pair> {
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      this.path(`${name}.key`),
      '-out',
      this.path(`${name}.crt`),
    ]);
    return this.read(name);
  }

  async issue(ca: string, name: string, san: string): Promise<Pair> {
    await run('openssl', [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      this.path(`${name}.key`),
      '-out',
      this.path(`${name}.csr`),
    ]);
    await writeFile(this.path(`${name}.ext`), `subjectAltName=${san}\n`);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      this.path(`${name}.csr`),
      '-CA',
      this.path(`${ca}.crt`),
      '-CAkey',
      this.path(`${ca}.key`),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      this.path(`${name}.ext`),
      '-out',
      this.path(`${name}.crt`),
    ]);
    return this.read(name);
  }

  private async read(name: string): Promise<Pair> {
    return { key: await readFile(this.path(`${name}.key`)), cert: await readFile(this.path(`${name}.crt`)) };
  }

  file(name: string): string {
    return this.path(name);
  }
}

describe('mutual TLS for agents and KEDA (tls.requireClientCert)', function () {
  this.timeout(30_000);
  let dir: string;
  let pki: TestPki;
  let ca: Pair;
  const clients: Record<string, Pair> = {};
  let coordinator: Coordinator | undefined;
  const closers: Array<() => void> = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-mtls-'));
    pki = new TestPki(dir);
    ca = await pki.ca('shoal-ca');
    await pki.issue('shoal-ca', 'coordinator', 'IP:127.0.0.1,DNS:localhost');
    clients.orders = await pki.issue('shoal-ca', 'orders', 'DNS:orders');
    clients.users = await pki.issue('shoal-ca', 'users', 'DNS:users');
    clients.keda = await pki.issue('shoal-ca', 'keda', 'DNS:keda');
    await pki.ca('rogue-ca');
    clients.rogue = await pki.issue('rogue-ca', 'rogue-orders', 'DNS:orders');
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    for (const c of closers.splice(0)) c();
    await coordinator?.close();
    coordinator = undefined;
  });

  function config(): CoordinatorConfigInput {
    return {
      listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
      syncPeriodMs: 3_600_000,
      tls: {
        certFile: pki.file('coordinator.crt'),
        keyFile: pki.file('coordinator.key'),
        caFile: pki.file('shoal-ca.crt'),
        requireClientCert: true,
      },
      keda: { clientName: 'keda' },
      services: [
        {
          name: 'orders',
          token: ORDERS,
          policy: { targets: [{ metric: 'eventLoopUtilization', value: 0.5 }] },
          actuator: { type: 'command', command: 'true' },
        },
      ],
    };
  }

  async function start(): Promise<string> {
    coordinator = createCoordinator(config(), { actuatorFactory: () => new RecordingActuator(1) });
    await coordinator.start();
    return coordinator.urls().grpc.replace(/^grpcs:\/\//, '');
  }

  function credentials(pair: Pair | undefined): grpc.ChannelCredentials {
    return pair ? grpc.credentials.createSsl(ca.cert, pair.key, pair.cert) : grpc.credentials.createSsl(ca.cert);
  }

  /** Opens an agent stream, says hello for orders, resolves with the first directive or the final status. */
  function helloOver(address: string, pair: Pair | undefined): Promise<'accepted' | grpc.StatusObject> {
    const client = new CoordinatorClient(address, credentials(pair), NAME);
    closers.push(() => client.close());
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${ORDERS}`);
    const stream = client.connect(md);
    closers.push(() => stream.cancel());
    stream.on('error', () => {});
    stream.write({ hello: hello('orders', 'orders-1') } as never);
    return new Promise((resolve) => {
      stream.on('data', (m: WireCoordinatorMessage) => m.directive && resolve('accepted'));
      stream.on('status', resolve);
    });
  }

  it('accepts an agent whose certificate, signed by tls.caFile, names its service', async () => {
    const address = await start();
    assert.equal(await helloOver(address, clients.orders), 'accepted');
  });

  it('refuses at the handshake a client without a certificate, or with one from another CA', async () => {
    const address = await start();
    for (const pair of [undefined, clients.rogue]) {
      const result = await helloOver(address, pair);
      assert.notEqual(result, 'accepted');
      assert.equal((result as grpc.StatusObject).code, grpc.status.UNAVAILABLE);
    }
  });

  it('refuses a valid certificate of another service, even with the right token (PERMISSION_DENIED)', async () => {
    const address = await start();
    const result = (await helloOver(address, clients.users)) as grpc.StatusObject;
    assert.equal(result.code, grpc.status.PERMISSION_DENIED);
    assert.match(result.details, /client certificate does not name service "orders"/);
  });

  it('lets KEDA in by its certificate (keda.clientName) and no other certificate without a token', async () => {
    const address = await start();
    const pkg = loadSync(EXTERNAL_SCALER_PROTO_PATH, { keepCase: true, longs: Number, defaults: true });
    const Scaler = (
      grpc.loadPackageDefinition(pkg) as unknown as {
        externalscaler: { ExternalScaler: grpc.ServiceClientConstructor };
      }
    ).externalscaler.ExternalScaler;
    const ask = (pair: Pair) => {
      const client = new Scaler(address, credentials(pair), NAME) as unknown as grpc.Client & {
        IsActive(r: unknown, cb: (e: grpc.ServiceError | null, r?: unknown) => void): void;
      };
      closers.push(() => client.close());
      return new Promise<unknown>((resolve, reject) =>
        client.IsActive({ name: 'orders', namespace: 'x', scalerMetadata: {} }, (e, r) => (e ? reject(e) : resolve(r))),
      );
    };
    assert.deepEqual(await ask(clients.keda!), { result: true });
    await assert.rejects(ask(clients.orders!), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED);
  });

  it('refuses requireClientCert without caFile, naming the option', () => {
    assert.throws(
      () => parseConfig({ ...config(), tls: { certFile: 'c', keyFile: 'k', requireClientCert: true } }),
      /tls\.requireClientCert: requireClientCert needs caFile/,
    );
  });
});
