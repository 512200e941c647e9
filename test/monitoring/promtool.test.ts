/**
 * `promtool check metrics` (Debian's prometheus package, installed by .ci/run) on what the coordinator's CLI
 * serves on /metrics: names, types, units and help texts as Prometheus wants them.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, ROOT, waitFor } from '../kit/index.js';

function findPromtool(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

describe('promtool check metrics', function () {
  this.timeout(60_000);
  let dir: string;
  let child: ChildProcess | undefined;

  before(async function () {
    // Skipped where promtool is absent: .ci/run installs it; say so rather than pass silently.
    if (!findPromtool()) this.skip();
    dir = await mkdtemp(join(tmpdir(), 'shoal-promtool-'));
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('finds nothing to complain about in the coordinator CLI /metrics', async () => {
    const port = await freePort();
    const config = join(dir, 'shoal.yaml');
    await writeFile(
      config,
      `listen: { http: "127.0.0.1:${port}", grpc: "127.0.0.1:0" }
services:
  - name: web
    token: web-token-0123456789abcdef
    policy: { targets: [{ metric: inFlight, value: 10 }] }
    actuator: { type: command, command: "true" }
`,
    );
    child = spawn(process.execPath, [join(ROOT, 'packages/coordinator/bin/shoal-coordinator.js'), '--config', config], {
      stdio: 'ignore',
    });
    const text = await waitFor(
      () =>
        fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) }).then((r) =>
          r.ok ? r.text() : undefined,
        ),
      { retryErrors: true, timeoutMs: 30_000, what: 'the coordinator /metrics' },
    );
    assert.match(text, /shoal_coordinator_decisions_total\{service="web",direction="up",applied="true"\} 0/);
    assert.match(text, /nodejs_eventloop_lag_seconds/, 'default metrics are collected');
    const check = spawnSync(findPromtool()!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  });
});
