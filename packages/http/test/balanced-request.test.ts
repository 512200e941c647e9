/**
 * Per-try timeouts and hedging over real sockets: one backend reads requests and never answers (a hung process as
 * a client sees it), the others answer. The tests assert where answers came from, never how fast.
 */
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { createDispatcher } from '@shoal/http';
import { isRetryable } from '@shoal/http/internal';
import { hangingHandler, useBackends } from './support/backends.js';
import { waitFor } from '../../../test/kit/index.js';

describe('BalancedRequest', function () {
  this.timeout(20_000);
  const fx = useBackends();
  const { addBackend, dispatcher, get } = fx;

  const metric = async (registry: Registry, result: string) =>
    Number(
      new RegExp(`shoal_http_retries_total\\{service="${fx.service}",result="${result}"\\} (\\d+)`).exec(
        await registry.metrics(),
      )?.[1] ?? 0,
    );

  it('treats GET, HEAD, OPTIONS, TRACE, PUT, DELETE and idempotent: true with a replayable body as retryable', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'] as const) {
      assert.ok(isRetryable({ method, path: '/' }), method);
    }
    assert.ok(!isRetryable({ method: 'POST', path: '/' }));
    assert.ok(!isRetryable({ method: 'PATCH', path: '/' }));
    assert.ok(isRetryable({ method: 'POST', path: '/', idempotent: true, body: 'x' }));
    assert.ok(!isRetryable({ method: 'PUT', path: '/', body: (async function* () {})() as never }));
    assert.ok(!isRetryable({ method: 'GET', path: '/', upgrade: 'websocket' }));
  });

  it('abandons an attempt on a hung instance after the per-try timeout and answers from another', async () => {
    const hung = await addBackend('hung', hangingHandler);
    await addBackend('a');
    const registry = new Registry();
    const d = dispatcher({
      strategy: 'round_robin',
      outlierDetection: false,
      retry: { perTryTimeoutMs: 200 },
      registry,
    });
    const bodies = await Promise.all(Array.from({ length: 6 }, () => get(d)));
    assert.deepEqual(
      bodies.map((b) => b.body),
      Array(6).fill('a'),
    );
    assert.ok(hung.hits >= 1, 'the hung instance was tried');
    // Each request that reached it was answered after a retry (one per attempt abandoned).
    assert.ok((await metric(registry, 'retried')) >= 1);
  });

  it('hedges a GET to another instance and takes the first answer', async () => {
    const hung = await addBackend('hung', hangingHandler);
    await addBackend('a');
    const registry = new Registry();
    const d = dispatcher({
      strategy: 'round_robin',
      outlierDetection: false,
      retry: { perTryTimeoutMs: false },
      hedge: { delayMs: 50 },
      registry,
    });
    const bodies = await Promise.all(Array.from({ length: 6 }, () => get(d)));
    assert.deepEqual(
      bodies.map((b) => b.body),
      Array(6).fill('a'),
    );
    assert.ok(hung.hits >= 1);
    assert.ok((await metric(registry, 'hedged')) >= 1);
    // The losing attempts were aborted: the hung instance holds no open request from this client.
    await waitFor(() => new Promise<boolean>((r) => hung.server.getConnections((_e, n) => r(n === 0))), {
      timeoutMs: 5000,
      what: 'the hung instance to see its connections closed',
    });
  });

  it('never times out, hedges or retries a POST; the caller aborts it', async () => {
    const hung = await addBackend('hung', hangingHandler);
    const a = await addBackend('a');
    const d = dispatcher({
      strategy: 'round_robin',
      outlierDetection: false,
      retry: { perTryTimeoutMs: 100 },
      hedge: { delayMs: 20 },
    });
    // Round robin: the first request goes to the first instance listed; find which by sending GETs first.
    const abort = new AbortController();
    const post = request(`http://${fx.service}.service.consul/`, {
      dispatcher: d,
      method: 'POST',
      body: 'x',
      signal: abort.signal,
    }).then(
      () => 'answered',
      (err: Error) => err.name,
    );
    await waitFor(() => hung.methods.includes('POST') || a.methods.includes('POST'), {
      timeoutMs: 5000,
      what: 'the POST to arrive',
    });
    if (a.methods.includes('POST')) {
      assert.equal(await post, 'answered');
      return;
    }
    // A GET sent after the POST is timed out per try and answered by `a`: the POST's own deadline (earlier) passed.
    assert.equal((await get(d)).body, 'a');
    assert.deepEqual(a.methods, ['GET']);
    abort.abort();
    assert.equal(await post, 'AbortError');
    assert.deepEqual(
      hung.methods.filter((m) => m === 'POST'),
      ['POST'],
    );
  });

  it('leaves the last allowed attempt waiting instead of failing it', async () => {
    await addBackend('slow', (_req, res, b) => setTimeout(() => res.end(b.name), 300));
    const d = dispatcher({ retry: { maxAttempts: 1, perTryTimeoutMs: 50 } });
    assert.deepEqual(await get(d), { status: 200, body: 'slow' });
  });

  it('validates retry.perTryTimeoutMs and hedge, naming the option', () => {
    assert.throws(
      () => createDispatcher({ retry: { perTryTimeoutMs: 0 } }),
      /retry\.perTryTimeoutMs must be an integer between 1 and 86400000, got 0/,
    );
    assert.throws(() => createDispatcher({ hedge: { delayMs: -1 } }), /hedge\.delayMs must be an integer/);
    assert.throws(() => createDispatcher({ hedge: { delayMs: 10 }, retry: false }), /hedge needs retries/);
    assert.throws(() => createDispatcher({ hedge: { delay: 1 } as never }), /unknown option "delay"/);
  });
});
