import assert from 'node:assert/strict';
import { Store } from '../src/store.js';

describe('Store', () => {
  it('wakes, after the write finishes, only the waiters whose watched index moved past theirs', async () => {
    const store = new Store();
    let a = store.bump();
    let b = a;
    const woken: string[] = [];
    store.wait({ minIndex: a, currentIndex: () => a, wake: () => woken.push('a') });
    store.wait({ minIndex: b, currentIndex: () => b, wake: () => woken.push('b') });
    a = store.bump(); // only a's item changed
    assert.deepEqual(woken, [], 'not synchronously, inside the write');
    await Promise.resolve();
    assert.deepEqual(woken, ['a']);
    assert.equal(store.waiting, 1);
    b = store.bump();
    await Promise.resolve();
    assert.deepEqual(woken, ['a', 'b']);
    assert.equal(store.waiting, 0);
  });

  it('coalesces several bumps of one write into one pass, and a disposer removes a waiter', async () => {
    const store = new Store();
    let calls = 0;
    const dispose = store.wait({
      minIndex: 100,
      currentIndex: () => {
        calls++;
        return 0;
      },
      wake: () => assert.fail('must not wake'),
    });
    store.bump();
    store.bump();
    store.bump();
    await Promise.resolve();
    assert.equal(calls, 1);
    dispose();
    assert.equal(store.waiting, 0);
  });

  it('wakeAll() wakes everyone (shutdown)', () => {
    const store = new Store();
    let n = 0;
    for (let i = 0; i < 3; i++) store.wait({ minIndex: 5, currentIndex: () => 0, wake: () => n++ });
    store.wakeAll();
    assert.equal(n, 3);
    assert.equal(store.waiting, 0);
  });
});
