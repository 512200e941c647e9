/**
 * What a Node team gets from npm: every public package packed with `npm pack`, installed from the tarballs into a
 * project outside this repository (from the local npm cache where it can, the registry otherwise), then used the ways users use it: ESM
 * import, CommonJS require (Node >= 20.19 loads ES modules with require()), a strict `tsc` with
 * `skipLibCheck: false` under `node16` and `bundler` resolution, and each CLI's `--help` and `--version`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packWorkspaces, pinnedVersions, publicPackages, ROOT } from '../kit/index.js';

const run = promisify(execFile);
const CLIS = ['shoal', 'shoal-coordinator', 'shoal-consul-dev'];

describe('the packed packages in a consumer project', function () {
  this.timeout(300_000);
  const packages = publicPackages();
  let app: string;

  before(async () => {
    app = await mkdtemp(join(tmpdir(), 'shoal-consumer-'));
    const tarballs = await packWorkspaces(packages, app);
    assert.equal(tarballs.length, packages.length, 'one tarball per public package');
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module', overrides: pinnedVersions(packages) }),
    );
    await run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', ...tarballs.map((t) => `./${t}`)],
      { cwd: app, maxBuffer: 32 * 1024 * 1024 },
    );
  });

  after(async () => {
    if (app) await rm(app, { recursive: true, force: true });
  });

  it('packs only the public packages, each with its LICENSE, README, bin shims and the sources its maps name', async () => {
    assert.ok(!packages.some((p) => p.startsWith('@shoal/example') || p.includes('demo')));
    for (const name of packages) {
      const dir = join(app, 'node_modules', name);
      for (const file of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']) {
        assert.ok(existsSync(join(dir, file)), `${name} ships ${file}`);
      }
      const map = JSON.parse(readFileSync(join(dir, 'dist/index.js.map'), 'utf8')) as { sources: string[] };
      for (const source of map.sources) assert.ok(existsSync(join(dir, 'dist', source)), `${name}: ${source}`);
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { repository?: { url: string } };
      assert.doesNotMatch(pkg.repository?.url ?? '', /example\.invalid/, `${name} has no placeholder repository`);
    }
  });

  it('imports every package as an ES module and requires it from CommonJS', async () => {
    const esm = packages.map((p, i) => `import * as m${i} from '${p}'; n += Object.keys(m${i}).length;`).join('\n');
    const { stdout } = await run(
      process.execPath,
      ['--input-type=module', '-e', `let n = 0;\n${esm}\nconsole.log(n);`],
      {
        cwd: app,
      },
    );
    assert.ok(Number(stdout) > packages.length, 'exports were loaded');
    const cjs = packages.map((p) => `n += Object.keys(require('${p}')).length;`).join('\n');
    const { stdout: out } = await run(
      process.execPath,
      ['--no-warnings', '--input-type=commonjs', '-e', `let n = 0;\n${cjs}\nconsole.log(n);`],
      { cwd: app },
    );
    assert.equal(Number(out), Number(stdout), 'require() sees the same exports as import');
  });

  for (const resolution of ['node16', 'bundler'] as const) {
    it(`type-checks a consumer with strict tsc, skipLibCheck false, ${resolution} resolution`, async () => {
      const dir = join(app, `tsc-${resolution}`);
      await run('mkdir', ['-p', dir]);
      const source = packages.map((p, i) => `import * as m${i} from '${p}';\nexport const k${i} = Object.keys(m${i});`);
      await writeFile(join(dir, 'index.ts'), source.join('\n') + '\n');
      await writeFile(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            skipLibCheck: false,
            noEmit: true,
            target: 'ES2022',
            types: ['node'],
            // The consumer's own @types/node: this repository's (the same version a user of Node 20 has).
            typeRoots: [join(ROOT, 'node_modules/@types')],
            ...(resolution === 'node16'
              ? { module: 'node16', moduleResolution: 'node16' }
              : { module: 'esnext', moduleResolution: 'bundler' }),
          },
          files: ['index.ts'],
        }),
      );
      const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
      await run(process.execPath, [tsc, '-p', dir], { cwd: app, maxBuffer: 16 * 1024 * 1024 }).catch(
        (e: { stdout: string }) => assert.fail(`tsc found errors in the published types:\n${e.stdout}`),
      );
    });
  }

  it('links every CLI, which answers --help and --version', async () => {
    for (const cli of CLIS) {
      const bin = join(app, 'node_modules/.bin', cli);
      assert.ok(existsSync(bin), `${cli} is linked in node_modules/.bin`);
      const help = await run(bin, ['--help'], { cwd: app });
      assert.match(help.stdout, /usage|Usage/, `${cli} --help prints a usage`);
      const version = await run(bin, ['--version'], { cwd: app });
      assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+/, `${cli} --version prints a version`);
    }
  });

  it('links every CLI in this repository right after npm ci (before any build)', async () => {
    for (const cli of CLIS) {
      assert.ok(existsSync(join(ROOT, 'node_modules/.bin', cli)), `${cli} is linked in the repository`);
    }
    const entries = await readdir(join(ROOT, 'node_modules/.bin'));
    assert.ok(CLIS.every((c) => entries.includes(c)));
  });
});
