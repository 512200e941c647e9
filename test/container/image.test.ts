/**
 * The coordinator image for real (`npm run test:container`, not part of `npm test`): packages/coordinator/Dockerfile
 * is built by a Docker daemon (Debian's docker.io, started here when none runs) with BuildKit on a local Node base
 * image (no container registry is reachable: scripts/container-base-image.sh makes one with debootstrap and the npm
 * registry's Node and caches it by Node version, unless SHOAL_NODE_IMAGE names an image to use, e.g. the public
 * `node:20.19-bookworm-slim`). The build context is small and the build offline (`--network none`): the
 * Dockerfile's APP=context mode copies app/ as scripts/container-context.sh lays it out from this checkout's build.
 * The image then runs with a mounted config on the host's network (the daemon runs without a bridge), turns
 * `healthy` through its own HEALTHCHECK, runs as the non-root `node` user, takes the reports of a real
 * @shoal/agent process on the host at its gRPC port, and exits 0 on `docker stop` within its grace. Skips, saying
 * why, where no Docker daemon can be had. Then examples/docker-compose.local.yml runs with Debian's docker-compose:
 * the coordinator image plus docker-compose scales `web` 1 → 3 under load through its command actuator, and every
 * container exits 0 on `docker-compose stop` (skipped, saying why, without docker-compose). Leaves no daemon,
 * container, image or process. Prints each phase's seconds.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, freePort, waitFor } from '../kit/index.js';
import { DOCKER_CLI, startDocker, type DockerDaemon } from './docker.js';

const exec = promisify(execFile);
const TOKEN = 'web-container-token-0123456789';
const READ_TOKEN = 'read-container-token-0123456789';
const NODE_MAJOR = '20';
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const IMAGE = `shoal-coordinator:test-${suffix}`;
const COORDINATOR = `shoal-coordinator-test-${suffix}`;
const STOP_GRACE_S = 30;
const COMPOSE_IMAGE = `shoal-coordinator-compose:test-${suffix}`;
const PROJECT = `shoal-test-${suffix}`.replace(/[^a-z0-9-]/g, '');
const COMPOSE_FILE = 'examples/docker-compose.local.yml';
const compose = ['/usr/bin/docker-compose', '/usr/local/bin/docker-compose'].find((path) => existsSync(path));

describe('coordinator container image (Docker)', function () {
  this.timeout(1_800_000);
  let daemon: DockerDaemon | undefined;
  let dir: string | undefined;
  let agent: ChildProcess | undefined;
  let baseImage = process.env.SHOAL_NODE_IMAGE ?? '';
  const builtBase = !baseImage;
  const took: Record<string, number> = {};
  let built = false;
  let composeEnv: NodeJS.ProcessEnv | undefined;
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
      baseImage = `shoal-local/node:${NODE_MAJOR}-bookworm-slim-${suffix}`;
      const out = await timed('base image', () =>
        exec(join(ROOT, 'scripts/container-base-image.sh'), [baseImage, NODE_MAJOR], {
          env: { ...daemon!.env, DOCKER: DOCKER_CLI },
          timeout: 1_200_000,
          maxBuffer: 16 * 1024 * 1024,
        }),
      );
      console.log(`      ${out.stdout.trim().split('\n').join('\n      ')}`);
    }
    await timed('context', () =>
      exec(join(ROOT, 'scripts/container-context.sh'), [join(dir!, 'context')], { timeout: 600_000 }),
    );
  });

  after(async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
    if (daemon) {
      await timed('cleanup', async () => {
        await daemon!.docker(['rm', '--force', '--volumes', COORDINATOR]).catch(() => {});
        if (composeEnv && compose) {
          await exec(compose, ['-f', COMPOSE_FILE, 'down', '--timeout', '5'], { cwd: ROOT, env: composeEnv }).catch(
            () => {},
          );
        }
        if (!daemon!.owned) {
          // A daemon of the machine's: remove what this test made. Ours goes away whole with its data root.
          await daemon!
            .docker(['image', 'rm', '--force', IMAGE, COMPOSE_IMAGE, ...(builtBase && baseImage ? [baseImage] : [])])
            .catch(() => {});
          await daemon!.docker(['image', 'prune', '--force']).catch(() => {});
        }
        await daemon!.close();
        if (dir) await rm(dir, { recursive: true, force: true });
      });
    }
    if (Object.keys(took).length) console.log(`      seconds: ${JSON.stringify(took)}`);
  });

  it('builds packages/coordinator/Dockerfile offline (BuildKit, APP=context) on the Node base image', async () => {
    await timed('build', () =>
      daemon!.docker(
        [
          'build',
          '--network',
          'none', // nothing is downloaded: app/ was laid out on the host
          '--build-arg',
          'APP=context',
          '--build-arg',
          `NODE_IMAGE=${baseImage}`,
          '--file',
          join(ROOT, 'packages/coordinator/Dockerfile'),
          '--tag',
          IMAGE,
          join(dir!, 'context'),
        ],
        { timeoutMs: 1_200_000, env: { DOCKER_BUILDKIT: '1' } },
      ),
    );
    const user = (await daemon!.docker(['image', 'inspect', '--format', '{{.Config.User}}', IMAGE])).trim();
    assert.equal(user, 'node');
    built = true;
  });

  it('runs with a mounted config: healthy, non-root, takes a host agent report, exits 0 on docker stop', async () => {
    assert.ok(built, 'the image was built (see the test above)');
    const docker = daemon!.docker;
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const config = join(dir!, 'shoal.yaml');
    await writeFile(
      config,
      `listen: { http: "127.0.0.1:${httpPort}", grpc: "127.0.0.1:${grpcPort}" }
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
    // The host's network (the daemon runs with --bridge=none, so no port can be published): the coordinator listens
    // on free loopback ports, and the image's own HEALTHCHECK finds its HTTP port through SHOAL_HEALTHCHECK_URL.
    await docker([
      'run',
      '--detach',
      '--name',
      COORDINATOR,
      '--network',
      'host',
      '--env',
      `SHOAL_HEALTHCHECK_URL=http://127.0.0.1:${httpPort}`,
      '--volume',
      `${config}:/etc/shoal/shoal.yaml:ro`,
      IMAGE,
    ]);
    const health = async () => (await docker(['inspect', '--format', '{{.State.Health.Status}}', COORDINATOR])).trim();
    await timed('healthy', () =>
      waitFor(async () => (await health()) === 'healthy' || ((await health()) === 'unhealthy' ? 'unhealthy' : false), {
        timeoutMs: 120_000,
        intervalMs: 250,
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

    // A real @shoal/agent (this checkout's build) in a process on the host reports over gRPC to the container.
    agent = spawn(process.execPath, [join(ROOT, 'test/container/fixtures/agent.mjs')], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        SHOAL_COORDINATOR_URL: `127.0.0.1:${grpcPort}`,
        SHOAL_COORDINATOR_TOKEN: TOKEN,
        PORT: String(await freePort()),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let agentLog = '';
    const keep = (chunk: Buffer) => (agentLog = (agentLog + chunk.toString()).slice(-2000));
    agent.stdout!.on('data', keep);
    agent.stderr!.on('data', keep);
    const statusCli = () =>
      exec(
        process.execPath,
        [
          join(ROOT, 'packages/coordinator/dist/cli.js'),
          'status',
          'web',
          '--json',
          '--url',
          `http://127.0.0.1:${httpPort}`,
        ],
        { env: { PATH: process.env.PATH ?? '', SHOAL_API_TOKEN: READ_TOKEN }, timeout: 30_000 },
      );
    const reported = await timed('agent report', () =>
      waitFor(
        async () => {
          const { stdout } = await statusCli();
          const web = (JSON.parse(stdout) as { services: Array<{ name: string; instances: number; ready: number }> })
            .services[0];
          return web?.instances === 1 && web.ready === 1 ? web : false;
        },
        {
          timeoutMs: 60_000,
          intervalMs: 500,
          retryErrors: true,
          what: () => `the agent's report (agent output: ${agentLog.trim()})`,
        },
      ),
    );
    assert.equal(reported.name, 'web', 'the status command counts the agent-reported, ready instance');

    // The agent drains and exits 0 on SIGTERM; then the coordinator stops cleanly on docker stop's SIGTERM.
    const agentExit = new Promise<number | null>((resolve) => agent!.once('exit', resolve));
    agent.kill('SIGTERM');
    assert.equal(await agentExit, 0, `the agent exits 0 (output: ${agentLog.trim()})`);
    await timed('stop', () =>
      docker(['stop', '--time', String(STOP_GRACE_S), COORDINATOR], { timeoutMs: (STOP_GRACE_S + 30) * 1000 }),
    );
    assert.ok(took.stop! < STOP_GRACE_S, `stopped within its ${STOP_GRACE_S} s grace, not killed (${took.stop} s)`);
    const exit = (
      await docker(['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', COORDINATOR])
    ).trim();
    assert.equal(exit, '0 false', 'docker stop (SIGTERM) ends the coordinator with exit code 0');
    // `docker logs` writes the container's stdout and stderr to its own two.
    const { stdout, stderr } = await exec(DOCKER_CLI, ['logs', '--tail', '3', COORDINATOR], { env: daemon!.env });
    const exiting = `${stdout}\n${stderr}`
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg?: string; code?: number })
      .find((entry) => entry.msg === 'exiting');
    assert.equal(exiting?.code, 0, `its last log lines say it exits with 0: ${stdout}${stderr}`);
  });

  it('runs examples/docker-compose.local.yml with docker-compose: the coordinator scales web 1 → 3 under load', async function () {
    assert.ok(built, 'the image was built (see the first test)');
    if (!compose) {
      console.log('      skipped: no docker-compose (apt-get install docker-compose)');
      this.skip();
    }
    const docker = daemon!.docker;
    // The coordinator image plus Debian's docker-compose (apt-get in the build: the one phase that needs Debian's
    // mirror; --network host, the daemon has no bridge).
    await timed('compose image', () =>
      docker(
        [
          'build',
          '--network',
          'host',
          '--build-arg',
          `COORDINATOR_IMAGE=${IMAGE}`,
          '--file',
          join(ROOT, 'examples/compose/coordinator-debian.Dockerfile'),
          '--tag',
          COMPOSE_IMAGE,
          join(ROOT, 'examples/compose'),
        ],
        { timeoutMs: 900_000, env: { DOCKER_BUILDKIT: '1' } },
      ),
    );
    // The example's own coordinator config, on free loopback ports, with a read token for the status command.
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const exampleConfig = await readFile(join(ROOT, 'examples/compose/shoal.local.yaml'), 'utf8');
    assert.match(exampleConfig, /http: 127\.0\.0\.1:8080\n\s+grpc: 127\.0\.0\.1:9090\n/);
    const config = join(dir!, 'shoal.local.yaml');
    await writeFile(
      config,
      `${exampleConfig
        .replace('127.0.0.1:8080', `127.0.0.1:${httpPort}`)
        .replace('127.0.0.1:9090', `127.0.0.1:${grpcPort}`)}api:\n  readToken: ${READ_TOKEN}\n`,
    );
    await chmod(config, 0o644);
    const host = daemon!.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
    assert.ok(host.startsWith('unix://'), `the daemon listens on a unix socket (DOCKER_HOST ${host})`);
    composeEnv = {
      PATH: process.env.PATH ?? '',
      DOCKER_HOST: host,
      PWD: ROOT,
      COMPOSE_PROJECT_NAME: PROJECT,
      SHOAL_NODE_IMAGE: baseImage,
      SHOAL_COORDINATOR_COMPOSE_IMAGE: COMPOSE_IMAGE,
      SHOAL_LOCAL_CONFIG: config,
      SHOAL_HTTP_PORT: String(httpPort),
      SHOAL_GRPC_PORT: String(grpcPort),
      DOCKER_SOCKET: host.slice('unix://'.length),
    };
    const run = (args: string[], timeout = 300_000) =>
      exec(compose!, ['-f', COMPOSE_FILE, ...args], { cwd: ROOT, env: composeEnv, timeout, maxBuffer: 16 << 20 });
    await timed('compose up', () => run(['up', '--detach']));

    const ps = async (service: string) =>
      (
        await docker([
          'ps',
          '--all',
          '--filter',
          `label=com.docker.compose.project=${PROJECT}`,
          '--filter',
          `label=com.docker.compose.service=${service}`,
          '--format',
          '{{.Names}} {{.State}}',
        ])
      )
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split(' ') as [string, string]);
    const [[web1]] = (await ps('web')) as [[string, string]];
    const port = await waitFor(
      async () => {
        const { stdout } = await exec(DOCKER_CLI, ['logs', web1], { env: daemon!.env });
        const started = /"msg":"web started","port":(\d+)/.exec(stdout);
        return started ? Number(started[1]) : false;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: `${web1} to start` },
    );
    const status = async () => {
      const { stdout } = await exec(
        process.execPath,
        [
          join(ROOT, 'packages/coordinator/dist/cli.js'),
          'status',
          'web',
          '--json',
          '--url',
          `http://127.0.0.1:${httpPort}`,
        ],
        { env: { PATH: process.env.PATH ?? '', SHOAL_API_TOKEN: READ_TOKEN }, timeout: 30_000 },
      );
      return (JSON.parse(stdout) as { services: Array<{ instances: number; ready: number; replicas: number }> })
        .services[0]!;
    };
    await waitFor(async () => (await status()).ready === 1, {
      timeoutMs: 60_000,
      intervalMs: 500,
      retryErrors: true,
      what: 'web-1 to report',
    });

    // 12 requests held open at a time on the one replica: in-flight 12 over a target of 4 each → 3 replicas.
    const load = new AbortController();
    const loops = Array.from({ length: 12 }, async () => {
      while (!load.signal.aborted) {
        await fetch(`http://127.0.0.1:${port}/slow?ms=2000`, { signal: load.signal })
          .then((res) => res.text())
          .catch(() => {});
      }
    });
    try {
      await timed('compose scale', () =>
        waitFor(
          async () => {
            const web = await ps('web');
            const s = await status();
            return web.length === 3 && web.every(([, state]) => state === 'running') && s.ready === 3;
          },
          {
            timeoutMs: 120_000,
            intervalMs: 1000,
            retryErrors: true,
            what: async () => `web scaled to 3 (containers: ${JSON.stringify(await ps('web').catch(String))})`,
          },
        ),
      );
    } finally {
      load.abort();
      await Promise.all(loops);
    }
    const { stdout: logs } = await exec(DOCKER_CLI, ['logs', `${PROJECT}_coordinator_1`], { env: daemon!.env });
    assert.match(logs, /"component":"command-actuator","service":"web","replicas":3,.*"msg":"command ran"/);

    await timed('compose stop', () => run(['stop', '--timeout', String(STOP_GRACE_S)]));
    const all = [...(await ps('coordinator')), ...(await ps('web'))];
    assert.equal(all.length, 4);
    for (const [name] of all) {
      const exit = (await docker(['inspect', '--format', '{{.State.ExitCode}}', name])).trim();
      assert.equal(exit, '0', `${name} exits 0 on compose stop (SIGTERM)`);
    }
    await run(['down']);
  });
});
