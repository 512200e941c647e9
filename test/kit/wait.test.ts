import assert from 'node:assert/strict';
import { freePort, isAlive, nextEvent, survivors, waitFor } from './index.js';

describe('test kit', () => {
  it('waitFor resolves with the first answer that is not undefined, null or false (0 counts)', async () => {
    let polls = 0;
    const value = await waitFor(() => (++polls < 3 ? false : 0), { intervalMs: 1 });
    assert.equal(value, 0);
    assert.equal(polls, 3);
  });

  it('waitFor fails naming what it waited for, and the last error when errors are retried', async () => {
    await assert.rejects(
      waitFor(() => undefined, { timeoutMs: 30, intervalMs: 5, what: 'the moon' }),
      /timed out after 30 ms waiting for the moon/,
    );
    await assert.rejects(
      waitFor(
        () => {
          throw new Error('not yet');
        },
        { timeoutMs: 30, intervalMs: 5, retryErrors: true, what: () => 'a described thing' },
      ),
      /waiting for a described thing \(last error: Error: not yet\)/,
    );
    await assert.rejects(
      waitFor(() => Promise.reject(new Error('boom')), { timeoutMs: 1000 }),
      /boom/,
    );
  });

  it('nextEvent resolves with the next value and disposes its listener', async () => {
    const listeners = new Set<(v: number) => void>();
    const subscribe = (l: (v: number) => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    };
    const next = nextEvent(subscribe, 'a number');
    for (const l of listeners) l(7);
    assert.equal(await next, 7);
    assert.equal(listeners.size, 0);
    await assert.rejects(nextEvent(subscribe, 'nothing', 10), /timed out after 10 ms waiting for nothing/);
    assert.equal(listeners.size, 0);
  });

  it('isAlive and survivors tell live pids from gone ones; freePort gives a port', async () => {
    assert.equal(isAlive(process.pid), true);
    assert.deepEqual(survivors([process.pid, 2 ** 22 + 12345]), [process.pid]);
    const port = await freePort();
    assert.ok(port > 0 && port < 65536);
  });
});
