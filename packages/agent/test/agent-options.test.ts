import { defaultInstanceId } from '@shoal/consul';
import assert from 'node:assert/strict';
import { createAgent, type AgentOptions } from '@shoal/agent';
import { resolveAgentOptions } from '@shoal/agent/internal';

const base: AgentOptions = { service: 'orders', port: 8080, address: '127.0.0.1', onDrained: () => {} };

function rejects(extra: Record<string, unknown>, message: RegExp): void {
  assert.throws(
    () => createAgent({ ...base, ...extra } as AgentOptions),
    (error: unknown) => {
      assert.equal((error as { code?: string }).code, 'SHOAL_ERR_INVALID_ARGUMENT');
      assert.match((error as Error).message, message);
      return true;
    },
  );
}

describe('createAgent options', () => {
  it('applies documented defaults', () => {
    const o = resolveAgentOptions({ service: 'orders', port: 8080, address: '10.0.0.7' });
    // One default identity: @shoal/consul's ServiceRegistration computes the same id for the same process.
    assert.equal(o.instanceId, defaultInstanceId('orders', 8080));
    assert.match(o.instanceId, /^orders-.+-8080-[0-9a-f]{8}$/);
    assert.equal(o.reportIntervalMs, 1000);
    assert.equal(o.minReportIntervalMs, 250);
    assert.equal(o.maxReportIntervalMs, 60000);
    assert.equal(o.drainDeadlineMs, 30000);
    assert.equal(o.consul, false);
    assert.deepEqual(o.signals, []);
    assert.deepEqual(o.metrics, { host: '0.0.0.0', path: '/metrics' });
    assert.equal(o.coordinator, undefined);
    assert.ok(Object.isFrozen(o));
    const c = resolveAgentOptions({
      ...base,
      coordinator: { url: 'grpcs://coord.example:7400', token: 'x' },
    }).coordinator!;
    assert.equal(c.target, 'coord.example:7400');
    assert.equal(c.secure, true);
    assert.equal(c.connectTimeoutMs, 5000);
    assert.equal(c.maxBufferedReports, 60);
    assert.deepEqual(c.backoff, { baseMs: 500, capMs: 30000 });
    assert.deepEqual(c.breaker, {
      errorThresholdPercentage: 50,
      volumeThreshold: 3,
      resetTimeoutMs: 10000,
      rollingCountTimeoutMs: 60000,
    });
    assert.equal(resolveAgentOptions({ ...base, coordinator: { url: 'grpc://h:1' } }).coordinator!.secure, false);
    assert.equal(resolveAgentOptions({ ...base, coordinator: { url: 'h:1', tls: true } }).coordinator!.secure, true);
  });

  it('names the option and the value when one is invalid', () => {
    rejects({ service: 'has space' }, /^service must be a string matching .*, got "has space"$/);
    rejects({ service: undefined }, /^service must be a non-empty string, got undefined$/);
    rejects({ port: 0 }, /^port must be an integer between 1 and 65535, got 0$/);
    rejects({ port: '80' }, /^port must be an integer between 1 and 65535, got "80"$/);
    rejects({ reportIntervalMs: 10 }, /^reportIntervalMs must be an integer between 250 and 60000, got 10$/);
    rejects({ minReportIntervalMs: 500, maxReportIntervalMs: 100 }, /^maxReportIntervalMs must be .*, got 100$/);
    rejects({ drainDeadlineMs: -5 }, /^drainDeadlineMs must be an integer between 0 and 3600000, got -5$/);
    rejects({ onDrained: 'exit' }, /^onDrained must be a function, got "exit"$/);
    rejects({ handleSignals: 'yes' }, /^handleSignals must be a boolean or an array of signal names, got "yes"$/);
    rejects({ handleSignals: ['TERM'] }, /^handleSignals\[0\] must be a string matching .*, got "TERM"$/);
    rejects({ metrics: { port: 70000 } }, /^metrics\.port must be an integer between 0 and 65535, got 70000$/);
    rejects({ metrics: { path: 'metrics' } }, /^metrics\.path must be a string matching .*, got "metrics"$/);
    rejects({ capacity: { maxRps: -1 } }, /^capacity\.maxRps must be a finite number > 0, got -1$/);
    rejects({ reportIntervalMS: 5 }, /^options has an unknown option "reportIntervalMS"/);
    rejects({ consul: { url: 'ftp://x' } }, /^consul\.url must use http or https, got "ftp:\/\/x"$/);
    rejects({ consul: {}, registration: { weight: 0 } }, /weight must be .*, got 0$/);
    rejects({ coordinator: {} }, /^coordinator\.url must be a non-empty string, got undefined$/);
    rejects({ coordinator: { url: 'ws://x:1' } }, /^coordinator\.url must be host:port, .*, got "ws:\/\/x:1"$/);
    rejects(
      { coordinator: { url: 'h:1', token: 'has space' } },
      /^coordinator\.token must be .*, got a string of length 9 \(not shown\)$/,
    );
    rejects(
      { coordinator: { url: 'h:1', maxBufferedReports: 0 } },
      /^coordinator\.maxBufferedReports must be .*, got 0$/,
    );
    rejects(
      { coordinator: { url: 'h:1', backoff: { baseMs: 100, capMs: 50 } } },
      /^coordinator\.backoff\.capMs .*got 50$/,
    );
    rejects(
      { coordinator: { url: 'h:1', breaker: { errorThresholdPercentage: 0 } } },
      /^coordinator\.breaker\.errorThresholdPercentage must be an integer between 1 and 100, got 0$/,
    );
    rejects({ coordinator: { url: 'h:1', tls: { cert: 'x' } } }, /^coordinator\.tls\.cert and coordinator\.tls\.key/);
    rejects({ coordinator: { url: 'h:1', tls: 'on' } }, /^coordinator\.tls must be a boolean or an object, got "on"$/);
  });

  it('does not leak the token into error messages', () => {
    try {
      createAgent({ ...base, coordinator: { url: 'h:1', token: 'secret value' } });
      assert.fail('should throw');
    } catch (error) {
      assert.ok(!(error as Error).message.includes('secret value'));
    }
  });

  it('validates terminationDelayMs and keeps it below drainDeadlineMs', () => {
    const base = { service: 'orders', port: 1, address: '127.0.0.1' };
    assert.throws(
      () => resolveAgentOptions({ ...base, terminationDelayMs: -1 }),
      /terminationDelayMs must be .*got -1/,
    );
    assert.throws(
      () => resolveAgentOptions({ ...base, terminationDelayMs: 30_000, drainDeadlineMs: 30_000 }),
      /terminationDelayMs \(30000\) must be less than drainDeadlineMs \(30000\)/,
    );
    assert.equal(resolveAgentOptions({ ...base, drainDeadlineMs: 4000 }).terminationDelayMs, 2000);
    assert.equal(resolveAgentOptions(base).terminationDelayMs, 5000);
    assert.equal(resolveAgentOptions({ ...base, terminationDelayMs: 0, drainDeadlineMs: 0 }).terminationDelayMs, 0);
  });
});
