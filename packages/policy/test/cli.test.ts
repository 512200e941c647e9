import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { parseTraceCsv, simulate } from '@shoal/policy';
import { YAML_ALIAS_BOMB } from '../../../test/kit/index.js';

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

  it('compares with the HPA default (--compare hpa): the same model and seed, a ratio column, both in the JSON', async () => {
    const args = ['simulate', '--trace', join(dir, 'trace.csv'), '--policy', join(dir, 'policy.yaml'), '--seed', '7'];
    const alone = await run([...args, '--json']);
    const text = await run([...args, '--compare', 'hpa']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /policy\.yaml \(shoal\)\s+HPA default \(CPU 70 %\)\s+ratio/);
    const rs = /^replica-seconds\s+(\d+) .*?\s(\d+) \(mean.*\s([\d.]+)×$/m.exec(text.stdout);
    assert.ok(rs, text.stdout);
    const [, mine, hpa, shown] = rs;
    // The compared run does not change the first one: same model, same seed.
    assert.equal(
      Number(mine),
      (JSON.parse(alone.stdout) as { summary: { replicaSeconds: number } }).summary.replicaSeconds,
    );
    assert.equal(shown, (Number(mine) / Number(hpa)).toFixed(3));
    const json = await run([...args, '--compare', 'hpa', '--json']);
    const out = JSON.parse(json.stdout) as {
      summary: { replicaSeconds: number };
      compare: { label: string; summary: { replicaSeconds: number }; events: unknown[] };
    };
    assert.equal(out.compare.label, 'HPA default (CPU 70 %)');
    assert.equal(out.compare.summary.replicaSeconds, Number(hpa));
    // A faster sync for the compared policy is a different run.
    const fast = await run([...args, '--compare', 'hpa', '--compare-sync-period-ms', '5000', '--json']);
    const fastOut = JSON.parse(fast.stdout) as { compare: { summary: { replicaSeconds: number } } };
    assert.notEqual(fastOut.compare.summary.replicaSeconds, out.compare.summary.replicaSeconds);
  });

  it('compares with a second policy file and draws both in the SVG', async () => {
    const svg = join(dir, 'both.svg');
    const r = await run([
      'simulate',
      '--trace',
      join(dir, 'trace.csv'),
      '--policy',
      join(dir, 'policy.yaml'),
      '--compare',
      join(dir, 'policy.json'),
      '--svg',
      svg,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /policy\.yaml \(shoal\)\s+policy\.json \(hpa\)\s+ratio/);
    const chart = readFileSync(svg, 'utf8');
    assert.match(chart, /policy\.yaml \(shoal\)/);
    assert.match(chart, /policy\.json \(hpa\)/);
  });

  it("reproduces the README's --compare example figures (skipped where shared/traces is absent)", async function () {
    const trace = new URL('../../../../shared/traces/AzureLLMInferenceTrace_conv_per_second.csv', import.meta.url);
    if (!existsSync(trace)) return this.skip();
    this.timeout(30_000);
    const readme = readFileSync(join(dirname(require.resolve('@shoal/policy/package.json')), 'README.md'), 'utf8');
    const policy = /cat > policy\.json <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(readme)?.[1];
    const figures =
      /# replica-seconds (\d+) vs (\d+) \([\d.]+×\), SLO-violation seconds (\d+) vs (\d+) \([\d.]+×\), scale events (\d+) vs (\d+)/.exec(
        readme,
      );
    assert.ok(policy && figures, 'the README example or its figures line moved');
    writeFileSync(join(dir, 'readme-policy.json'), policy);
    const r = await run([
      'simulate',
      '--trace',
      fileURLToPath(trace),
      '--policy',
      join(dir, 'readme-policy.json'),
      '--peak-rps',
      '1120',
      '--seed',
      '42',
      '--compare',
      'hpa',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      summary: { replicaSeconds: number; sloViolationSeconds: number; scaleEvents: number };
      compare: { summary: { replicaSeconds: number; sloViolationSeconds: number; scaleEvents: number } };
    };
    const [, rsA, rsB, sloA, sloB, evA, evB] = figures.map(Number);
    assert.deepEqual(
      [out.summary.replicaSeconds, out.compare.summary.replicaSeconds],
      [rsA, rsB],
      'replica-seconds in the README are stale',
    );
    assert.deepEqual([out.summary.sloViolationSeconds, out.compare.summary.sloViolationSeconds], [sloA, sloB]);
    assert.deepEqual([out.summary.scaleEvents, out.compare.summary.scaleEvents], [evA, evB]);
  });

  it('sets the cold start spread, the parallel-start limit and the drain time from the command line', async function () {
    this.timeout(60_000); // five CLI processes at once on a loaded machine
    // Low, a 200 s surge, low again: the scale-up starts replicas, the scale-down (after the 400 s hold) drains them.
    const rows = ['second,requests'];
    for (let t = 0; t < 1_200; t++) rows.push(`${t},${t >= 100 && t < 300 ? 900 : 60}`);
    const csv = rows.join('\n');
    writeFileSync(join(dir, 'up-down.csv'), csv);
    const trace = parseTraceCsv(csv, { name: 'up-down' });
    const policy = { maxReplicas: 40, targets: [{ metric: 'rps' as const, value: 56 }] };
    const base = ['simulate', '--trace', join(dir, 'up-down.csv'), '--policy', join(dir, 'policy.yaml'), '--json'];
    const summaryOf = async (flags: string[]): Promise<unknown> => {
      const r = await run([...base, ...flags]);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { summary: unknown }).summary;
    };
    const cases = [
      [['--cold-start-cv', '0'], { coldStartCv: 0 }],
      [['--max-parallel-starts', '2'], { maxParallelStarts: 2 }],
      [['--drain-ms', '60000'], { drainMs: 60_000 }],
    ] as const;
    // The CLI runs at once (each is a process start on a possibly loaded machine).
    const [plain, summaries, bad, cv, slots] = await Promise.all([
      summaryOf([]),
      Promise.all(cases.map(([flags]) => summaryOf([...flags]))),
      run([...base, '--drain-ms', '1.5']),
      run([...base, '--cold-start-cv=-1']),
      run([...base, '--max-parallel-starts', 'many']),
    ]);
    assert.deepEqual(plain, simulate({ trace, policy, model: { syncPeriodMs: 5_000 } }).summary);
    for (const [k, [flags, model]] of cases.entries()) {
      // Exactly what the library gives with that model field, and not what it gives without it.
      const summary = summaries[k];
      assert.deepEqual(
        summary,
        simulate({ trace, policy, model: { syncPeriodMs: 5_000, ...model } }).summary,
        flags[0],
      );
      assert.notDeepEqual(summary, plain, `${flags[0]} changed nothing`);
    }
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^shoal: --drain-ms 1\.5: SHOAL_ERR_INVALID_ARGUMENT: model\.drainMs must be an integer/);
    assert.equal(cv.code, 2);
    assert.match(cv.stderr, /^shoal: --cold-start-cv -1: .*model\.coldStartCv/);
    assert.equal(slots.code, 2);
    assert.match(slots.stderr, /--max-parallel-starts must be a number, got "many"/);
  });

  it('runs several seeds with --seeds and prints medians with their range, for both policies and their ratio', async () => {
    const args = ['simulate', '--trace', join(dir, 'trace.csv'), '--policy', join(dir, 'policy.yaml'), '--seed', '5'];
    const json = await run([...args, '--seeds', '3', '--compare', 'hpa', '--json']);
    assert.equal(json.code, 0, json.stderr);
    type Stats = { median: number; min: number; max: number };
    const out = JSON.parse(json.stdout) as {
      seeds: number[];
      runs: Array<{ seed: number; summary: { replicaSeconds: number }; compare: { replicaSeconds: number } }>;
      medians: { replicaSeconds: { policy: Stats; compare: Stats; ratio: Stats } };
    };
    assert.deepEqual(out.seeds, [5, 6, 7]);
    const mine = out.runs.map((r) => r.summary.replicaSeconds).sort((a, b) => a - b);
    assert.deepEqual(out.medians.replicaSeconds.policy, { median: mine[1], min: mine[0], max: mine[2] });
    const ratios = out.runs.map((r) => r.summary.replicaSeconds / r.compare.replicaSeconds).sort((a, b) => a - b);
    assert.equal(out.medians.replicaSeconds.ratio.median, ratios[1]);
    // Each seed is the same run as asked for alone.
    const seven = await run([...args.slice(0, -1), '7', '--json']);
    assert.equal(
      (JSON.parse(seven.stdout) as { summary: { replicaSeconds: number } }).summary.replicaSeconds,
      out.runs[2]!.summary.replicaSeconds,
    );
    const text = await run([...args, '--seeds', '3']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /seeds 5–7: median \(min–max\)/);
    assert.match(text.stdout, /^replica-seconds\s+\d+ \(\d+–\d+\)$/m);
    const bad = await run([...args, '--seeds', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--seeds must be an integer between 1 and 100, got "0"/);
  });

  it('exits quietly (0) when its reader has gone (a closed pipe, as with | head)', async () => {
    const child = spawn(process.execPath, [
      cli,
      'simulate',
      '--trace',
      join(dir, 'trace.csv'),
      '--policy',
      join(dir, 'policy.json'),
    ]);
    // Closed before the simulation ends, so the first write meets EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
  });

  it('reads YAML with the coordinator config loader: an alias bomb and a syntax error are refused (exit 2), the text never quoted', async () => {
    writeFileSync(join(dir, 'bomb.yaml'), YAML_ALIAS_BOMB);
    const bomb = await run(['simulate', '--trace', join(dir, 'trace.csv'), '--policy', join(dir, 'bomb.yaml')]);
    assert.equal(bomb.code, 2);
    assert.match(bomb.stderr, /^shoal: .*bomb\.yaml is not valid YAML: Excessive alias count/);
    writeFileSync(join(dir, 'broken.yaml'), 'policy:\n  maxReplicas: [\n');
    const broken = await run(['simulate', '--trace', join(dir, 'trace.csv'), '--policy', join(dir, 'broken.yaml')]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /^shoal: .*broken\.yaml is not valid YAML: .* at line \d+, column \d+\n$/);
    assert.doesNotMatch(broken.stderr, /maxReplicas/);
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
    const lonely = await run([
      'simulate',
      '--trace',
      join(dir, 'trace.csv'),
      '--policy',
      join(dir, 'policy.json'),
      '--compare-sync-period-ms',
      '5000',
    ]);
    assert.equal(lonely.code, 2);
    assert.match(lonely.stderr, /--compare-sync-period-ms needs --compare/);
    const badCompare = await run([
      'simulate',
      '--trace',
      join(dir, 'trace.csv'),
      '--policy',
      join(dir, 'policy.json'),
      '--compare',
      join(dir, 'bad.json'),
    ]);
    assert.equal(badCompare.code, 2);
    assert.match(badCompare.stderr, /maxReplicas must be an integer/);
    const absent = await run([
      'simulate',
      '--trace',
      join(dir, 'trace.csv'),
      '--policy',
      join(dir, 'policy.json'),
      '--compare',
      join(dir, 'nope.json'),
    ]);
    assert.equal(absent.code, 1);
    assert.match(absent.stderr, /^shoal: cannot read .*nope\.json: ENOENT/);
    assert.doesNotMatch(absent.stderr, /\n\s+at /, 'no stack trace');
  });
});
