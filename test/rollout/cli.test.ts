/**
 * `shoal-coordinator status` and the `rollout` commands, the real program against a real coordinator (its HTTP
 * API on a real port, local replicas as real processes): the table and `--json`, the read and operator tokens
 * (from `--token-file` or SHOAL_API_TOKEN, never printed), and rollout refusals with their `SHOAL_ERR_ROLLOUT_*`
 * code — pause/resume without a rollout, undo with nothing to undo, a service that does not roll out, and a
 * reload whose new version cannot start.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCoordinator, type Coordinator, type CoordinatorConfigInput } from '@shoal/coordinator';
import { hasErrorCode } from '@shoal/core';
import { isAlive, waitFor } from '../kit/index.js';

const CLI = fileURLToPath(new URL('../../packages/coordinator/dist/cli.js', import.meta.url));
const OPERATOR = 'status-operator-token-0123456789';
const READER = 'status-read-token-0123456789abcd';

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const { SHOAL_API_TOKEN: _drop, ...base } = process.env;
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...base, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('shoal-coordinator status and rollout commands (real CLI, real coordinator)', function () {
  this.timeout(60_000);
  let coordinator: Coordinator;
  let dir: string;
  let url: string;
  let config: CoordinatorConfigInput;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-status-'));
    writeFileSync(join(dir, 'operator'), `${OPERATOR}\n`);
    writeFileSync(join(dir, 'reader'), `${READER}\n`);
    config = {
      listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
      syncPeriodMs: 300,
      api: { token: OPERATOR, readToken: READER },
      services: [
        {
          name: 'web',
          token: 'status-agent-token-web-0123456789',
          minReplicas: 2,
          maxReplicas: 3,
          policy: { targets: [{ metric: 'inFlight', value: 10 }] },
          actuator: { type: 'local', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] },
        },
        {
          name: 'batch',
          token: 'status-agent-token-batch-0123456789',
          minReplicas: 1,
          maxReplicas: 5,
          policy: { targets: [{ metric: 'inFlight', value: 10 }] },
          actuator: { type: 'command', command: 'true' },
        },
      ],
    };
    coordinator = createCoordinator(config, { env: process.env });
    await coordinator.start();
    url = coordinator.urls().http;
    await waitFor(() => coordinator.services().every((s) => s.lastDecision !== undefined), {
      timeoutMs: 20_000,
      what: 'a decision for every service',
    });
  });

  after(async () => {
    const pids = (coordinator?.actuator('web')?.replicas() ?? []).map((r) => r.pid ?? 0).filter((p) => p > 0);
    await coordinator?.close();
    await waitFor(() => pids.every((p) => !isAlive(p)), { timeoutMs: 20_000, what: 'the replicas to exit' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints a table of every service: replicas, desired, ready, rollout, last decision and its reason', async () => {
    // The first decision (0 → 2) comes before the actuator has started the replicas.
    await waitFor(() => coordinator.services().find((s) => s.name === 'web')?.currentReplicas === 2, {
      timeoutMs: 20_000,
      what: 'web at 2 replicas',
    });
    const { code, stdout, stderr } = await run(['status', '--url', url, '--token-file', join(dir, 'reader')]);
    assert.equal(code, 0, stderr);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^SERVICE +ACTUATOR +MIN +MAX +REPLICAS +DESIRED +READY +ROLLOUT +LAST DECISION +REASON$/);
    const web = lines.find((l) => l.startsWith('web '));
    const batch = lines.find((l) => l.startsWith('batch '));
    assert.match(web ?? '', /^web +local +2 +3 +2 +2 +0\/0 +none +\d→\d .*ago +\S/, stdout);
    assert.match(batch ?? '', /^batch +command +1 +5 +\S+ +\S+ +0\/0 +- +/, stdout);
    const reason = coordinator.services().find((s) => s.name === 'web')!.lastDecision!.reasons[0]!;
    assert.ok(stdout.includes(reason.slice(0, 20)), `the reason is shown: ${reason}`);
    assert.ok(!stdout.includes(READER) && !stderr.includes(READER), 'the token is never printed');
  });

  it('--json answers the same, per service, with the token from SHOAL_API_TOKEN; names one service', async () => {
    const { code, stdout, stderr } = await run(['status', 'web', '--url', url, '--json'], {
      SHOAL_API_TOKEN: OPERATOR,
    });
    assert.equal(code, 0, stderr);
    const body = JSON.parse(stdout) as { services: Record<string, unknown>[] };
    assert.equal(body.services.length, 1);
    const web = body.services[0]!;
    assert.equal(web.name, 'web');
    assert.equal(web.replicas, 2);
    assert.equal(web.desired, 2);
    assert.equal((web.rollout as { state: string }).state, 'none');
    assert.ok(Array.isArray((web.lastDecision as { reasons: string[] }).reasons));
    assert.ok(!stdout.includes(OPERATOR));

    const unknown = await run(['status', 'nope', '--url', url], { SHOAL_API_TOKEN: OPERATOR });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no service "nope" \(the coordinator has web, batch\)/);
  });

  it('without a valid token: exit 1, HTTP 401 and how to give one, the token not echoed', async () => {
    const wrong = 'wrong-token-0123456789-abcdefgh';
    const res = await run(['status', '--url', url], { SHOAL_API_TOKEN: wrong });
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      /^status: HTTP 401: .*read token.*\(give the API token with --token-file or SHOAL_API_TOKEN/,
    );
    assert.ok(!res.stderr.includes(wrong) && !res.stdout.includes(wrong));
    const none = await run(['status', '--url', url]);
    assert.equal(none.code, 1);
    const missing = await run(['status', '--url', url, '--token-file', join(dir, 'absent')]);
    assert.equal(missing.code, 64);
    assert.match(missing.stderr, /--token-file ".*absent" cannot be read: ENOENT/);
  });

  it('refuses pause, resume and undo that do not fit with their code; rollout status takes the read token', async () => {
    const env = { SHOAL_API_TOKEN: OPERATOR };
    const pause = await run(['rollout', 'pause', 'web', '--url', url], env);
    assert.equal(pause.code, 1);
    assert.match(
      pause.stderr,
      /^pause web: HTTP 409 \[SHOAL_ERR_ROLLOUT_NOT_IN_PROGRESS\]: web: cannot pause: no rollout in progress/,
    );
    const resume = await run(['rollout', 'resume', 'web', '--url', url], env);
    assert.match(resume.stderr, /HTTP 409 \[SHOAL_ERR_ROLLOUT_NOT_IN_PROGRESS\]: web: cannot resume/);
    const undo = await run(['rollout', 'undo', 'web', '--url', url], env);
    assert.equal(undo.code, 1);
    assert.match(
      undo.stderr,
      /HTTP 409 \[SHOAL_ERR_ROLLOUT_NOTHING_TO_UNDO\]: web: nothing to undo: no rollout has completed/,
    );
    const other = await run(['rollout', 'undo', 'batch', '--url', url], env);
    assert.match(other.stderr, /HTTP 409 \[SHOAL_ERR_ROLLOUT_UNSUPPORTED\]: service "batch" has a command actuator/);
    const otherStatus = await run(['rollout', 'status', 'batch', '--url', url], env);
    assert.match(otherStatus.stderr, /HTTP 404 \[SHOAL_ERR_ROLLOUT_UNSUPPORTED\]/);
    // Reading a rollout takes the read token; steering it does not.
    const read = await run(['rollout', 'status', 'web', '--url', url, '--json'], { SHOAL_API_TOKEN: READER });
    assert.equal(read.code, 0, read.stderr);
    assert.equal((JSON.parse(read.stdout) as { state: string }).state, 'none');
    const readerPause = await run(['rollout', 'pause', 'web', '--url', url], { SHOAL_API_TOKEN: READER });
    assert.match(readerPause.stderr, /HTTP 401/);
  });

  it('refuses a reload whose new version cannot start, with SHOAL_ERR_ROLLOUT_INVALID, and says so in the rollout', async () => {
    const services = (config.services as Record<string, unknown>[]).map((s) =>
      s.name === 'web' ? { ...s, actuator: { ...(s.actuator as object), command: join(dir, 'no-such-node') } } : s,
    );
    await assert.rejects(coordinator.reload({ ...config, services } as CoordinatorConfigInput), (e: unknown) => {
      assert.ok(hasErrorCode(e, 'SHOAL_ERR_ROLLOUT_INVALID'), String(e));
      assert.match(
        (e as Error).message,
        /service "web": cannot roll out the new version: actuator.command ".*no-such-node" is not an executable file/,
      );
      return true;
    });
    const status = coordinator.rollout('web')!;
    assert.equal(status.state, 'none');
    assert.match(status.events.at(-1)!.message, /config change refused \(SHOAL_ERR_ROLLOUT_INVALID\)/);
    const log = coordinator.decisions('web')!.flatMap((d) => d.reasons);
    assert.ok(
      log.some((r) => /config change refused/.test(r)),
      'the decision log says so',
    );
    assert.equal(await coordinator.actuator('web')!.getReplicas(), 2, 'the running replicas are untouched');
  });

  it('a refused pause, resume or undo names the operator token it needs, not the read token', async () => {
    // Each action with each kind of refused token: a wrong one, the read token, none.
    const cases = [
      ['pause', { SHOAL_API_TOKEN: 'wrong-token-0123456789-abcdefgh' }],
      ['resume', { SHOAL_API_TOKEN: READER }],
      ['undo', {}],
    ] as const;
    for (const [action, env] of cases) {
      const res = await run(['rollout', action, 'web', '--url', url], env);
      assert.equal(res.code, 1);
      assert.match(res.stderr, new RegExp(`^${action} web: HTTP 401: `), res.stderr);
      assert.match(res.stderr, /operator token \(api\.token/, res.stderr);
      assert.doesNotMatch(res.stderr, /needs the read token|api\.readToken or api\.token/, res.stderr);
    }
  });

  it('says "paused" as soon as a rollout is paused and not once it is resumed', async () => {
    // A new version of web (its replicas have no agent: never ready, so the rollout waits for readiness).
    const services = (config.services as Record<string, unknown>[]).map((s) =>
      s.name === 'web'
        ? { ...s, actuator: { ...(s.actuator as object), args: ['-e', 'setInterval(() => {}, 999)'] } }
        : s,
    );
    await coordinator.reload({ ...config, services } as CoordinatorConfigInput);
    const env = { SHOAL_API_TOKEN: OPERATOR };
    const paused = await run(['rollout', 'pause', 'web', '--url', url], env);
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /^web: rolling-out \(paused\)/);
    assert.match(paused.stdout, /\n {2}reason: paused/, paused.stdout);
    await waitFor(() => coordinator.rollout('web')?.reason?.startsWith('paused') === true, {
      timeoutMs: 10_000,
      what: 'a step while paused',
    });
    const resumed = await run(['rollout', 'resume', 'web', '--url', url], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /^web: rolling-out {2}/);
    assert.doesNotMatch(resumed.stdout, /reason: paused/, resumed.stdout);
    const status = await run(['rollout', 'status', 'web', '--url', url], env);
    assert.doesNotMatch(status.stdout, /reason: paused|\(paused\)/, status.stdout);
    assert.match(status.stdout, /reason: (resumed|waiting for the first)/, status.stdout);
  });
});
