import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Coordinator } from '@shoal/coordinator';
import { hello, report, startOrdersCoordinator } from './support/agent-client.js';

const ORDERS = 'orders-token-0123456789abcdef';

describe('hostile reports over HTTP (property-based, issue 18)', () => {
  let coordinator: Coordinator | undefined;
  afterEach(async () => {
    await coordinator?.close();
    coordinator = undefined;
  });

  it('answers 500 generated hostile report bodies with a 4xx each, and stays alive', async () => {
    coordinator = await startOrdersCoordinator(ORDERS);
    const url = `${coordinator.urls().http}/v1/report`;
    const valid = { hello: hello('orders', 'orders-1'), report: report() };
    // Mutations of a valid request: any field replaced by any JSON value, or arbitrary JSON.
    const mutated = fc.oneof(
      fc.jsonValue(),
      fc.record({ path: fc.constantFrom('hello', 'report'), key: fc.string(), value: fc.jsonValue() }).map((m) => ({
        ...valid,
        [m.path]: { ...valid[m.path as 'hello' | 'report'], [m.key]: m.value },
      })),
      fc
        .record({
          key: fc.constantFrom(...Object.keys(valid.hello)),
          value: fc.oneof(fc.jsonValue(), fc.string({ maxLength: 300 }), fc.double()),
        })
        .map((m) => ({ ...valid, hello: { ...valid.hello, [m.key]: m.value } })),
    );
    await fc.assert(
      fc.asyncProperty(mutated, fc.boolean(), async (body, withToken) => {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(withToken ? { authorization: `Bearer ${ORDERS}` } : {}) },
          body: JSON.stringify(body),
        });
        await res.arrayBuffer();
        // A mutation may leave the request valid (200); otherwise a clear 4xx, never a 5xx.
        assert.ok(res.status === 200 || (res.status >= 400 && res.status < 500), `got ${res.status}`);
        if (!withToken) assert.notEqual(res.status, 200, 'accepted without a token');
      }),
      { numRuns: 500 },
    );
    assert.equal((await fetch(`${coordinator.urls().http}/healthz`)).status, 200);
  });
});
