import assert from 'node:assert/strict';
import { timingSafeEqual } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasErrorCode } from '@shoal/core';
import { CommandActuator, SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhookBody } from '@shoal/coordinator';
import { isAlive, waitFor } from '../../../../test/kit/index.js';

const SECRET = 'webhook-secret-0123456789';

describe('CommandActuator', () => {
  let dir: string;
  let server: Server | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-cmd-'));
  });
  afterEach(async () => {
    if (server) {
      server.closeAllConnections();
      await new Promise((r) => server!.close(r));
      server = undefined;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the command without a shell, with the count in args and env', async () => {
    const out = join(dir, 'out.json');
    const a = new CommandActuator({
      service: 'orders',
      command: process.execPath,
      args: [
        '-e',
        `require('fs').writeFileSync(process.argv[1], JSON.stringify({argv: process.argv.slice(2), env: {d: process.env.SHOAL_DESIRED_REPLICAS, v: process.env.SHOAL_VICTIMS}}))`,
        out,
        'scale',
        '{service}',
        '--replicas={replicas}',
        '$(touch pwned)',
      ],
      cwd: dir,
    });
    const seen: number[] = [];
    a.watch((n) => seen.push(n));
    await a.scaleTo(4, { victims: ['a', 'b'] });
    const written = JSON.parse(await readFile(out, 'utf8')) as { argv: string[]; env: { d: string; v: string } };
    assert.deepEqual(written.argv, ['scale', 'orders', '--replicas=4', '$(touch pwned)']);
    assert.deepEqual(written.env, { d: '4', v: 'a,b' });
    assert.equal(await a.getReplicas(), 4);
    assert.deepEqual(seen, [4]);
    await assert.rejects(readFile(join(dir, 'pwned')), /ENOENT/);
  });

  it('fails with the exit code and output tail, and times out', async () => {
    const failing = new CommandActuator({
      service: 'orders',
      command: process.execPath,
      args: ['-e', 'console.error("quota exceeded"); process.exit(3)'],
    });
    await assert.rejects(
      failing.scaleTo(2),
      (e: Error) => hasErrorCode(e, 'SHOAL_ERR_ACTUATOR') && /exit code 3\): quota exceeded/.test(e.message),
    );
    assert.equal(await failing.getReplicas(), 0);
    const slow = new CommandActuator({
      service: 'orders',
      command: process.execPath,
      args: ['-e', 'setTimeout(()=>{}, 60000)'],
      timeoutMs: 100,
    });
    await assert.rejects(slow.scaleTo(2), /did not finish within 100 ms/);
    const missing = new CommandActuator({ service: 'orders', command: join(dir, 'no-such-binary') });
    await assert.rejects(missing.scaleTo(2), /cannot run command/);
  });

  it('calls the webhook with an HMAC-signed body the receiver can verify, retrying 5xx', async () => {
    const received: Array<{ body: string; ts: string; sig: string }> = [];
    let failFirst = 1;
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ body, ts: String(req.headers[TIMESTAMP_HEADER]), sig: String(req.headers[SIGNATURE_HEADER]) });
        res.writeHead(failFirst-- > 0 ? 503 : 204).end();
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/scale`;
    const a = new CommandActuator({ service: 'orders', webhook: { url, secret: SECRET }, random: () => 0 });
    await a.scaleTo(3, { victims: ['orders-1'] });
    assert.equal(received.length, 2);
    const last = received[1]!;
    assert.deepEqual(JSON.parse(last.body), { service: 'orders', desiredReplicas: 3, victims: ['orders-1'] });
    const expected = Buffer.from(signWebhookBody(SECRET, last.ts, last.body));
    assert.ok(timingSafeEqual(expected, Buffer.from(last.sig)));
    assert.ok(
      !timingSafeEqual(
        Buffer.from(signWebhookBody('other-secret-0123456789', last.ts, last.body)),
        Buffer.from(last.sig),
      ),
    );
  });

  it('does not retry a 4xx from the webhook', async () => {
    let calls = 0;
    server = createServer((_req, res) => {
      calls++;
      res.writeHead(401).end();
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const a = new CommandActuator({ service: 'orders', webhook: { url, secret: SECRET } });
    await assert.rejects(a.scaleTo(3), /answered HTTP 401/);
    assert.equal(calls, 1);
  });

  it('gives up on an unreachable webhook after bounded attempts', async () => {
    const a = new CommandActuator({
      service: 'orders',
      webhook: { url: 'http://127.0.0.1:1/scale', secret: SECRET },
      maxAttempts: 2,
      random: () => 0,
    });
    await assert.rejects(a.scaleTo(1), /unreachable \(attempt 2\)/);
  });

  it('validates its options', () => {
    assert.throws(() => new CommandActuator({ service: 'x' }), /exactly one of "command" or "webhook"/);
    assert.throws(
      () => new CommandActuator({ service: 'x', webhook: { url: 'ftp://x', secret: SECRET } }),
      /webhook.url must be an http\(s\) URL, got "ftp:\/\/x"/,
    );
  });

  it('stops a running command on close()', async () => {
    const pidFile = join(dir, 'pid');
    const a = new CommandActuator({
      service: 'orders',
      command: process.execPath,
      args: [
        '-e',
        `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setTimeout(() => {}, 60000)`,
      ],
      timeoutMs: 60_000,
    });
    const scaling = a.scaleTo(3);
    scaling.catch(() => undefined);
    let pid = 0;
    try {
      pid = Number(
        await waitFor(
          () =>
            readFile(pidFile, 'utf8').then(
              (text) => text.trim() || undefined,
              () => undefined,
            ),
          { timeoutMs: 5000, what: 'the command to start' },
        ),
      );
      await a.close();
      await assert.rejects(scaling, /signal SIGTERM/);
      assert.equal(isAlive(pid), false, 'the command outlived close()');
      await assert.rejects(a.scaleTo(1), (e: unknown) => hasErrorCode(e, 'SHOAL_ERR_CLOSED'));
    } finally {
      if (pid > 0 && isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('abandons a webhook call on close() instead of waiting for its timeout', async () => {
    let received = false;
    server = createServer(() => {
      received = true; // and never answers
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const a = new CommandActuator({
      service: 'orders',
      webhook: { url: `http://127.0.0.1:${port}/scale`, secret: SECRET },
      timeoutMs: 60_000,
    });
    const scaling = a.scaleTo(2);
    scaling.catch(() => undefined);
    await waitFor(() => received, { timeoutMs: 5000, what: 'the webhook call' });
    const started = Date.now();
    await a.close();
    await assert.rejects(scaling, /actuator closed|aborted/);
    assert.ok(Date.now() - started < 5000, 'close() waited for the webhook timeout');
  });
});
