import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { harness, waitForCheck } from '../helpers.js';
import type { Harness } from '../helpers.js';

describe('TCP checks', () => {
  let h: Harness;
  let target: Server;
  let address: string;
  beforeEach(async () => {
    h = await harness();
    target = createServer((s) => s.destroy());
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    address = `127.0.0.1:${(target.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await h.close();
    await new Promise((r) => target.close(r));
  });

  it('passes while the port accepts connections and fails once it closes', async () => {
    await h.call('PUT', '/v1/agent/service/register', { Name: 'db', Check: { TCP: address, Interval: '5s' } });
    h.clock.advance(0);
    const ok = await waitForCheck(h, 'service:db', (c) => c.Status === 'passing');
    assert.equal(ok.Output, `TCP connect ${address}: Success`);
    await new Promise((r) => target.close(r));
    h.clock.advance(5_000);
    const bad = await waitForCheck(h, 'service:db', (c) => c.Status === 'critical');
    assert.equal(bad.Output, `dial tcp ${address}: connect: connection refused`);
    target = createServer();
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  });
});
