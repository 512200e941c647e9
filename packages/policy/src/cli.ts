#!/usr/bin/env node
/**
 * shoal: command-line tools for @shoal/policy.
 *   shoal simulate --trace FILE --policy FILE [--svg OUT] [--json] [--compare FILE|hpa] [options]
 * Reads a trace CSV and a policy (JSON or YAML), replays the trace through the model, prints a summary
 * (or JSON with --json) and optionally writes an SVG chart.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parseArgs } from 'node:util';
import { isShoalError } from '@shoal/core';
import { parseYamlDocument } from './yaml.js';
import type { Policy, PolicyInput } from './policy.js';
import { resolvePolicy } from './policy.js';
import { metricsServerModel, resolveModel, simulate } from './simulator/simulate.js';
import type { SimulationModelInput, SimulationResult } from './simulator/simulate.js';
import { renderSimulationSvg } from './simulator/svg.js';
import { figureRatio, formatRatio } from './simulator/accounting.js';
import { parseTraceCsv } from './simulator/trace.js';
import type { Trace } from './simulator/trace.js';

const USAGE = `usage: shoal simulate --trace FILE --policy FILE [options]

Replays a request-rate trace (CSV: time,count) through a queueing model of replicas scaled by the policy.

  --trace FILE          trace CSV (header row, then time,count rows)
  --policy FILE         policy as JSON or YAML; either the policy itself, or { policy, model }
  --svg OUT             write an SVG chart (load, capacity, replicas, latency) to OUT
  --json                print the result summary and scale events as JSON
  --compare FILE|hpa    also run a second policy on the same trace, model and seed, and print both with
                        ratios; "hpa" is the HPA default (CPU 70 %, Kubernetes behavior), min/max copied,
                        fed as metrics-server feeds it (a 15 s CPU rate, 0-15 s old).
                        ratio = this policy's figure / the compared one's: 1.6× replica-seconds means this
                        policy ran 1.6 times the replicas (60 % more); 0.2× SLO-violation seconds means it
                        violated the SLO a fifth as long. Both 0 prints "1× (both 0)"; a figure over a
                        compared 0 prints "∞ (compared 0)"; medians over --seeds include both
  --compare-sync-period-ms N
                        how often the compared policy decides          default 15000 for "hpa", else --sync-period-ms
  --time-scale N        multiply trace durations by N (0.1 = 10x faster)       default 1
  --rate-scale N        multiply trace rates by N                             default 1
  --peak-rps N          scale rates so the peak is N req/s (overrides --rate-scale)
  --from S              skip the first S seconds of the trace                 default 0
  --duration S          replay at most S seconds of the trace                 default all
  --gaps error|zero     a missing time bucket in the trace: refuse it, or fill it with 0 requests
                        (the count filled is printed)                          default error
  --seed N              PRNG seed                                             default 1
  --seeds N             run N seeds (--seed, --seed + 1, ...) and print medians with their range; the SVG
                        draws the first seed                                  default 1
  --sync-period-ms N    how often the policy decides                          default 15000
  --cold-start-ms N     replica start-up time (mean)                          default 30000
  --cold-start-cv N     spread of start-up times: each replica draws a lognormal with this coefficient
                        of variation (0: every replica takes --cold-start-ms)  default 0.3
  --max-parallel-starts N
                        at most N replicas start at once; the next waits for a slot (0: no limit)
                                                                              default 0
  --drain-ms N          a replica removed by a scale-down still runs (and is billed) this long
                                                                              default 5000
  --slo-ms N            p95 latency SLO                                       default 250
  -h, --help            show this help
`;

function fail(message: string, code = 2): never {
  process.stderr.write(`shoal: ${message}\n`);
  process.exit(code);
}

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) fail(`--${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

function readStructured(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return fail(`cannot read ${file}: ${(err as Error).message}`, 1);
  }
  const ext = extname(file).toLowerCase();
  try {
    return ext === '.json' ? JSON.parse(text) : parseYamlDocument(text, file);
  } catch (err) {
    // A YAML error already says `<file> is not valid YAML: <what> at line L, column C`, quoting none of the text.
    return fail(isShoalError(err) ? (err as Error).message : `cannot parse ${file}: ${(err as Error).message}`);
  }
}

/** A policy file: the policy itself, or `{ policy, model }`. */
function readPolicyFile(file: string): { policyInput: PolicyInput; fileModel: SimulationModelInput } {
  const doc = readStructured(file);
  if (typeof doc !== 'object' || doc === null) fail(`${file} must hold an object`);
  const wrapped = 'policy' in (doc as Record<string, unknown>);
  return {
    policyInput: (wrapped ? (doc as { policy: unknown }).policy : doc) as PolicyInput,
    fileModel: (wrapped ? (doc as { model?: SimulationModelInput }).model : undefined) ?? {},
  };
}

function summaryRows(result: SimulationResult): Array<[string, string]> {
  const s = result.summary;
  return [
    ['replica-seconds', `${s.replicaSeconds} (mean ${s.meanReplicas.toFixed(1)}, peak ${s.peakReplicas})`],
    ['SLO-violation seconds', `${s.sloViolationSeconds} (p95 > ${result.model.sloP95Ms} ms or drops)`],
    ['dropped requests', String(s.droppedRequests)],
    ['scale events', `${s.scaleEvents} (${s.scaleUps} up, ${s.scaleDowns} down)`],
    ['reversals', `${s.reversals} (${s.flaps} within 300 s)`],
    [
      'time to adequate capacity',
      s.surges === 0
        ? 'no surge outran capacity'
        : `${s.surges} surges: mean ${s.timeToAdequateS.mean.toFixed(1)} s, p95 ${s.timeToAdequateS.p95} s, max ${s.timeToAdequateS.max} s`,
    ],
    ['mean utilization', `${(s.meanUtilization * 100).toFixed(1)} %`],
  ];
}

interface SeedRun {
  seed: number;
  summary: SimulationResult['summary'];
  compare?: SimulationResult['summary'];
}

const SEED_FIGURES = [
  ['replica-seconds', 'replicaSeconds'],
  ['SLO-violation seconds', 'sloViolationSeconds'],
  ['dropped requests', 'droppedRequests'],
  ['scale events', 'scaleEvents'],
  ['reversals', 'reversals'],
] as const;

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const m = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[m] as number) : ((sorted[m - 1] as number) + (sorted[m] as number)) / 2;
}

/** Medians (and ranges) over seeds; with a compared policy, also the median of the per-seed ratios. */
function printSeeds(trace: string, runs: readonly SeedRun[], compareLabel: string | undefined, json: boolean): void {
  const stats = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
  const figures: Record<string, unknown> = {};
  for (const [, key] of SEED_FIGURES) {
    const entry: Record<string, unknown> = { policy: stats(runs.map((r) => r.summary[key])) };
    if (compareLabel !== undefined) {
      entry.compare = stats(runs.map((r) => (r.compare as SimulationResult['summary'])[key]));
      // figureRatio's semantics: both 0 counts as 1, a figure over a compared 0 as ∞ (kept, not dropped).
      const ratios = runs.map((r) => figureRatio(r.summary[key], (r.compare as SimulationResult['summary'])[key]));
      entry.bothZeroSeeds = ratios.filter((x) => x.bothZero).length;
      const values = ratios.map((x) => x.value);
      entry.ratio = stats(values);
    }
    figures[key] = entry;
  }
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ trace, seeds: runs.map((r) => r.seed), medians: figures, runs, ...(compareLabel ? { compareLabel } : {}) })}\n`,
    );
    return;
  }
  const fix = (v: number, digits: number): string => (Number.isFinite(v) ? v.toFixed(digits) : '∞');
  const fmt = (x: { median: number; min: number; max: number }, digits = 0) =>
    `${fix(x.median, digits)} (${fix(x.min, digits)}–${fix(x.max, digits)})`;
  const lines = [`trace ${trace}, seeds ${runs[0]?.seed}–${runs.at(-1)?.seed}: median (min–max)`];
  const w = Math.max(...SEED_FIGURES.map(([label]) => label.length));
  for (const [label, key] of SEED_FIGURES) {
    const e = figures[key] as Record<string, { median: number; min: number; max: number }> & {
      bothZeroSeeds?: number;
    };
    let line = `${label.padEnd(w)}  ${fmt(e.policy as { median: number; min: number; max: number }).padEnd(28)}`;
    if (compareLabel !== undefined) {
      line += `  ${compareLabel}: ${fmt(e.compare as { median: number; min: number; max: number }).padEnd(28)}`;
      line += `  ratio ${fmt(e.ratio as { median: number; min: number; max: number }, 3)}`;
      if (e.bothZeroSeeds) line += ` (both 0 on ${e.bothZeroSeeds} seed${e.bothZeroSeeds > 1 ? 's' : ''})`;
    }
    lines.push(line.trimEnd());
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

function ratio(a: number, b: number): string {
  return formatRatio(figureRatio(a, b));
}

const OPTIONS = {
  trace: { type: 'string' },
  policy: { type: 'string' },
  svg: { type: 'string' },
  json: { type: 'boolean', default: false },
  compare: { type: 'string' },
  'compare-sync-period-ms': { type: 'string' },
  'time-scale': { type: 'string' },
  'rate-scale': { type: 'string' },
  'peak-rps': { type: 'string' },
  from: { type: 'string' },
  duration: { type: 'string' },
  gaps: { type: 'string' },
  seed: { type: 'string' },
  seeds: { type: 'string' },
  'sync-period-ms': { type: 'string' },
  'cold-start-ms': { type: 'string' },
  'cold-start-cv': { type: 'string' },
  'max-parallel-starts': { type: 'string' },
  'drain-ms': { type: 'string' },
  'slo-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type CliValues = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true }>>['values'];

/** The `simulate` command's options; undefined when help was asked for (and printed). */
function parseSimulateArgs(rest: string[]): (CliValues & { trace: string; policy: string }) | undefined {
  let values: CliValues;
  try {
    ({ values } = parseArgs({ args: rest, options: OPTIONS, strict: true }));
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return undefined;
  }
  if (!values.trace) fail(`--trace is required\n\n${USAGE}`);
  if (!values.policy) fail(`--policy is required\n\n${USAGE}`);
  if (values.compare === undefined && values['compare-sync-period-ms'] !== undefined) {
    fail(`--compare-sync-period-ms needs --compare\n\n${USAGE}`);
  }
  return values as CliValues & { trace: string; policy: string };
}

/** The command line's model options: the flag and the model field each sets. */
const MODEL_FLAGS = [
  ['seed', 'seed'],
  ['sync-period-ms', 'syncPeriodMs'],
  ['cold-start-ms', 'coldStartMs'],
  ['cold-start-cv', 'coldStartCv'],
  ['max-parallel-starts', 'maxParallelStarts'],
  ['drain-ms', 'drainMs'],
  ['slo-ms', 'sloP95Ms'],
] as const;

/**
 * The model: the policy file's, with the command line's overrides. A value the model refuses is reported with the
 * flag that set it (`--drain-ms 1.5: ... model.drainMs must be an integer ...`).
 */
function modelFrom(values: CliValues, fileModel: SimulationModelInput): SimulationModelInput {
  const model: SimulationModelInput = { ...fileModel };
  for (const [flag, field] of MODEL_FLAGS) {
    const v = num(flag, values[flag]);
    if (v !== undefined) model[field] = v;
  }
  try {
    resolveModel(model);
  } catch (err) {
    const set = MODEL_FLAGS.find(
      ([flag, field]) => values[flag] !== undefined && (err as Error).message.startsWith(`model.${field} `),
    );
    if (set && isShoalError(err)) fail(`--${set[0]} ${String(values[set[0]])}: ${err.code}: ${err.message}`);
    throw err;
  }
  return model;
}

function readTrace(file: string, values: CliValues): Trace {
  let csv: string;
  try {
    csv = readFileSync(file, 'utf8');
  } catch (err) {
    return fail(`cannot read ${file}: ${(err as Error).message}`, 1);
  }
  return parseTraceCsv(csv, {
    name: basename(file, extname(file)),
    ...(values['time-scale'] !== undefined ? { timeScale: num('time-scale', values['time-scale']) } : {}),
    ...(values['rate-scale'] !== undefined ? { rateScale: num('rate-scale', values['rate-scale']) } : {}),
    ...(values['peak-rps'] !== undefined ? { peakRps: num('peak-rps', values['peak-rps']) } : {}),
    ...(values.from !== undefined ? { fromS: num('from', values.from) } : {}),
    ...(values.duration !== undefined ? { durationS: num('duration', values.duration) } : {}),
    ...(values.gaps !== undefined ? { gaps: gapsOf(values.gaps) } : {}),
  });
}

function gapsOf(v: string): 'error' | 'zero' {
  if (v !== 'error' && v !== 'zero') fail(`--gaps must be "error" or "zero", got ${JSON.stringify(v)}`);
  return v;
}

interface Compared {
  policy: Policy;
  model: SimulationModelInput;
  label: string;
}

/** The `--compare` side: the HPA default (min/max copied), or another policy file on the same model. */
function comparedRun(values: CliValues, policy: Policy, model: SimulationModelInput): Compared | undefined {
  if (values.compare === undefined) return undefined;
  const compareSync = num('compare-sync-period-ms', values['compare-sync-period-ms']);
  if (values.compare === 'hpa') {
    return {
      policy: resolvePolicy({
        preset: 'hpa',
        minReplicas: policy.minReplicas,
        maxReplicas: policy.maxReplicas,
        targets: [{ metric: 'cpu', type: 'utilization', value: 70 }],
      }),
      // Fed as metrics-server feeds the HPA: a 15 s CPU rate, 0–15 s old (`--compare-sync-period-ms` changes the sync).
      model: metricsServerModel(model, { syncPeriodMs: compareSync }),
      label: 'HPA default (CPU 70 %)',
    };
  }
  // The compared file's own model is ignored: both runs share the model, so only the policy differs.
  const other = resolvePolicy(readPolicyFile(values.compare).policyInput);
  return {
    policy: other,
    model: compareSync !== undefined ? { ...model, syncPeriodMs: compareSync } : model,
    label: `${basename(values.compare)} (${other.preset})`,
  };
}

function seedCountOf(values: CliValues): number {
  const seedCount = num('seeds', values.seeds) ?? 1;
  if (!Number.isInteger(seedCount) || seedCount < 1 || seedCount > 100) {
    fail(`--seeds must be an integer between 1 and 100, got ${JSON.stringify(values.seeds)}`);
  }
  return seedCount;
}

/** Seeds `firstSeed`, `firstSeed + 1`, ...: the first runs are the ones already made. */
function runSeeds(
  trace: Trace,
  policy: Policy,
  model: SimulationModelInput,
  compared: Compared | undefined,
  first: { result: SimulationResult; other: SimulationResult | undefined },
  seedCount: number,
): SeedRun[] {
  const firstSeed = model.seed ?? 1;
  const runs: SeedRun[] = [];
  for (let k = 0; k < seedCount; k++) {
    const seeded = (m: SimulationModelInput): SimulationModelInput => ({ ...m, seed: firstSeed + k });
    const mine = k === 0 ? first.result : simulate({ trace, policy, model: seeded(model) });
    const theirs =
      compared === undefined
        ? undefined
        : k === 0
          ? first.other
          : simulate({ trace, policy: compared.policy, model: seeded(compared.model) });
    runs.push({ seed: firstSeed + k, summary: mine.summary, ...(theirs ? { compare: theirs.summary } : {}) });
  }
  return runs;
}

/** One seed as a table: one column, or both policies with ratios. */
function printTable(result: SimulationResult, mainLabel: string, other?: SimulationResult, compared?: Compared): void {
  const s = result.summary;
  const head: [string, string] = ['trace', `${result.trace} (${s.durationS} s, ${s.totalRequests} requests)`];
  if (!other || !compared) {
    const rows = [head, ...summaryRows(result)];
    const w = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n');
    return;
  }
  const a = summaryRows(result);
  const b = summaryRows(other);
  const o = other.summary;
  const ratios: Record<string, string> = {
    'replica-seconds': ratio(s.replicaSeconds, o.replicaSeconds),
    'SLO-violation seconds': ratio(s.sloViolationSeconds, o.sloViolationSeconds),
    'dropped requests': ratio(s.droppedRequests, o.droppedRequests),
    'scale events': ratio(s.scaleEvents, o.scaleEvents),
    reversals: ratio(s.reversals, o.reversals),
  };
  const w = Math.max(...a.map(([k]) => k.length), 'trace'.length);
  const wa = Math.max(mainLabel.length, ...a.map(([, v]) => v.length));
  const wb = Math.max(compared.label.length, ...b.map(([, v]) => v.length));
  const lines = [
    `${head[0].padEnd(w)}  ${head[1]}`,
    `${''.padEnd(w)}  ${mainLabel.padEnd(wa)}  ${compared.label.padEnd(wb)}  ratio (left / right)`,
    ...a.map(([k, v], i) => `${k.padEnd(w)}  ${v.padEnd(wa)}  ${(b[i]?.[1] ?? '').padEnd(wb)}  ${ratios[k] ?? ''}`),
  ];
  process.stdout.write(lines.map((l) => l.trimEnd()).join('\n') + '\n');
}

function printJson(result: SimulationResult, other?: SimulationResult, compared?: Compared): void {
  const out: Record<string, unknown> = { trace: result.trace, summary: result.summary, events: result.events };
  if (other && compared) out.compare = { label: compared.label, summary: other.summary, events: other.events };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function simulateCommand(rest: string[]): void {
  const values = parseSimulateArgs(rest);
  if (values === undefined) return;
  const { policyInput, fileModel } = readPolicyFile(values.policy);
  const model = modelFrom(values, fileModel);
  const trace = readTrace(values.trace, values);
  if (trace.filledBuckets) {
    process.stderr.write(
      `shoal: ${trace.filledBuckets} missing bucket(s) of ${trace.stepS} s filled with 0 requests\n`,
    );
  }
  const policy = resolvePolicy(policyInput);
  const compared = comparedRun(values, policy, model);
  const seedCount = seedCountOf(values);
  const result = simulate({ trace, policy, model });
  const other = compared ? simulate({ trace, policy: compared.policy, model: compared.model }) : undefined;
  const mainLabel = `${basename(values.policy)} (${policy.preset})`;
  // The chart is of the first (or only) seed.
  if (values.svg) {
    writeFileSync(
      values.svg,
      other && compared
        ? renderSimulationSvg([result, other], { labels: [mainLabel, compared.label] })
        : renderSimulationSvg(result, { labels: [`${policy.preset} policy`] }),
    );
  }
  if (seedCount > 1) {
    const runs = runSeeds(trace, policy, model, compared, { result, other }, seedCount);
    printSeeds(result.trace, runs, compared?.label, values.json === true);
    if (values.svg && !values.json) process.stdout.write(`chart (seed ${model.seed ?? 1}) written to ${values.svg}\n`);
    return;
  }
  if (values.json) return printJson(result, other, compared);
  printTable(result, mainLabel, other, compared);
  if (values.svg) process.stdout.write(`chart written to ${values.svg}\n`);
}

function main(argv: string[]): void {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help') {
    process.stdout.write(USAGE);
    return;
  }
  if (command !== 'simulate') fail(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  simulateCommand(rest);
}

// A reader that went away (`shoal simulate ... | head`) is not an error of ours: stop quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  fail(err.message, 1);
});

try {
  main(process.argv.slice(2));
} catch (err) {
  fail(
    isShoalError(err) ? `${err.code}: ${err.message}` : ((err as Error).stack ?? String(err)),
    isShoalError(err) ? 2 : 1,
  );
}
