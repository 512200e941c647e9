/** Command-line options of `npm run demo` (`node examples/demo/dist/demo.js`). */
import { parseArgs } from 'node:util';

export interface DemoOptions {
  durationMs: number;
  fast: boolean;
  /** Where the SVG chart (and summary.json) go: a directory, or a path ending in `.svg`. */
  out: string;
  /** Print the summary as one JSON line at the end (for scripts and tests). */
  json: boolean;
  baseRps: number;
  peakRps: number;
  help: boolean;
  /** Tag passed to every replica's command line (`--demo-run <id>`), so a test can find them. */
  runId: string;
}

export const USAGE = `Usage: npm run demo -- [options]    (or: node examples/demo/dist/demo.js [options])

Starts an in-memory Consul (@shoal/consul-dev), the Shoal coordinator with the local actuator, one replica of an
example gRPC service with the Shoal agent, and a load generator that calls it through consul:/// with
shoal_peak_ewma. The load ramps up, holds and falls; watch the service scale out and back in.

Options:
  --duration <seconds>  length of the whole scenario, 20..180 (default 150; 45 with --fast)
  --fast                shorter scenario and faster control loop (used by the tests)
  --out <path>          directory for the SVG chart and summary.json, or a file ending in .svg
                        (default demo-output/)
  --peak-rps <n>        offered load at the peak (default 200; needs about 5 replicas)
  --base-rps <n>        offered load before and after the peak (default 20)
  --json                print the summary as one JSON line at the end
  --run-id <id>         tag passed to every replica's command line (tests use it to find leftovers)
  -h, --help            show this help
`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function positiveNumber(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${flag} must be a positive number, got ${JSON.stringify(raw)}`);
  }
  return n;
}

export function parseDemoArgs(argv: readonly string[]): DemoOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        duration: { type: 'string' },
        fast: { type: 'boolean', default: false },
        out: { type: 'string' },
        json: { type: 'boolean', default: false },
        'peak-rps': { type: 'string' },
        'base-rps': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        'run-id': { type: 'string' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const fast = values.fast === true;
  const durationS = positiveNumber('--duration', values.duration, fast ? 45 : 150);
  if (durationS < 20 || durationS > 180) {
    throw new UsageError(`--duration must be between 20 and 180 seconds, got ${durationS}`);
  }
  const baseRps = positiveNumber('--base-rps', values['base-rps'], 20);
  const peakRps = positiveNumber('--peak-rps', values['peak-rps'], 200);
  if (peakRps < baseRps) throw new UsageError(`--peak-rps (${peakRps}) must be at least --base-rps (${baseRps})`);
  const runId = values['run-id'];
  if (runId !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(runId)) {
    throw new UsageError(
      `--run-id must be 1-64 characters of A-Z, a-z, 0-9, ".", "_", "-", got ${JSON.stringify(runId)}`,
    );
  }
  if (peakRps > 2000) throw new UsageError(`--peak-rps must be at most 2000, got ${peakRps}`);
  return {
    durationMs: Math.round(durationS * 1000),
    fast,
    out: values.out ?? 'demo-output',
    json: values.json === true,
    baseRps,
    peakRps,
    help: values.help === true,
    runId: runId ?? `demo-${process.pid}-${Date.now().toString(36)}`,
  };
}
