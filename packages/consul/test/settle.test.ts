/**
 * A Consul restart must cost no call: after an error or an index reset, a watch does not replace its non-empty list
 * with an answer lacking some of its instances until Consul has settled (`settleGraceMs`), and its retries are
 * capped so it is back within 2 s. Driven step by step on a ManualClock: the scripted peer answers a non-blocking
 * query at once and holds every blocking one until the test answers it, so each step is a deterministic sync point.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { ManualClock, type Instance } from '@shoal/core';
import { ServiceWatcher, type Watch } from '@shoal/consul';
import {
  eventually,
  healthEntry,
  startScriptedConsul,
  type ScriptedConsul,
  type ScriptedReply,
  type SeenRequest,
} from './support/scripted-consul.js';

const idx = (n: number) => ({ 'x-consul-index': String(n) });
const ids = (list: readonly Instance[] | undefined) => list?.map((i) => i.id);

describe('ServiceWatcher across a Consul restart (settle grace, retry cap; ManualClock)', () => {
  let peer: ScriptedConsul | undefined;
  let watcher: ServiceWatcher | undefined;
  let clock: ManualClock;
  /** Blocking queries waiting for the test to answer them. */
  let held: Array<{ req: SeenRequest; answer: (r: ScriptedReply) => void }>;
  /** What a non-blocking query (no index) gets. */
  let now: ScriptedReply;

  beforeEach(async () => {
    clock = new ManualClock(1_000_000);
    held = [];
    peer = await startScriptedConsul((req) => {
      if (req.query.get('index') === null) return now;
      return new Promise<ScriptedReply>((answer) => held.push({ req, answer }));
    });
  });
  afterEach(async () => {
    for (const h of held.splice(0)) h.answer({ hang: true });
    await watcher?.close();
    await peer?.close();
    watcher = undefined;
    peer = undefined;
  });

  const start = (settleGraceMs?: number) => {
    watcher = new ServiceWatcher({
      consul: { url: peer!.url },
      clock,
      minQueryIntervalMs: 0,
      waitMs: 300_000,
      backoff: { baseMs: 100, capMs: 100, random: () => 0 },
      ...(settleGraceMs !== undefined ? { settleGraceMs } : {}),
    });
    return watcher.watch('orders');
  };
  /** Waits for the next blocking query to be held, and returns it. */
  const nextHeld = async () => {
    await eventually(() => held.length > 0, 5000, 'a blocking query');
    return held.shift()!;
  };
  /** Answers the held blocking query with an error; the watch backs off (0 ms here) on the clock, then re-queries. */
  const failHeld = async (w: Watch) => {
    const errors: Error[] = [];
    const off = w.onError((e) => errors.push(e));
    (await nextHeld()).answer({ status: 500, body: 'connection lost' });
    await eventually(() => errors.length > 0, 5000, 'the error');
    off();
    await clock.advanceAsync(1);
  };

  it('holds its list when the first answers after an error lack instances, and takes one that has them all at once', async () => {
    now = { headers: idx(10), body: [healthEntry('a'), healthEntry('b')] };
    const w = start();
    assert.deepEqual(ids(await w.ready()), ['a', 'b']);
    const changes: string[][] = [];
    w.onChange((l) => changes.push(ids(l)!));

    // Consul dies and comes back empty: the blocking query fails, the re-query (index 0) answers nothing.
    now = { headers: idx(1), body: [] };
    await failHeld(w);
    const q = await nextHeld();
    assert.deepEqual(ids(w.current()), ['a', 'b'], 'the empty answer did not replace the list');
    assert.equal(w.stale, false, 'Consul answers again');
    const wait = Number(/^(\d+)ms$/.exec(q.req.query.get('wait') ?? '')?.[1]);
    assert.ok(wait > 0 && wait <= 10_000, `a blocking query during the grace waits until its end at most, got ${wait}`);

    // The first instance re-registers: still shrunken, still held.
    q.answer({ headers: idx(2), body: [healthEntry('a')] });
    const q2 = await nextHeld();
    assert.deepEqual(ids(w.current()), ['a', 'b']);
    // Both are back (and a new one): taken at once, well within the grace.
    q2.answer({ headers: idx(3), body: [healthEntry('a'), healthEntry('b'), healthEntry('c')] });
    await eventually(() => changes.length > 0, 5000, 'the settled list');
    assert.deepEqual(changes, [['a', 'b', 'c']]);

    // Settled: an ordinary deregistration now shows at once.
    (await nextHeld()).answer({ headers: idx(4), body: [healthEntry('a'), healthEntry('c')] });
    await eventually(() => changes.length > 1, 5000, 'the deregistration');
    assert.deepEqual(changes[1], ['a', 'c']);
  });

  it('takes a shrunken answer once the grace is over (instances that really left)', async () => {
    now = { headers: idx(10), body: [healthEntry('a'), healthEntry('b')] };
    const w = start(5000);
    await w.ready();
    now = { headers: idx(1), body: [healthEntry('a')] };
    await failHeld(w);
    const q = await nextHeld();
    assert.deepEqual(ids(w.current()), ['a', 'b']);
    await clock.advanceAsync(4999);
    q.answer({ headers: idx(1), body: [healthEntry('a')] });
    const q2 = await nextHeld();
    assert.deepEqual(ids(w.current()), ['a', 'b'], 'still within the grace');
    await clock.advanceAsync(1);
    q2.answer({ headers: idx(1), body: [healthEntry('a')] });
    await eventually(() => w.current()?.length === 1, 5000, 'the shrunken list after the grace');
    assert.deepEqual(ids(w.current()), ['a']);
  });

  it('holds after an index that went backwards too, and not at all with settleGraceMs: 0', async () => {
    now = { headers: idx(100), body: [healthEntry('a'), healthEntry('b')] };
    const w = start();
    await w.ready();
    now = { headers: idx(6), body: [] };
    (await nextHeld()).answer({ headers: idx(5), body: [] });
    await nextHeld();
    assert.deepEqual(ids(w.current()), ['a', 'b'], 'an index reset without an error is held as well');
    await watcher!.close();
    for (const h of held.splice(0)) h.answer({ hang: true });

    now = { headers: idx(10), body: [healthEntry('a'), healthEntry('b')] };
    const plain = start(0);
    await plain.ready();
    now = { headers: idx(1), body: [] };
    await failHeld(plain);
    await nextHeld();
    assert.deepEqual(plain.current(), [], 'without a grace the first answer is taken');
  });

  it('an ordinary shrink (no error, index moving forward) shows at once', async () => {
    now = { headers: idx(10), body: [healthEntry('a'), healthEntry('b')] };
    const w = start();
    await w.ready();
    (await nextHeld()).answer({ headers: idx(11), body: [healthEntry('b')] });
    await nextHeld();
    assert.deepEqual(ids(w.current()), ['b']);
  });

  it('caps its retry delay at 2 s by default, so it is back within 2 s of Consul', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((r) => closed.close(() => r()));
    watcher = new ServiceWatcher({
      consul: { url: `http://127.0.0.1:${port}` },
      clock,
      minQueryIntervalMs: 0,
      backoff: { random: () => 0.999 },
    });
    const w = watcher.watch('orders');
    let errors = 0;
    w.onError(() => errors++);
    await eventually(() => errors === 1, 5000, 'the first error');
    // Full jitter with the default base 250 ms: 249, 499, 999, 1998, then 1998 (the 2000 ms cap) for ever.
    for (const delay of [249, 499, 999, 1998, 1998, 1998, 1998]) {
      const before = errors;
      await clock.advanceAsync(delay - 1);
      assert.equal(errors, before, `no retry before ${delay} ms`);
      await clock.advanceAsync(1);
      await eventually(() => errors === before + 1, 5000, `a retry after ${delay} ms`);
    }
  });
});
