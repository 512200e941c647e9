import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findFreePort } from '@shoal/coordinator/internal';
import { pinnedVersions } from '../kit/index.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCKERFILE = join(ROOT, 'packages/coordinator/Dockerfile');

/** The Shoal packages the coordinator needs at run time: itself and its @shoal dependencies, transitively. */
function shoalClosure(name: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  const pkg = JSON.parse(
    readFileSync(join(ROOT, 'packages', name.slice('@shoal/'.length), 'package.json'), 'utf8'),
  ) as {
    dependencies?: Record<string, string>;
  };
  for (const dep of Object.keys(pkg.dependencies ?? {})) if (dep.startsWith('@shoal/')) shoalClosure(dep, seen);
  return seen;
}
const PACKAGES = [...shoalClosure('@shoal/coordinator')].sort();

/** The exec-form arrays of an instruction (`ENTRYPOINT ["node", ...]`) in the runtime stage. */
function instruction(text: string, name: string): string[] {
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  const line = runtime.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `Dockerfile runtime stage has ${name}`);
  const json = line.slice(line.indexOf('['));
  return JSON.parse(json) as string[];
}

describe('coordinator container: npm pack + production install + the image entry command', function () {
  this.timeout(240_000);
  let dir: string;
  let child: ChildProcess | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-image-'));
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('has a multi-stage, production-only, non-root Dockerfile with a HEALTHCHECK and SIGTERM', () => {
    const text = readFileSync(DOCKERFILE, 'utf8');
    const packed = [...text.matchAll(/-w (@shoal\/[a-z-]+)/g)].map((m) => m[1]).sort();
    assert.deepEqual(packed, PACKAGES, 'the image packs exactly the Shoal packages the coordinator depends on');
    assert.ok((text.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage');
    assert.match(text, /npm install --omit=dev/);
    assert.match(text, /^USER node$/m);
    assert.match(text, /^STOPSIGNAL SIGTERM$/m);
    assert.match(text, /^HEALTHCHECK /m);
  });

  it('installs from npm pack with production dependencies only and runs exactly the image entry command', async () => {
    const text = readFileSync(DOCKERFILE, 'utf8');
    const entry = [...instruction(text, 'ENTRYPOINT'), ...instruction(text, 'CMD')];
    const health = instruction(text, 'HEALTHCHECK');
    // Stand-ins for the image's filesystem: /app (WORKDIR) and /etc/shoal (the mounted config).
    const app = join(dir, 'app');
    const etc = join(dir, 'etc/shoal');
    await mkdir(app, { recursive: true });
    await mkdir(etc, { recursive: true });
    await run('npm', ['pack', ...PACKAGES.flatMap((p) => ['-w', p]), '--pack-destination', app, '--silent'], {
      cwd: ROOT,
    });
    const tarballs = (await readdir(app)).filter((f) => f.endsWith('.tgz'));
    assert.equal(tarballs.length, PACKAGES.length);
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'shoal-coordinator-image',
        private: true,
        overrides: pinnedVersions(['@shoal/coordinator']),
      }),
    );
    await run(
      'npm',
      [
        'install',
        '--omit=dev',
        '--offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        ...tarballs.map((t) => `./${t}`),
      ],
      {
        cwd: app,
        maxBuffer: 10 * 1024 * 1024,
      },
    );
    for (const dev of ['typescript', 'mocha', 'sinon', 'tsx', 'eslint']) {
      assert.ok(!existsSync(join(app, 'node_modules', dev)), `${dev} is not installed`);
    }
    const httpPort = await findFreePort();
    await writeFile(
      join(etc, 'shoal.yaml'),
      `listen: { http: "127.0.0.1:${httpPort}", grpc: "127.0.0.1:0" }
services:
  - name: web
    token: web-token-0123456789abcdef
    policy: { targets: [{ metric: inFlight, value: 10 }] }
    actuator: { type: command, command: "true" }
`,
    );
    const rewrite = (arg: string) =>
      arg
        .replace(/^\/app\//, `${app}/`)
        .replace(/^\/etc\/shoal\//, `${etc}/`)
        .replace('127.0.0.1:8080', `127.0.0.1:${httpPort}`);
    const [cmd, ...args] = entry.map(rewrite);
    assert.equal(cmd, 'node');
    child = spawn(process.execPath, args, {
      cwd: app,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' },
    });
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      lines.on('line', (l) => {
        if (l.includes('"listening"')) resolve();
      });
      child!.once('exit', (code) => reject(new Error(`entry command exited with ${code}`)));
    });
    const [hcmd, ...hargs] = health.map(rewrite);
    assert.equal(hcmd, 'node');
    // The image's HEALTHCHECK takes its URL from SHOAL_HEALTHCHECK_URL (default http://127.0.0.1:8080).
    const probe = await run(process.execPath, hargs, {
      cwd: app,
      env: { ...process.env, SHOAL_HEALTHCHECK_URL: `http://127.0.0.1:${httpPort}` },
    }).then(
      () => 0,
      (e: { code: number }) => e.code,
    );
    assert.equal(probe, 0, 'HEALTHCHECK passes');
    const exited = new Promise<number | null>((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, 'SIGTERM stops it cleanly');
  });
});
