import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

function run(args: string[]): { child: ChildProcess; exit: Promise<number | null>; firstLine: Promise<string> } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', () => reject(new Error(`exited before printing; stdout=${out}`)));
  });
  firstLine.catch(() => {});
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exit, firstLine };
}

describe('shoal-consul-dev CLI', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = undefined;
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`prints its address, answers /v1/status/leader, and exits 0 on ${signal}`, async () => {
      const p = run(['--port', '0']);
      child = p.child;
      const line = await p.firstLine;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
      assert.ok(m, line);
      const res = await fetch(`${m[1]}/v1/status/leader`);
      assert.equal(res.status, 200);
      assert.equal(await res.json(), '127.0.0.1:8300');
      p.child.kill(signal);
      assert.equal(await p.exit, 0);
    });
  }

  it('exits 2 with usage on an unknown flag, and 1 on a bad port', async () => {
    const bad = run(['--bogus']);
    child = bad.child;
    assert.equal(await bad.exit, 2);
    const port = run(['--port', 'abc']);
    child = port.child;
    assert.equal(await port.exit, 1);
  });

  it('requires the token when started with --acl-token', async () => {
    const p = run(['--port', '0', '--acl-token', 's3cret']);
    child = p.child;
    const url = /(http:\/\/\S+)/.exec(await p.firstLine)![1]!;
    assert.equal((await fetch(`${url}/v1/agent/self`)).status, 403);
    assert.equal((await fetch(`${url}/v1/agent/self`, { headers: { 'X-Consul-Token': 's3cret' } })).status, 200);
    p.child.kill('SIGTERM');
    assert.equal(await p.exit, 0);
  });
});
