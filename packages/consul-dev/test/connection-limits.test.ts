import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { waitFor } from '../../../test/kit/index.js';
import { harness, type Harness } from './helpers.js';

interface Raw {
  socket: Socket;
  /** Everything the server sent, as text. */
  received: () => string;
  /** Resolves when the server closes the connection. */
  closed: Promise<void>;
}

/** A raw TCP connection to the server (from `localAddress` when given); nothing is sent. */
function open(port: number, localAddress?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }, () =>
      resolve({ socket, received: () => text, closed }),
    );
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('error', () => {});
    socket.once('error', reject);
  });
}

describe('consul-dev connection limits, header size and request timeouts', () => {
  let h: Harness | undefined;
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await h?.close();
    h = undefined;
  });

  async function raw(localAddress?: string): Promise<Raw> {
    const r = await open(h!.server.port, localAddress);
    sockets.push(r.socket);
    return r;
  }

  /** Opens connections until the server closes one on accept (the earlier ones stay open). */
  async function openUntilRefused(localAddress?: string): Promise<void> {
    await waitFor(
      async () => {
        const extra = await raw(localAddress);
        return Promise.race([extra.closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 300))]);
      },
      { what: 'a connection closed on accept' },
    );
  }

  it('closes connections beyond maxConnectionsPerClient from one address and serves other clients', async () => {
    const registry = new Registry();
    h = await harness({ maxConnectionsPerClient: 5, registry });
    const held = await Promise.all(Array.from({ length: 5 }, () => raw('127.0.0.2')));
    await openUntilRefused('127.0.0.2');
    assert.ok(
      held.every((r) => !r.socket.destroyed),
      'the admitted connections are still open',
    );
    assert.equal((await h.call('GET', '/v1/status/leader')).status, 200); // from 127.0.0.1
    assert.match(
      await registry.metrics(),
      /shoal_consul_dev_connections_refused_total\{reason="max_connections_per_client"\} [1-9]/,
    );
  });

  it('closes connections beyond maxConnections in total, and serves again once one closes', async () => {
    const registry = new Registry();
    h = await harness({ maxConnections: 4, registry });
    const held = await Promise.all(Array.from({ length: 4 }, () => raw('127.0.0.2')));
    await openUntilRefused();
    assert.match(
      await registry.metrics(),
      /shoal_consul_dev_connections_refused_total\{reason="max_connections"\} [1-9]/,
    );
    held[0]!.socket.destroy();
    await waitFor(async () => (await h!.call('GET', '/v1/status/leader').catch(() => ({ status: 0 }))).status === 200, {
      what: 'an answer once a connection closed',
    });
  });

  it('answers 408 and closes a connection whose headers do not arrive within headersTimeoutMs', async () => {
    h = await harness({ headersTimeoutMs: 200 });
    const r = await raw();
    r.socket.write('GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n'); // never finished
    await r.closed;
    assert.match(r.received(), /^HTTP\/1\.1 408 /);
  });

  it('answers 408 to a body that does not arrive within requestTimeoutMs', async () => {
    h = await harness({ requestTimeoutMs: 200 });
    const r = await raw();
    r.socket.write('PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789'); // 90 bytes short
    await r.closed;
    assert.match(r.received(), /^HTTP\/1\.1 408 /);
  });

  it('answers 431 to a request head over maxHeaderBytes', async () => {
    h = await harness({ maxHeaderBytes: 2048 });
    const r = await raw();
    r.socket.write(`GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
    await r.closed;
    assert.match(r.received(), /^HTTP\/1\.1 431 /);
  });

  it('lets a blocking query wait past requestTimeoutMs (the timeout bounds receiving the request only)', async () => {
    h = await harness({ requestTimeoutMs: 100, headersTimeoutMs: 100 });
    const first = await h.call('GET', '/v1/catalog/services');
    const index = first.headers.get('x-consul-index');
    const timers = h.clock.pending;
    const answer = h.call('GET', `/v1/catalog/services?index=${index}&wait=10s`);
    await h.timersAbove(timers);
    // Node checks its request timeouts every 25 ms here: let several checks pass while the query is parked.
    await new Promise((r) => setTimeout(r, 300));
    h.clock.advance(11_000);
    assert.equal((await answer).status, 200);
  });

  it('refuses bad limit options by name', async () => {
    await assert.rejects(harness({ maxConnections: 0 }), /maxConnections must be an integer between 1/);
    await assert.rejects(harness({ headersTimeoutMs: 1.5 }), /headersTimeoutMs must be an integer/);
  });
});
