import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const cli = join(dirname(require.resolve('@shoal/policy/package.json')), 'dist', 'cli.js');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('shoal CLI', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-cli-'));
    const rows = ['second,requests'];
    for (let t = 0; t < 600; t++) rows.push(`${t},${t < 200 ? 200 : 900}`);
    writeFileSync(join(dir, 'trace.csv'), rows.join('\n'));
    writeFileSync(
      join(dir, 'policy.yaml'),
      [
        'policy:',
        '  maxReplicas: 40',
        '  targets:',
        '    - metric: rps',
        '      value: 56',
        'model:',
        '  syncPeriodMs: 5000',
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'policy.json'), JSON.stringify({ preset: 'hpa', maxReplicas: 40 }));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('simulates a YAML policy, prints a summary and writes the SVG', async () => {
    const svg = join(dir, 'out.svg');
    const r = await run([
      'simulate',
      '--trace',
      join(dir, 'trace.csv'),
      '--policy',
      join(dir, 'policy.yaml'),
      '--svg',
      svg,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /replica-seconds\s+\d+/);
    assert.match(r.stdout, /SLO-violation seconds\s+\d+/);
    assert.match(r.stdout, /scale events\s+\d+ \(\d+ up, \d+ down\)/);
    assert.ok(existsSync(svg));
    assert.match(readFileSync(svg, 'utf8'), /^<svg/);
  });

  it('prints JSON with --json for a JSON policy', async () => {
    const r = await run([
      'simulate',
      '--trace',
      join(dir, 'trace.csv'),
      '--policy',
      join(dir, 'policy.json'),
      '--json',
      '--seed',
      '3',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { summary: { durationS: number; scaleEvents: number }; events: unknown[] };
    assert.equal(out.summary.durationS, 600);
    assert.equal(out.events.length, out.summary.scaleEvents);
  });

  it('exits 2 with a message on bad usage or an invalid policy', async () => {
    const missing = await run(['simulate', '--policy', join(dir, 'policy.json')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--trace is required/);
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ maxReplicas: -1 }));
    const bad = await run(['simulate', '--trace', join(dir, 'trace.csv'), '--policy', join(dir, 'bad.json')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /SHOAL_ERR_INVALID_ARGUMENT: maxReplicas must be an integer between 1 and 100000, got -1/);
    const unknown = await run(['deploy']);
    assert.equal(unknown.code, 2);
  });
});
