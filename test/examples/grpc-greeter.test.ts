/**
 * Runs examples/grpc-greeter the way its README does: two servers and a client as separate processes against a
 * Consul HTTP API (@shoal/consul-dev on a free port, or CONSUL_HTTP_ADDR).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startTestConsul } from '../support/consul.js';
import type { TestConsul } from '../support/consul.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/grpc-greeter/', import.meta.url));

function run(script: string, env: Record<string, string>, args: string[] = []): ChildProcess {
  // The sources run through tsx, so the test does not depend on the example having been built.
  return spawn(process.execPath, ['--import', 'tsx', `src/${script}.ts`, ...args], {
    cwd: EXAMPLE,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`process exited with ${code} before printing`);
    }),
  ])) as [string];
  return line;
}

describe('examples/grpc-greeter', function () {
  this.timeout(30_000);
  let consul: TestConsul;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    consul = await startTestConsul();
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
    await consul.close();
  });

  it('the client greets through consul:///greeter, and the servers deregister on SIGTERM', async () => {
    const env = { CONSUL_HTTP_ADDR: `${consul.host}:${consul.port}`, PORT: '0' };
    const servers = [run('server', env), run('server', env)];
    children.push(...servers);
    const banners = await Promise.all(servers.map(firstLine));
    for (const b of banners) assert.match(b, /^greeter \S+ listening on 127\.0\.0\.1:\d+, registered in Consul/);
    const ids = banners.map((b) => b.split(' ')[1]!);

    const client = run('client', env, ['6', 'tester']);
    children.push(client);
    let out = '';
    client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    let err = '';
    client.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(client, 'exit')) as [number];
    assert.equal(code, 0, err);
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 6, out);
    for (const line of lines) {
      const m = /^Hello, tester \(from (\S+)\)$/.exec(line);
      assert.ok(m && ids.includes(m[1]!), `unexpected line ${JSON.stringify(line)}`);
    }

    const outputs = servers.map((s) => {
      const o = { text: '' };
      s.stdout!.on('data', (d: Buffer) => (o.text += d.toString()));
      return o;
    });
    for (const s of servers) s.kill('SIGTERM');
    await Promise.all(servers.map((s) => once(s, 'exit')));
    // deregisterOnSignals re-raises the signal after cleaning up, as a process killed by SIGTERM should end.
    for (const s of servers) assert.ok(s.exitCode === 0 || s.signalCode === 'SIGTERM' || s.exitCode === 143);
    for (const [i, o] of outputs.entries()) assert.match(o.text, new RegExp(`greeter ${ids[i]} stopped`));
    const res = await fetch(`${consul.url}/v1/health/service/greeter`, {
      headers: consul.token ? { 'X-Consul-Token': consul.token } : {},
    });
    assert.deepEqual(await res.json(), []);
  });
});
