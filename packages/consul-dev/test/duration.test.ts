import assert from 'node:assert/strict';
import { formatGoDuration, parseGoDurationMs } from '@shoal/consul-dev';

describe('Go durations', () => {
  it('parses the forms Consul accepts', () => {
    assert.equal(parseGoDurationMs('10s'), 10_000);
    assert.equal(parseGoDurationMs('1m30s'), 90_000);
    assert.equal(parseGoDurationMs('500ms'), 500);
    assert.equal(parseGoDurationMs('1.5h'), 5_400_000);
    assert.equal(parseGoDurationMs('0'), 0);
    assert.equal(parseGoDurationMs('250us'), 0.25);
  });

  it('rejects what time.ParseDuration rejects', () => {
    for (const bad of ['', '10', 'soon', '1x', 's', '1m30']) assert.equal(parseGoDurationMs(bad), undefined, bad);
  });

  it('formats like Duration.String()', () => {
    assert.equal(formatGoDuration(10_000), '10s');
    assert.equal(formatGoDuration(60_000), '1m0s');
    assert.equal(formatGoDuration(5_400_000), '1h30m0s');
    assert.equal(formatGoDuration(500), '500ms');
    assert.equal(formatGoDuration(1500), '1.5s');
    assert.equal(formatGoDuration(0), '0s');
  });
});
