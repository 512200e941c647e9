import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const GOOD = (extra = '') => `listen: { http: "127.0.0.1:0", grpc: "127.0.0.1:0" }
syncPeriodMs: 60000
${extra}
services:
  - name: orders
    tokenFile: orders.token
    policy: { targets: [{ metric: inFlight, value: 10 }] }
    actuator: { type: command, command: "true" }
`;

describe('shoal-coordinator CLI', () => {
  let dir: string;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-cli-'));
    await writeFile(join(dir, 'orders.token'), 'orders-token-0123456789abcdef\n');
  });
  afterEach(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('--help explains every flag', async () => {
    const { code, stdout } = await run(['--help']);
    assert.equal(code, 0);
    for (const flag of [
      '--config',
      '--insecure-dev',
      '--dry-run',
      '--check',
      '--log-level',
      '--help',
      '--version',
      'simulate',
      'healthcheck',
      'SIGHUP',
    ]) {
      assert.ok(stdout.includes(flag), `help mentions ${flag}`);
    }
  });

  it('forwards `simulate` to the @shoal/policy CLI (the same engine)', async () => {
    const { code, stdout, stderr } = await run(['simulate', '--help']);
    assert.equal(code, 0, stderr);
    assert.match(stdout + stderr, /shoal simulate --trace FILE --policy FILE/);
  });

  it('exits 64 on usage errors and 78 on an invalid config, naming the path and value', async () => {
    assert.equal((await run([])).code, 64);
    assert.equal((await run(['--bogus'])).code, 64);
    const file = join(dir, 'bad.yaml');
    await writeFile(file, GOOD().replace('value: 10', 'value: -1'));
    const { code, stderr } = await run(['--config', file]);
    assert.equal(code, 78);
    assert.match(stderr, /services\[0\]\.policy\.targets\[0\]\.value: must be > 0, got -1/);
  });

  it('refuses to start without tokens unless --insecure-dev, and --check validates only', async () => {
    const file = join(dir, 'shoal.yaml');
    await writeFile(file, GOOD().replace('    tokenFile: orders.token\n', ''));
    const refused = await run(['--config', file, '--check']);
    assert.equal(refused.code, 78);
    assert.match(refused.stderr, /refusing to start without agent authentication/);
    const ok = await run(['--config', file, '--check', '--insecure-dev']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /ok \(1 service\(s\)\)/);
  });

  it('runs, answers healthcheck, reloads on SIGHUP (keeping the config when invalid) and stops on SIGTERM', async () => {
    const file = join(dir, 'shoal.yaml');
    await writeFile(file, GOOD());
    child = spawn(process.execPath, [CLI, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout! });
    const logs: Array<Record<string, unknown>> = [];
    let listening: { http: string } | undefined;
    const waiters: Array<() => void> = [];
    lines.on('line', (l) => {
      const j = JSON.parse(l) as Record<string, unknown>;
      if (j.msg === 'listening') listening = j as unknown as { http: string };
      logs.push(j);
      waiters.splice(0).forEach((w) => w());
    });
    const waitLog = async (pred: (j: Record<string, unknown>) => boolean) => {
      while (!logs.some(pred)) await new Promise<void>((r) => waiters.push(r));
      return logs.find(pred)!;
    };
    await waitLog((j) => j.msg === 'listening');
    const health = await run(['healthcheck', '--url', listening!.http]);
    assert.equal(health.code, 0);
    assert.equal((await run(['healthcheck', '--url', 'http://127.0.0.1:1'])).code, 1);

    await writeFile(file, GOOD().replace('value: 10', 'value: 0'));
    child.kill('SIGHUP');
    const failed = await waitLog((j) => j.msg === 'config reload failed; keeping the running config');
    assert.match(JSON.stringify(failed), /targets\[0\]\.value: must be > 0, got 0/);
    assert.equal((await fetch(`${listening!.http}/healthz`)).status, 200);

    await writeFile(file, GOOD('dryRun: true'));
    child.kill('SIGHUP');
    await waitLog((j) => j.msg === 'config reloaded (SIGHUP)');
    assert.ok(!JSON.stringify(logs).includes('orders-token-0123456789abcdef'), 'no token in any log line');

    const exited = new Promise<number | null>((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    // Its last lines reached stdout before it exited.
    await waitLog((j) => j.msg === 'exiting');
    assert.deepEqual(
      logs.slice(-3).map((j) => j.msg),
      ['stopping', 'coordinator stopped', 'exiting'],
    );
  });
});
