import assert from 'node:assert/strict';
import { agentCheck, harness } from './helpers.js';
import type { Harness } from './helpers.js';

describe('catalog timers (ManualClock)', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.close();
  });

  async function register(body: unknown) {
    const res = await h.call('PUT', '/v1/agent/service/register', body);
    assert.equal(res.status, 200, res.text);
  }

  it('turns a TTL check critical exactly when its TTL passes, and pass re-arms the timer', async () => {
    await register({ Name: 'web', Check: { TTL: '10s' } });
    await h.call('PUT', '/v1/agent/check/pass/service:web?note=fine');
    h.clock.advance(9_999);
    assert.equal((await agentCheck(h, 'service:web'))?.Status, 'passing');
    await h.call('PUT', '/v1/agent/check/pass/service:web?note=still%20fine');
    h.clock.advance(9_999);
    assert.equal((await agentCheck(h, 'service:web'))?.Status, 'passing', 'pass restarted the TTL');
    h.clock.advance(1);
    const check = await agentCheck(h, 'service:web');
    assert.equal(check?.Status, 'critical');
    assert.equal(check?.Output, 'TTL expired (last output before timeout follows): still fine');
  });

  it('says just "TTL expired" when there was no output, and does not re-arm after expiry', async () => {
    await register({ Name: 'web', Check: { TTL: '5s', Status: 'passing' } });
    h.clock.advance(5_000);
    assert.equal((await agentCheck(h, 'service:web'))?.Output, 'TTL expired');
    const pending = h.clock.pending;
    h.clock.advance(60_000);
    assert.ok(h.clock.pending <= pending + 2, 'only the reaper re-schedules');
  });

  it('keeps output-only updates out of the catalog index (Consul defers them)', async () => {
    await register({ Name: 'web', Check: { TTL: '60s' } });
    await h.call('PUT', '/v1/agent/check/pass/service:web?note=one');
    const before = await h.call('GET', '/v1/health/service/web');
    await h.call('PUT', '/v1/agent/check/pass/service:web?note=two');
    const after = await h.call('GET', '/v1/health/service/web');
    assert.equal(after.headers.get('x-consul-index'), before.headers.get('x-consul-index'));
    const entries = after.json<Array<{ Checks: Array<{ CheckID: string; Output: string }> }>>();
    assert.equal(entries[0]!.Checks.find((c) => c.CheckID === 'service:web')?.Output, 'one');
    assert.equal((await agentCheck(h, 'service:web'))?.Output, 'two', 'the agent view is immediate');
  });

  it('reaps a service critical for longer than DeregisterCriticalServiceAfter on the 30 s reaper', async () => {
    await register({ Name: 'web', Check: { TTL: '10s', DeregisterCriticalServiceAfter: '1m' } });
    // critical from registration (t=0); reaper runs at 30, 60, 90 s; 60 s is not *more* than 1m.
    h.clock.advance(60_000);
    assert.ok((await h.call('GET', '/v1/agent/services')).json<Record<string, unknown>>().web);
    h.clock.advance(30_000);
    assert.equal((await h.call('GET', '/v1/agent/services')).json<Record<string, unknown>>().web, undefined);
    assert.equal((await h.call('GET', '/v1/health/service/web')).text, '[]');
  });

  it('raises a DeregisterCriticalServiceAfter below 1m to 1m and forgets critical time on recovery', async () => {
    await register({ Name: 'web', Check: { TTL: '10m', DeregisterCriticalServiceAfter: '5s' } });
    h.clock.advance(30_000);
    assert.ok((await h.call('GET', '/v1/agent/services')).json<Record<string, unknown>>().web, 'not reaped at 30 s');
    await h.call('PUT', '/v1/agent/check/pass/service:web');
    await h.call('PUT', '/v1/agent/check/fail/service:web'); // critical again from t=30 s
    h.clock.advance(60_000); // reaper at 60 and 90 s: 60 s critical is not more than 1m
    assert.ok((await h.call('GET', '/v1/agent/services')).json<Record<string, unknown>>().web);
    h.clock.advance(30_000); // reaper at 120 s: 90 s critical
    assert.equal((await h.call('GET', '/v1/agent/services')).json<Record<string, unknown>>().web, undefined);
  });

  it('keeps a passing service with DeregisterCriticalServiceAfter', async () => {
    await register({ Name: 'web', Check: { TTL: '10m', DeregisterCriticalServiceAfter: '1m', Status: 'passing' } });
    h.clock.advance(5 * 60_000);
    assert.ok((await h.call('GET', '/v1/agent/services')).json<Record<string, unknown>>().web);
  });

  it('replace-existing-checks removes checks missing from the new definition', async () => {
    await register({
      Name: 'web',
      Checks: [
        { CheckID: 'a', TTL: '10s' },
        { CheckID: 'b', TTL: '10s' },
      ],
    });
    await register({ Name: 'web', Checks: [{ CheckID: 'a', TTL: '10s' }] });
    assert.ok(await agentCheck(h, 'b'), 'without the flag old checks stay');
    const res = await h.call('PUT', '/v1/agent/service/register?replace-existing-checks', {
      Name: 'web',
      Checks: [{ CheckID: 'a', TTL: '10s' }],
    });
    assert.equal(res.status, 200);
    assert.equal(await agentCheck(h, 'b'), undefined);
  });

  it('accepts lower-case and snake_case keys as Go does, and bare numbers as nanoseconds', async () => {
    await register({ name: 'web', check: { ttl: 10_000_000_000, deregister_critical_service_after: '2m' } });
    const checks = (await h.call('GET', '/v1/health/checks/web')).json<
      Array<{ Definition: { DeregisterCriticalServiceAfter?: string } }>
    >();
    assert.equal(checks[0]?.Definition.DeregisterCriticalServiceAfter, '2m0s');
    h.clock.advance(10_000);
    assert.equal((await agentCheck(h, 'service:web'))?.Status, 'critical');
  });

  it('moves X-Consul-Index to the extinction index when a service loses its last instance', async () => {
    await register({ Name: 'web' });
    await register({ Name: 'other' });
    const before = Number((await h.call('GET', '/v1/health/service/ghost')).headers.get('x-consul-index'));
    await h.call('PUT', '/v1/agent/service/deregister/web');
    const after = Number((await h.call('GET', '/v1/health/service/ghost')).headers.get('x-consul-index'));
    assert.ok(after > before, 'a missing service watches the extinction index');
    assert.equal(Number((await h.call('GET', '/v1/health/service/web')).headers.get('x-consul-index')), after);
  });
});
