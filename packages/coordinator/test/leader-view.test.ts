import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '@shoal/core';
import { LeaderUnavailableError, LeaderView } from '@shoal/coordinator/internal';

/** A stand-in leader HTTP API on port 0, answering with `handler` and counting requests. */
async function leaderServer(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: Array<{ path: string; authorization: string | undefined }> = [];
  const server: Server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return { url, seen, close };
}

describe('LeaderView (a follower reading the leader’s HTTP API)', () => {
  const views: LeaderView[] = [];
  const closers: Array<() => Promise<void>> = [];
  const view = (options: ConstructorParameters<typeof LeaderView>[0] = {}) => {
    const v = new LeaderView({ backoff: { baseMs: 10, capMs: 20 }, ...options });
    views.push(v);
    return v;
  };
  afterEach(async () => {
    for (const v of views.splice(0)) v.close();
    for (const c of closers.splice(0)) await c();
  });

  it('passes the caller’s authorization and returns the leader’s answer as it is', async () => {
    const leader = await leaderServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"no service"}');
    });
    closers.push(leader.close);
    const v = view();
    v.setLeader({ id: 'a', httpUrl: leader.url });
    assert.equal(v.leader, 'a');
    const answer = await v.get('/v1/services/x', 'Bearer t');
    assert.deepEqual(
      [answer.status, answer.contentType, answer.body.toString()],
      [404, 'application/json', '{"error":"no service"}'],
    );
    assert.deepEqual(leader.seen, [{ path: '/v1/services/x', authorization: 'Bearer t' }]);
  });

  it('retries a 503 with backoff and returns the next answer', async () => {
    let n = 0;
    const leader = await leaderServer((_req, res) => {
      res.writeHead(n++ === 0 ? 503 : 200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    closers.push(leader.close);
    const v = view();
    v.setLeader({ id: 'a', httpUrl: leader.url });
    assert.equal((await v.get('/v1/sd', undefined)).status, 200);
    assert.equal(leader.seen.length, 2);
  });

  it('gives up on a leader that never answers after its attempts, each bounded by timeoutMs', async () => {
    const leader = await leaderServer(() => {
      // hangs: never answers
    });
    closers.push(leader.close);
    const v = view({ timeoutMs: 150, attempts: 2 });
    v.setLeader({ id: 'a', httpUrl: leader.url });
    await assert.rejects(
      v.get('/v1/services', undefined),
      (e: Error) => e instanceof LeaderUnavailableError && /after 2 attempts: no answer within 150 ms/.test(e.message),
    );
    assert.equal(leader.seen.length, 2);
  });

  it('gives up on a refused connection, and refuses at once with no leader or an unusable address', async () => {
    const leader = await leaderServer(() => {});
    await leader.close(); // the port is closed now
    const v = view({ attempts: 3 });
    v.setLeader({ id: 'a', httpUrl: leader.url });
    await assert.rejects(
      v.get('/v1/services', undefined),
      (e: Error) => e instanceof LeaderUnavailableError && /3 attempts/.test(e.message),
    );
    v.setLeader(undefined);
    await assert.rejects(v.get('/v1/services', undefined), /no leader known yet/);
    v.setLeader({ id: 'b', httpUrl: 'grpc://127.0.0.1:1' });
    assert.equal(v.leader, undefined);
    await assert.rejects(v.get('/v1/services', undefined), /no leader known yet/);
  });

  it('serves KEDA from one fetch of /v1/services per maxAgeMs, with its own token, and forgets it on a new leader', async () => {
    let desired = 3;
    const leader = await leaderServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ services: [{ name: 'orders', desiredReplicas: desired, instances: [] }] }));
    });
    closers.push(leader.close);
    const clock = new ManualClock(1_000_000);
    const v = view({ clock, maxAgeMs: 500, authorization: () => 'Bearer read' });
    v.setLeader({ id: 'a', httpUrl: leader.url });
    const [one, two] = await Promise.all([v.services(), v.services()]);
    assert.equal(one[0]!.desiredReplicas, 3);
    assert.equal(two[0]!.desiredReplicas, 3);
    assert.equal(leader.seen.length, 1, 'concurrent reads share one request');
    assert.equal(leader.seen[0]!.authorization, 'Bearer read');
    desired = 5;
    clock.advance(499);
    assert.equal((await v.services())[0]!.desiredReplicas, 3);
    clock.advance(1);
    assert.equal((await v.services())[0]!.desiredReplicas, 5);
    v.setLeader({ id: 'b', httpUrl: leader.url });
    desired = 7;
    assert.equal((await v.services())[0]!.desiredReplicas, 7, 'a new leader is asked at once');
    assert.equal(leader.seen.length, 3);
  });
});
