/**
 * The coordinator image for real (`npm run test:container`, not part of `npm test`): packages/coordinator/Dockerfile
 * is built by a Docker daemon (Debian's docker.io, started here when none runs) on a local Node base image (no
 * registry is reachable: scripts/container-base-image.sh makes one with debootstrap and the npm registry's Node,
 * unless SHOAL_NODE_IMAGE names an image to use, e.g. the public `node:20.19-bookworm-slim`). The image then runs
 * with a mounted config, turns `healthy` through its own HEALTHCHECK, runs as the non-root `node` user, takes the
 * reports of a real @shoal/agent in a second container (sharing its network namespace) and exits 0 on
 * `docker stop`. Skips, saying why, where no Docker daemon can be had. Leaves no daemon, container or image.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, waitFor } from '../kit/index.js';
import { startDocker, type DockerDaemon } from './docker.js';

const exec = promisify(execFile);
const TOKEN = 'web-container-token-0123456789';
const READ_TOKEN = 'read-container-token-0123456789';
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const IMAGE = `shoal-coordinator:test-${suffix}`;
const COORDINATOR = `shoal-coordinator-test-${suffix}`;
const AGENT = `shoal-agent-test-${suffix}`;
const CLI = '/app/node_modules/@shoal/coordinator/dist/cli.js';

describe('coordinator container image (Docker)', function () {
  this.timeout(7_200_000);
  let daemon: DockerDaemon | undefined;
  let dir: string | undefined;
  let baseImage = process.env.SHOAL_NODE_IMAGE ?? '';
  const builtBase = !baseImage;
  const took: Record<string, number> = {};
  let built = false;
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    try {
      return await work();
    } finally {
      took[name] = Math.round((Date.now() - start) / 100) / 10;
    }
  };

  before(async function () {
    const started = await timed('dockerd', startDocker);
    if ('unavailable' in started) {
      console.log(`      skipped: ${started.unavailable}`);
      this.skip();
    }
    daemon = started;
    dir = await mkdtemp(join(tmpdir(), 'shoal-container-'));
    if (builtBase) {
      if (!existsSync('/usr/sbin/debootstrap') && !existsSync('/usr/bin/debootstrap')) {
        console.log(
          '      skipped: no SHOAL_NODE_IMAGE and no debootstrap to make a base image (apt-get install debootstrap)',
        );
        this.skip();
      }
      baseImage = `shoal-local/node:20-bookworm-slim-${suffix}`;
      await timed('base image', () =>
        exec(join(ROOT, 'scripts/container-base-image.sh'), [baseImage, '20'], {
          env: daemon!.env,
          timeout: 1_800_000,
          maxBuffer: 16 * 1024 * 1024,
        }),
      );
    }
  });

  after(async () => {
    if (daemon) {
      await daemon.docker(['rm', '--force', '--volumes', COORDINATOR, AGENT]).catch(() => {});
      await daemon
        .docker(['image', 'rm', '--force', IMAGE, ...(builtBase && baseImage ? [baseImage] : [])])
        .catch(() => {});
      await daemon.docker(['image', 'prune', '--force']).catch(() => {});
      await daemon.close();
    }
    if (dir) await rm(dir, { recursive: true, force: true });
    if (Object.keys(took).length) console.log(`      seconds: ${JSON.stringify(took)}`);
  });

  it('builds from packages/coordinator/Dockerfile on the Node base image', async () => {
    await timed('build', () =>
      daemon!.docker(
        [
          'build',
          '--network',
          'host', // the build stage's npm ci reaches the npm registry
          '--build-arg',
          `NODE_IMAGE=${baseImage}`,
          '--file',
          join(ROOT, 'packages/coordinator/Dockerfile'),
          '--tag',
          IMAGE,
          ROOT,
        ],
        { timeoutMs: 5_400_000 }, // 40 min was not enough at a load average of 35–43 on 2 cores
      ),
    );
    const user = (await daemon!.docker(['image', 'inspect', '--format', '{{.Config.User}}', IMAGE])).trim();
    assert.equal(user, 'node');
    built = true;
  });

  it('runs with a mounted config: healthy, non-root, takes an agent report, exits 0 on docker stop', async () => {
    assert.ok(built, 'the image was built (see the test above)');
    const docker = daemon!.docker;
    const config = join(dir!, 'shoal.yaml');
    await writeFile(
      config,
      `listen: { http: "0.0.0.0:8080", grpc: "0.0.0.0:9090" }
api: { readToken: ${READ_TOKEN} }
services:
  - name: web
    token: ${TOKEN}
    minReplicas: 1
    maxReplicas: 3
    policy: { targets: [{ metric: inFlight, value: 10 }] }
    actuator: { type: command, command: "true" }
`,
    );
    await chmod(config, 0o644);
    // Its own network namespace with loopback only (the daemon runs without a bridge); the agent joins it.
    await docker([
      'run',
      '--detach',
      '--name',
      COORDINATOR,
      '--network',
      'none',
      '--volume',
      `${config}:/etc/shoal/shoal.yaml:ro`,
      IMAGE,
    ]);
    const health = async () => (await docker(['inspect', '--format', '{{.State.Health.Status}}', COORDINATOR])).trim();
    await timed('healthy', () =>
      waitFor(async () => (await health()) === 'healthy' || ((await health()) === 'unhealthy' ? 'unhealthy' : false), {
        timeoutMs: 90_000,
        intervalMs: 500,
        what: async () =>
          `the HEALTHCHECK to pass (now ${await health()}; logs: ${await docker(['logs', '--tail', '5', COORDINATOR]).catch(String)})`,
      }),
    );
    assert.equal(await health(), 'healthy', 'the image HEALTHCHECK passes');

    const status = await docker(['exec', COORDINATOR, 'cat', '/proc/1/status']);
    const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    assert.ok(uid, 'process 1 has a Uid line');
    assert.equal(uid[1], '1000', 'the coordinator (pid 1) runs as uid 1000, not root');
    assert.equal(uid[2], '1000');
    assert.match(await docker(['exec', COORDINATOR, 'cat', '/proc/1/cmdline']), /cli\.js/, 'pid 1 is the coordinator');

    // A real @shoal/agent (this checkout's build, mounted read-only) reports over gRPC to the coordinator's :9090.
    await docker([
      'run',
      '--detach',
      '--name',
      AGENT,
      '--network',
      `container:${COORDINATOR}`,
      '--user',
      '1000:1000',
      '--volume',
      `${ROOT}:/repo:ro`,
      '--workdir',
      '/repo',
      '--env',
      'SHOAL_COORDINATOR_URL=127.0.0.1:9090',
      '--env',
      `SHOAL_COORDINATOR_TOKEN=${TOKEN}`,
      '--env',
      'PORT=3000',
      baseImage,
      'node',
      'test/container/fixtures/agent.mjs',
    ]);
    const reported = await timed('agent report', () =>
      waitFor(
        async () => {
          const out = await docker([
            'exec',
            '--env',
            `SHOAL_API_TOKEN=${READ_TOKEN}`,
            COORDINATOR,
            'node',
            CLI,
            'status',
            'web',
            '--json',
          ]);
          const web = (JSON.parse(out) as { services: Array<{ name: string; instances: number; ready: number }> })
            .services[0];
          return web?.instances === 1 && web.ready === 1 ? web : false;
        },
        {
          timeoutMs: 60_000,
          intervalMs: 500,
          retryErrors: true,
          what: async () =>
            `the agent's report (agent logs: ${await docker(['logs', '--tail', '5', AGENT]).catch(String)})`,
        },
      ),
    );
    assert.equal(reported.name, 'web', 'the status command counts the agent-reported, ready instance');

    // The agent drains and exits 0 on SIGTERM; then the coordinator stops cleanly.
    await docker(['stop', '--time', '30', AGENT], { timeoutMs: 60_000 });
    assert.equal(
      (await docker(['inspect', '--format', '{{.State.ExitCode}}', AGENT])).trim(),
      '0',
      'the agent exits 0',
    );
    await timed('stop', () => docker(['stop', '--time', '30', COORDINATOR], { timeoutMs: 60_000 }));
    const exit = (
      await docker(['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', COORDINATOR])
    ).trim();
    assert.equal(exit, '0 false', 'docker stop (SIGTERM) ends the coordinator with exit code 0');
    const logs = await docker(['logs', '--tail', '3', COORDINATOR]);
    assert.match(logs, /"msg":"exiting","code":0/, 'its last log line says it is exiting with 0');
  });
});
