/**
 * The leader lock across a coordinator's own restarts, with real processes: a SIGKILLed coordinator restarted with
 * the same id takes its lock back at once, and a SIGTERMed one (clean close) hands it to the follower at once.
 *
 * consul-dev runs on a frozen clock: no session can expire and no lock-delay can end, so each hand-over below is
 * done by the coordinators themselves (destroying their previous session, releasing on close), never by waiting.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '@shoal/core';
import { ConsulKv } from '@shoal/consul';
import { startConsulDev, type ConsulDevServer } from '@shoal/consul-dev';
import {
  createCoordinator,
  type Coordinator,
  type CoordinatorConfigInput,
  type CoordinatorUrls,
} from '@shoal/coordinator';
import { survivors, waitFor } from '../kit/index.js';

const PROCESS = fileURLToPath(new URL('./fixtures/coordinator-process.mjs', import.meta.url));
const LOCK_KEY = 'test/shoal/leader';

function config(consulUrl: string): CoordinatorConfigInput {
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: 300,
    consul: { url: consulUrl, requestTimeoutMs: 3000 },
    // A lock-delay Consul would apply if a session holding the lock were invalidated rather than released first.
    ha: { enabled: true, sessionTtlMs: 10_000, lockDelayMs: 60_000, lockKey: LOCK_KEY, stateKeyPrefix: 'test/s' },
    services: [
      {
        name: 'orders',
        token: 'orders-token-0123456789abcdef',
        minReplicas: 1,
        maxReplicas: 4,
        policy: { targets: [{ metric: 'eventLoopUtilization', value: 0.5 }] },
        actuator: { type: 'command', command: process.execPath, args: ['-e', ''] },
      },
    ],
  };
}

async function leaderId(kv: ConsulKv): Promise<string | undefined> {
  const item = await kv.get(LOCK_KEY);
  if (!item?.Session || !item.Value) return undefined;
  return (JSON.parse(item.Value) as { id?: string }).id;
}

describe('coordinator leader lock across its own restarts (real processes, consul-dev on a frozen clock)', function () {
  this.timeout(90_000);
  let consul: ConsulDevServer;
  let kv: ConsulKv;
  const children: ChildProcess[] = [];
  let b: Coordinator | undefined;

  const spawnCoordinator = async (id: string): Promise<{ child: ChildProcess; urls: CoordinatorUrls }> => {
    const child = spawn(process.execPath, [PROCESS, JSON.stringify(config(consul.url)), id], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const urls = await new Promise<CoordinatorUrls>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', (l) => resolve(JSON.parse(l) as CoordinatorUrls));
      child.once('exit', (code) => reject(new Error(`coordinator ${id} exited (${code})`)));
    });
    return { child, urls };
  };
  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once('exit', () => resolve()));

  beforeEach(async () => {
    consul = await startConsulDev({ port: 0, clock: new ManualClock(Date.now()) });
    kv = new ConsulKv({ consul: { url: consul.url } });
  });
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    const left = survivors(children.map((c) => c.pid!));
    children.length = 0;
    await b?.close();
    b = undefined;
    await kv.close();
    await consul.close();
    assert.deepEqual(left, [], 'no coordinator process left');
  });

  it('takes the lock back at once after SIGKILL + restart with the same id, and hands it over at once on SIGTERM', async () => {
    const first = await spawnCoordinator('coord-a');
    await waitFor(async () => (await leaderId(kv)) === 'coord-a', { what: 'coord-a to lead', timeoutMs: 20_000 });
    b = createCoordinator(config(consul.url), { id: 'coord-b' });
    await b.start();
    await waitFor(() => b!.isLeader === false && b!.services().length > 0, { what: 'coord-b to start following' });

    // Crash: the old session keeps holding the lock (and, on this frozen clock, would forever).
    const killedAt = Date.now();
    first.child.kill('SIGKILL');
    await exited(first.child);
    const second = await spawnCoordinator('coord-a');
    const lockSessions = async () => (await kv.listSessions()).filter((s) => s.Name === 'shoal-coordinator coord-a');
    await waitFor(
      async () =>
        (await leaderId(kv)) === 'coord-a' &&
        (await lockSessions()).length === 1 &&
        (await kv.get(LOCK_KEY))?.Session === (await lockSessions())[0]?.ID,
      { what: 'the restarted coord-a to hold the lock with its new session', timeoutMs: 20_000 },
    );
    const retakeMs = Date.now() - killedAt;
    assert.equal(b.isLeader, false, 'the follower never led meanwhile');
    await waitFor(
      async () => {
        // Until it leads, it follows its dead previous run: its reads are the (unreachable) leader's, answered 503.
        const res = await fetch(`${second.urls.http}/v1/services`);
        return res.ok && ((await res.json()) as { coordinator: { leader: boolean } }).coordinator.leader;
      },
      { what: 'the restarted coord-a to say it leads' },
    );

    // Clean shutdown: close() releases the lock and destroys the session; the follower leads at its next poll.
    const stoppedAt = Date.now();
    second.child.kill('SIGTERM');
    await exited(second.child);
    assert.equal(second.child.exitCode, 0);
    assert.deepEqual(await lockSessions(), [], 'close() destroyed its session');
    await waitFor(() => b!.isLeader, { what: 'coord-b to lead after the clean stop' });
    const handoverMs = Date.now() - stoppedAt;
    console.log(
      `      (SIGKILL → restarted coordinator leads again: ${retakeMs} ms incl. process start; SIGTERM → follower leads: ${handoverMs} ms)`,
    );
  });
});
