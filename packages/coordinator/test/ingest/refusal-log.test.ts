import assert from 'node:assert/strict';
import { ManualClock } from '@shoal/core';
import { RefusalLog, refuse } from '@shoal/coordinator/internal';
import { recordingLogger, type LogRecord } from '../support/recording-logger.js';

describe('RefusalLog', () => {
  let clock: ManualClock;
  let records: LogRecord[];
  let log: RefusalLog;

  beforeEach(() => {
    clock = new ManualClock();
    records = [];
    log = new RefusalLog(recordingLogger(records), clock, { intervalMs: 60_000, maxKeys: 2 });
  });

  it('logs one line per sender and reason per interval, then the count it held back', () => {
    const bad = refuse.unauthenticated('the bearer token is not valid');
    for (let i = 0; i < 5; i++) log.note(bad, 'http', { service: 'orders', instance: 'orders-1', peer: '10.0.0.7' });
    log.note(bad, 'http', { service: 'orders', instance: 'orders-2' });
    // a reconnect from the same host on another port is the same sender
    log.note(bad, 'stream', { peer: 'ipv4:10.0.0.9:5000' });
    log.note(bad, 'stream', { peer: 'ipv4:10.0.0.9:5001' });
    assert.deepEqual(
      records.map((r) => [r.level, r.fields.instance ?? r.fields.peer]),
      [
        ['warn', 'orders-1'],
        ['warn', 'orders-2'],
      ],
      'the third sender is over maxKeys (2) until an entry expires',
    );
    clock.advance(60_000);
    log.note(bad, 'http', { service: 'orders', instance: 'orders-1' });
    log.note(bad, 'stream', { peer: 'ipv4:10.0.0.9:5002' });
    assert.equal(records.length, 4);
    assert.deepEqual(records[2]!.fields, {
      reason: 'unauthenticated',
      transport: 'http',
      details: 'the bearer token is not valid',
      service: 'orders',
      instance: 'orders-1',
      suppressed: 4,
    });
    assert.equal(records[3]!.fields.peer, '10.0.0.9');
  });

  it('logs "no leader yet" at debug and clips what the sender claimed', () => {
    log.note(refuse.unavailable('no leader known yet; retry'), 'unary', { service: 'x'.repeat(500) });
    assert.equal(records[0]!.level, 'debug');
    assert.equal((records[0]!.fields.service as string).length, 128);
  });
});
