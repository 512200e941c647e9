import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { harness, waitForCheck } from '../helpers.js';
import type { Harness } from '../helpers.js';

describe('HTTP checks', () => {
  let h: Harness;
  let target: Server;
  let answer = 200;
  let seen: Array<{ method?: string; ua?: string; header?: string }> = [];
  let url: string;

  beforeEach(async () => {
    h = await harness();
    seen = [];
    answer = 200;
    target = createServer((req, res) => {
      seen.push({ method: req.method, ua: req.headers['user-agent'], header: req.headers['x-probe'] as string });
      if (answer === 0) return; // never answer
      res.writeHead(answer, { 'Content-Type': 'text/plain' });
      res.end(`status ${answer}`);
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(target.address() as AddressInfo).port}/health`;
  });
  afterEach(async () => {
    await h.close();
    target.closeAllConnections();
    await new Promise((r) => target.close(r));
  });

  it('runs on its interval: 2xx passing, 429 warning, 5xx critical, with Consul-style output', async () => {
    await h.call('PUT', '/v1/agent/service/register', {
      Name: 'web',
      Check: { HTTP: url, Interval: '10s', Header: { 'X-Probe': ['yes'] } },
    });
    h.clock.advance(0); // random() = 0: no initial stagger
    let c = await waitForCheck(h, 'service:web', (x) => x.Status === 'passing');
    assert.equal(c.Output, `HTTP GET ${url}: 200 OK Output: status 200`);
    assert.deepEqual(seen[0], { method: 'GET', ua: 'Consul Health Check', header: 'yes' });
    answer = 429;
    h.clock.advance(9_999);
    assert.equal(seen.length, 1, 'not before the interval');
    h.clock.advance(1);
    c = await waitForCheck(h, 'service:web', (x) => x.Status === 'warning');
    answer = 503;
    h.clock.advance(10_000);
    c = await waitForCheck(h, 'service:web', (x) => x.Status === 'critical');
    assert.match(c.Output, /: 503 Service Unavailable Output: status 503$/);
  });

  it('turns critical when the endpoint does not answer within the check timeout', async () => {
    answer = 0;
    await h.call('PUT', '/v1/agent/service/register', {
      Name: 'web',
      Check: { HTTP: url, Interval: '10s', Timeout: '2s', Status: 'passing' },
    });
    h.clock.advance(0);
    await new Promise<void>((resolve) => {
      const poll = () => (seen.length > 0 ? resolve() : setTimeout(poll, 2));
      poll();
    });
    h.clock.advance(2_000);
    const c = await waitForCheck(h, 'service:web', (x) => x.Status === 'critical');
    assert.match(c.Output, /deadline exceeded/);
  });

  it('turns critical with a connection-refused output when nothing listens', async () => {
    await h.call('PUT', '/v1/agent/service/register', {
      Name: 'web',
      Check: { HTTP: 'http://127.0.0.1:1/health', Interval: '10s', Status: 'passing' },
    });
    h.clock.advance(0);
    const c = await waitForCheck(h, 'service:web', (x) => x.Status === 'critical');
    assert.match(c.Output, /connect: connection refused/);
  });

  it('stops probing once the service is deregistered', async () => {
    await h.call('PUT', '/v1/agent/service/register', { Name: 'web', Check: { HTTP: url, Interval: '10s' } });
    h.clock.advance(0);
    await waitForCheck(h, 'service:web', (x) => x.Status === 'passing');
    await h.call('PUT', '/v1/agent/service/deregister/web');
    h.clock.advance(60_000);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(seen.length, 1);
  });
});
