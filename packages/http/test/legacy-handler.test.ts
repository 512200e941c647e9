/**
 * undici 7's controller-style handlers (onRequestStart, onResponseStart, ...) — what interceptors use — go through
 * the Shoal dispatcher as well as the original callbacks that fetch and undici.request use.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ServiceRegistration } from '@shoal/consul';
import { createDispatcher } from '@shoal/http';
import type { ShoalDispatcher } from '@shoal/http';
import { startTestConsul } from '../../../test/support/consul.js';
import type { TestConsul } from '../../../test/support/consul.js';

describe('controller-style handlers', () => {
  let consul: TestConsul;
  let server: Server;
  let registration: ServiceRegistration;
  let dispatcher: ShoalDispatcher;

  beforeEach(async () => {
    consul = await startTestConsul();
    server = createServer((req, res) => {
      res.setHeader('x-test', 'yes');
      res.end(`hello ${req.url}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    registration = new ServiceRegistration({
      consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
      service: 'ctl',
      id: 'ctl-1',
      address: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      check: { ttlMs: 30_000 },
    });
    await registration.register();
    dispatcher = createDispatcher({
      consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
      registry: new Registry(),
    });
  });

  afterEach(async () => {
    await dispatcher.close();
    await registration.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await consul.close();
  });

  it('delivers start, headers, body and end to an onRequestStart-style handler', async () => {
    const events: string[] = [];
    const chunks: Buffer[] = [];
    const result = await new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
      let status = 0;
      let headers: Record<string, unknown> = {};
      dispatcher.dispatch(
        { origin: 'http://ctl.service.consul', path: '/x', method: 'GET' },
        {
          onRequestStart: () => events.push('start'),
          onResponseStart: (_controller, statusCode, h) => {
            events.push('headers');
            status = statusCode;
            headers = h;
          },
          onResponseData: (_controller, chunk) => {
            chunks.push(chunk);
          },
          onResponseEnd: () => {
            events.push('end');
            resolve({ status, headers });
          },
          onResponseError: (_controller, err) => reject(err),
        },
      );
    });
    assert.equal(result.status, 200);
    assert.equal(result.headers['x-test'], 'yes');
    assert.equal(Buffer.concat(chunks).toString(), 'hello /x');
    assert.deepEqual(events, ['start', 'headers', 'end']);
  });

  it('reports errors through onResponseError', async () => {
    const err = await new Promise<Error>((resolve) => {
      dispatcher.dispatch(
        { origin: 'http://nothing-here.service.consul', path: '/', method: 'GET' },
        { onResponseError: (_controller, e) => resolve(e) },
      );
    });
    assert.equal((err as Error & { code?: string }).code, 'SHOAL_ERR_NO_ENDPOINTS');
  });
});
