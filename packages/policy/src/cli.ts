#!/usr/bin/env node
/**
 * shoal: command-line tools for @shoal/policy.
 *   shoal simulate --trace FILE --policy FILE [--svg OUT] [--json] [options]
 * Reads a trace CSV and a policy (JSON or YAML), replays the trace through the model, prints a summary
 * (or JSON with --json) and optionally writes an SVG chart.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { isShoalError } from '@shoal/core';
import type { PolicyInput } from './policy.js';
import { resolvePolicy } from './policy.js';
import { simulate } from './simulator/simulate.js';
import type { SimulationModelInput } from './simulator/simulate.js';
import { renderSimulationSvg } from './simulator/svg.js';
import { parseTraceCsv } from './simulator/trace.js';

const USAGE = `usage: shoal simulate --trace FILE --policy FILE [options]

Replays a request-rate trace (CSV: time,count) through a queueing model of replicas scaled by the policy.

  --trace FILE          trace CSV (header row, then time,count rows)
  --policy FILE         policy as JSON or YAML; either the policy itself, or { policy, model }
  --svg OUT             write an SVG chart (load, capacity, replicas, latency) to OUT
  --json                print the result summary and scale events as JSON
  --time-scale N        multiply trace durations by N (0.1 = 10x faster)       default 1
  --rate-scale N        multiply trace rates by N                             default 1
  --peak-rps N          scale rates so the peak is N req/s (overrides --rate-scale)
  --from S              skip the first S seconds of the trace                 default 0
  --duration S          replay at most S seconds of the trace                 default all
  --seed N              PRNG seed                                             default 1
  --sync-period-ms N    how often the policy decides                          default 15000
  --cold-start-ms N     replica start-up time                                 default 30000
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
  const text = readFileSync(file, 'utf8');
  const ext = extname(file).toLowerCase();
  try {
    return ext === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    return fail(`cannot parse ${file}: ${(err as Error).message}`);
  }
}

function main(argv: string[]): void {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help') {
    process.stdout.write(USAGE);
    return;
  }
  if (command !== 'simulate') fail(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        trace: { type: 'string' },
        policy: { type: 'string' },
        svg: { type: 'string' },
        json: { type: 'boolean', default: false },
        'time-scale': { type: 'string' },
        'rate-scale': { type: 'string' },
        'peak-rps': { type: 'string' },
        from: { type: 'string' },
        duration: { type: 'string' },
        seed: { type: 'string' },
        'sync-period-ms': { type: 'string' },
        'cold-start-ms': { type: 'string' },
        'slo-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (!values.trace) fail(`--trace is required\n\n${USAGE}`);
  if (!values.policy) fail(`--policy is required\n\n${USAGE}`);

  const doc = readStructured(values.policy);
  if (typeof doc !== 'object' || doc === null) fail(`${values.policy} must hold an object`);
  const wrapped = 'policy' in (doc as Record<string, unknown>);
  const policyInput = (wrapped ? (doc as { policy: unknown }).policy : doc) as PolicyInput;
  const fileModel = (wrapped ? (doc as { model?: SimulationModelInput }).model : undefined) ?? {};
  const model: SimulationModelInput = { ...fileModel };
  const seed = num('seed', values.seed);
  if (seed !== undefined) model.seed = seed;
  const sync = num('sync-period-ms', values['sync-period-ms']);
  if (sync !== undefined) model.syncPeriodMs = sync;
  const cold = num('cold-start-ms', values['cold-start-ms']);
  if (cold !== undefined) model.coldStartMs = cold;
  const slo = num('slo-ms', values['slo-ms']);
  if (slo !== undefined) model.sloP95Ms = slo;

  let csv: string;
  try {
    csv = readFileSync(values.trace, 'utf8');
  } catch (err) {
    fail(`cannot read ${values.trace}: ${(err as Error).message}`, 1);
  }
  const traceOptions = {
    name: basename(values.trace, extname(values.trace)),
    ...(values['time-scale'] !== undefined ? { timeScale: num('time-scale', values['time-scale']) } : {}),
    ...(values['rate-scale'] !== undefined ? { rateScale: num('rate-scale', values['rate-scale']) } : {}),
    ...(values['peak-rps'] !== undefined ? { peakRps: num('peak-rps', values['peak-rps']) } : {}),
    ...(values.from !== undefined ? { fromS: num('from', values.from) } : {}),
    ...(values.duration !== undefined ? { durationS: num('duration', values.duration) } : {}),
  };
  const trace = parseTraceCsv(csv, traceOptions);
  const policy = resolvePolicy(policyInput);
  const result = simulate({ trace, policy, model });
  if (values.svg) {
    writeFileSync(values.svg, renderSimulationSvg(result, { labels: [`${policy.preset} policy`] }));
  }
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ trace: result.trace, summary: result.summary, events: result.events })}\n`,
    );
    return;
  }
  const s = result.summary;
  const rows: Array<[string, string]> = [
    ['trace', `${result.trace} (${s.durationS} s, ${s.totalRequests} requests)`],
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
  const w = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n');
  if (values.svg) process.stdout.write(`chart written to ${values.svg}\n`);
}

try {
  main(process.argv.slice(2));
} catch (err) {
  fail(
    isShoalError(err) ? `${err.code}: ${err.message}` : ((err as Error).stack ?? String(err)),
    isShoalError(err) ? 2 : 1,
  );
}
