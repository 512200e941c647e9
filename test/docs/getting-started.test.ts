/**
 * docs/getting-started.md, followed as written: its server.ts, shoal.yaml and client.ts (taken from the page),
 * consul-dev and the coordinator CLI as child processes. The only changes: free ports instead of 8500/8080/9090
 * and a 15 s client run instead of 60 s. The service must scale out under the client's load with no failed
 * request, and stopping the coordinator must stop every replica.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../kit/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<unknown>;
}

function start(args: string[], cwd: string): Proc {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out = (out + c).slice(-200_000)));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out = (out + c).slice(-200_000)));
  return { child, output: () => out, exited: once(child, 'exit') };
}

/** Live processes whose working directory is `dir` (Linux /proc). */
function processesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/cwd`) !== dir) continue;
      if (/^State:\s+Z/m.test(readFileSync(`/proc/${name}/status`, 'utf8'))) continue;
      pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

function blocks(page: string): { files: Record<string, string>; yaml: string } {
  const files: Record<string, string> = {};
  let yaml = '';
  for (const m of page.matchAll(/^```(ts runnable|yaml coordinator-config)\n([\s\S]*?)^```/gm)) {
    const body = m[2]!;
    const name = /^\/\/ (\S+\.ts)\n/.exec(body)?.[1] ?? /^# (\S+\.yaml)\n/.exec(body)?.[1];
    if (m[1] === 'yaml coordinator-config') yaml = body;
    else if (name) files[name] = body;
  }
  return { files, yaml };
}

async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

describe('docs/getting-started.md works as written', function () {
  this.timeout(180_000);
  let dir: string;
  const procs: Proc[] = [];

  beforeEach(function () {
    if (!existsSync('/proc/self/cwd')) this.skip(); // the leftover check reads /proc
    dir = mkdtempSync(join(tmpdir(), 'shoal-getting-started-'));
  });

  afterEach(async () => {
    for (const p of procs.splice(0).reverse()) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    }
    for (const pid of processesIn(dir)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('scales the service out under the client, fails no request, and stops every replica with the coordinator', async () => {
    const page = readFileSync(join(root, 'docs', 'getting-started.md'), 'utf8');
    const { files, yaml } = blocks(page);
    assert.deepEqual(Object.keys(files).sort(), ['client.ts', 'server.ts']);
    assert.ok(yaml.includes('tokenFile: orders.token'));

    const [consulPort, httpPort, grpcPort] = [await freePort(), await freePort(), await freePort()];
    const ports = (text: string): string =>
      text
        .replaceAll('127.0.0.1:8500', `127.0.0.1:${consulPort}`)
        .replaceAll('127.0.0.1:8080', `127.0.0.1:${httpPort}`)
        .replaceAll('127.0.0.1:9090', `127.0.0.1:${grpcPort}`);
    assert.ok(files['client.ts']!.includes('60_000'));
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    writeFileSync(join(dir, 'server.ts'), ports(files['server.ts']!));
    writeFileSync(join(dir, 'client.ts'), ports(files['client.ts']!).replace('60_000', '15_000'));
    writeFileSync(join(dir, 'shoal.yaml'), ports(yaml));
    writeFileSync(join(dir, 'orders.token'), randomBytes(24).toString('hex') + '\n');

    const consul = start([join(root, 'packages', 'consul-dev', 'dist', 'cli.js'), '--port', String(consulPort)], dir);
    procs.push(consul);
    const coordinator = start([join(root, 'packages', 'coordinator', 'dist', 'cli.js'), '--config', 'shoal.yaml'], dir);
    procs.push(coordinator);
    type Services = { services: Array<{ name: string; currentReplicas?: number }> };
    const current = async (): Promise<number> =>
      (await getJson<Services>(`http://127.0.0.1:${httpPort}/v1/services`))?.services.find((s) => s.name === 'orders')
        ?.currentReplicas ?? 0;
    const passing = async (): Promise<number> =>
      (await getJson<unknown[]>(`http://127.0.0.1:${consulPort}/v1/health/service/orders?passing=1`))?.length ?? 0;

    const deadline = Date.now() + 60_000;
    while ((await passing()) < 1) {
      if (Date.now() > deadline) assert.fail(`no replica registered:\n${coordinator.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }

    const client = start(['--import', 'tsx', 'client.ts'], dir);
    procs.push(client);
    let peak = await current();
    while (client.child.exitCode === null) {
      peak = Math.max(peak, await current());
      await new Promise((r) => setTimeout(r, 500));
    }
    await client.exited;
    const out = client.output();
    assert.equal(client.child.exitCode, 0, out);
    const reports = [...out.matchAll(/\{ failed: (\d+) \}/g)].map((m) => Number(m[1]));
    assert.ok(reports.length >= 2, `the client reported every 5 s:\n${out}`);
    assert.deepEqual(
      reports.filter((n) => n !== 0),
      [],
      `failed requests:\n${out}`,
    );
    assert.ok(peak >= 2, `the coordinator scaled out (peak ${peak} replicas):\n${coordinator.output().slice(-3000)}`);
    const replicas = processesIn(dir).filter((pid) => pid !== consul.child.pid && pid !== coordinator.child.pid);
    assert.ok(replicas.length >= 2, `replica processes running: ${replicas.length}`);

    // "Stop the coordinator with Ctrl-C: it stops every replica it started."
    coordinator.child.kill('SIGINT');
    await coordinator.exited;
    const stopDeadline = Date.now() + 20_000;
    for (;;) {
      const left = processesIn(dir).filter((pid) => pid !== consul.child.pid);
      if (left.length === 0) break;
      if (Date.now() > stopDeadline) assert.fail(`replicas left after the coordinator stopped: ${left.join(', ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
