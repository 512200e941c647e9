/**
 * End to end: `node examples/demo/dist/demo.js --fast` as a child process, exactly what `npm run demo` runs after
 * its build. It must scale the service up to at least 4 replicas and back down with zero failed requests, write
 * its chart, and leave no process behind, also when interrupted with Ctrl-C (SIGINT).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../kit/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEMO = join(root, 'examples', 'demo', 'dist', 'demo.js');

interface DemoRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

function startDemo(args: string[]): DemoRun {
  const child = spawn(process.execPath, [DEMO, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited: once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>,
  };
}

/** Processes (other than zombies) whose command line mentions `tag` (Linux /proc). */
function processesTagged(tag: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (!cmdline.includes(tag)) continue;
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status)) continue;
      found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function assertNoProcessLeft(tag: string, pids: readonly number[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const left = processesTagged(tag);
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return !readFileSync(`/proc/${pid}/status`, 'utf8').match(/^State:\s+Z/m);
      } catch {
        return false;
      }
    });
    if (left.length === 0 && alive.length === 0) return;
    if (Date.now() > deadline)
      assert.fail(`processes left behind: tagged ${left.join(', ')}; replicas ${alive.join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function waitForOutput(run: DemoRun, pattern: RegExp, timeoutMs: number): Promise<void> {
  await waitFor(
    () => {
      if (pattern.test(run.stdout())) return true;
      if (run.child.exitCode !== null) assert.fail(`demo exited early:\n${run.stdout()}\n${run.stderr()}`);
      return false;
    },
    { timeoutMs, intervalMs: 200, what: () => `${pattern} in the demo's output:\n${run.stdout()}` },
  );
}

describe('demo: npm run demo -- --fast', function () {
  this.timeout(240_000);
  const onLinux = existsSync('/proc/self/cmdline');
  let out: string;
  let run: DemoRun | undefined;
  let runId: string;

  beforeEach(function () {
    if (!existsSync(DEMO)) assert.fail(`${DEMO} is missing: build first (npm run build)`);
    if (!onLinux) this.skip(); // the leftover-process check reads /proc
    out = mkdtempSync(join(tmpdir(), 'shoal-demo-test-'));
    runId = `demo-test-${process.pid}-${Date.now().toString(36)}`;
  });

  afterEach(async () => {
    if (run && run.child.exitCode === null && run.child.signalCode === null) {
      run.child.kill('SIGKILL');
      await run.exited;
    }
    // Whatever happened, kill anything this run left so one failure does not leak into other tests.
    for (const pid of processesTagged(runId)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    run = undefined;
    rmSync(out, { recursive: true, force: true });
  });

  it('scales 1 → at least 4 → back down with zero failed requests, writes its chart, leaves no process', async () => {
    run = startDemo(['--fast', '--json', '--out', out, '--run-id', runId]);
    const [code, signal] = await run.exited;
    const stdout = run.stdout();
    assert.equal(code, 0, `demo exited with ${code ?? signal}\n${stdout}\n${run.stderr()}`);
    const last = stdout.trim().split('\n').pop()!;
    const summary = JSON.parse(last) as {
      runId: string;
      completed: boolean;
      startReplicas: number;
      peakReplicas: number;
      finalReplicas: number;
      scaledUp: boolean;
      scaledDown: boolean;
      requests: number;
      failedRequests: number;
      failures: Record<string, number>;
      scaleUpDecisions: number;
      scaleDownDecisions: number;
      durationMs: number;
      replicaPids: number[];
    };
    assert.equal(summary.runId, runId);
    assert.equal(summary.completed, true);
    assert.equal(summary.startReplicas, 1);
    assert.ok(summary.peakReplicas >= 4, `peak replicas ${summary.peakReplicas}, expected at least 4`);
    assert.ok(summary.scaledDown, `did not scale down: final ${summary.finalReplicas}, peak ${summary.peakReplicas}`);
    assert.ok(summary.finalReplicas <= 2, `final replicas ${summary.finalReplicas}`);
    assert.ok(summary.scaleUpDecisions >= 1 && summary.scaleDownDecisions >= 1);
    assert.ok(summary.requests > 1000, `only ${summary.requests} requests`);
    assert.equal(summary.failedRequests, 0, `failed requests: ${JSON.stringify(summary.failures)}`);
    assert.ok(summary.durationMs < 180_000);
    assert.ok(summary.replicaPids.length >= summary.peakReplicas);
    // The live view (plain lines when not a TTY) showed decisions with reasons, and the summary was printed.
    assert.match(stdout, /decision ▲ \[.*\] 1 → \d+: .*inFlight/);
    assert.match(stdout, /decision ▼/);
    assert.match(stdout, /failed requests {3}0 \(expected 0\)/);
    const svg = readFileSync(join(out, 'chart.svg'), 'utf8');
    assert.match(svg, /^<svg /);
    assert.ok((svg.match(/<polyline /g) ?? []).length >= 4);
    assert.equal(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')).peakReplicas, summary.peakReplicas);
    await assertNoProcessLeft(runId, summary.replicaPids);
  });

  it('stops everything it started on Ctrl-C (SIGINT) and still prints its summary', async () => {
    run = startDemo(['--fast', '--out', out, '--run-id', runId]);
    // Wait until the service has scaled out (so there are several replicas to stop).
    await waitForOutput(run, /replicas [2-9]/, 90_000);
    const tagged = processesTagged(runId);
    assert.ok(tagged.length >= 2, `expected replicas running, found ${tagged.length}`);
    run.child.kill('SIGINT');
    const [code] = await run.exited;
    assert.equal(code, 130, run.stdout() + run.stderr());
    assert.match(run.stdout(), /summary \(interrupted\)/);
    assert.ok(existsSync(join(out, 'chart.svg')));
    await assertNoProcessLeft(runId, tagged);
  });
});
