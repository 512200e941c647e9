import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '@shoal/core';
import type { Clock } from '@shoal/core';
import { agentCheck, harness, waitForCheck } from '../helpers.js';
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

describe('HTTP check thresholds', () => {
  let h: Harness;
  let target: Server;
  let answer = 200;
  let url: string;
  let probesDone = 0;
  beforeEach(async () => {
    const clock = new ManualClock(0);
    probesDone = 0;
    // Counts the runner re-arming its 1 s interval timer, which it does right after applying a probe's result.
    const spy: Clock = {
      now: () => clock.now(),
      monotonic: () => clock.monotonic(),
      setTimeout: (fn, ms) => {
        if (ms === 1_000) probesDone++;
        return clock.setTimeout(fn, ms);
      },
      clearTimeout: (handle) => clock.clearTimeout(handle),
    };
    h = await harness({ clock: spy }, clock);
    target = createServer((_req, res) => {
      res.writeHead(answer);
      res.end();
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(target.address() as AddressInfo).port}/`;
  });
  afterEach(async () => {
    await h.close();
    target.closeAllConnections();
    await new Promise((r) => target.close(r));
  });

  /** Runs the next probe and resolves once its result has been applied. */
  async function probe(first = false): Promise<void> {
    const done = probesDone;
    h.clock.advance(first ? 0 : 1_000);
    const deadline = Date.now() + 5000;
    while (probesDone === done) {
      if (Date.now() > deadline) throw new Error('probe did not complete');
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  it('applies SuccessBeforePassing, FailuresBeforeWarning and FailuresBeforeCritical', async () => {
    await h.call('PUT', '/v1/agent/service/register', {
      Name: 'web',
      Check: {
        HTTP: url,
        Interval: '1s',
        SuccessBeforePassing: 2,
        FailuresBeforeWarning: 1,
        FailuresBeforeCritical: 3,
      },
    });
    const status = async () => (await agentCheck(h, 'service:web'))?.Status;
    await probe(true);
    assert.equal(await status(), 'critical', 'one success is not enough');
    await probe();
    assert.equal(await status(), 'passing');
    answer = 500;
    await probe();
    assert.equal(await status(), 'warning', 'first failure: warning');
    await probe();
    assert.equal(await status(), 'warning');
    await probe();
    assert.equal(await status(), 'critical', 'third failure: critical');
  });
});
