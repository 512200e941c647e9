#!/usr/bin/env node
/**
 * `npm run demo`: a gRPC service that scales itself. Starts consul-dev, the coordinator with the local actuator
 * (one replica of ./service.ts to begin with), and a load generator calling the service through consul:/// with
 * shoal_peak_ewma; runs the load scenario with a live view; prints a summary, writes an SVG chart, and stops
 * every process it started (also on Ctrl-C).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { pino } from 'pino';
import { renderChart } from './chart.js';
import { parseDemoArgs, USAGE, UsageError, type DemoOptions } from './options.js';
import { finish, runScenario } from './run.js';
import { Scenario } from './scenario.js';
import { startStack, type Stack } from './stack.js';
import { formatSummary } from './summary.js';
import { TerminalView } from './terminal-view.js';

function outputPaths(out: string): { dir: string; chart: string; summary: string; log: string } {
  const absolute = resolve(out);
  if (extname(absolute).toLowerCase() === '.svg') {
    const dir = dirname(absolute);
    const stem = basename(absolute, extname(absolute));
    return { dir, chart: absolute, summary: join(dir, `${stem}.summary.json`), log: join(dir, `${stem}.log`) };
  }
  return {
    dir: absolute,
    chart: join(absolute, 'chart.svg'),
    summary: join(absolute, 'summary.json'),
    log: join(absolute, 'demo.log'),
  };
}

async function main(argv: readonly string[]): Promise<number> {
  let options: DemoOptions;
  try {
    options = parseDemoArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const paths = outputPaths(options.out);
  mkdirSync(paths.dir, { recursive: true });
  const logger = pino(
    { level: 'info', base: { run: options.runId } },
    pino.destination({ dest: paths.log, sync: true }),
  );
  const view = new TerminalView(process.stdout, {
    tty: process.stdout.isTTY === true,
    columns: process.stdout.columns,
  });
  const scenario = new Scenario({ durationMs: options.durationMs, baseRps: options.baseRps, peakRps: options.peakRps });

  const interrupted = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      view.message(`${signal}: stopping the load and every process the demo started…`);
      interrupted.abort();
    } else {
      // A second Ctrl-C: leave now. The replicas' guard notices the coordinator is gone and stops them.
      view.close();
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let stack: Stack | undefined;
  let exitCode = 0;
  try {
    view.message(`Shoal demo: starting consul-dev, the coordinator and one replica (logs: ${paths.log})`);
    stack = await startStack({ fast: options.fast, runId: options.runId, logger, signal: interrupted.signal });
    view.message(
      `consul-dev ${stack.consulUrl} · coordinator ${stack.coordinatorUrl} · service "greeter" ready with ` +
        `${stack.servingReplicas()} replica; load: ${options.baseRps} → ${options.peakRps} req/s`,
    );
    const result = await runScenario({
      scenario,
      stack,
      view,
      tickMs: 1000,
      signal: interrupted.signal,
      settleMs: options.fast ? 2000 : 5000,
    });
    const replicaPids = stack.replicaPids();
    view.close();
    await stack.close();
    stack = undefined;
    const svg = renderChart({
      title: `Shoal demo: greeter under a ${options.baseRps} → ${options.peakRps} req/s ramp`,
      samples: result.recorder.samples,
      decisions: result.recorder.decisions,
      phases: scenario.phases,
      durationMs: scenario.durationMs,
    });
    writeFileSync(paths.chart, svg);
    const summary = finish(result, scenario, { chartPath: paths.chart, replicaPids });
    writeFileSync(paths.summary, JSON.stringify({ runId: options.runId, ...summary }, null, 2) + '\n');
    process.stdout.write(formatSummary(summary).join('\n') + '\n');
    if (options.json) process.stdout.write(JSON.stringify({ runId: options.runId, ...summary }) + '\n');
    exitCode = interrupted.signal.aborted ? 130 : summary.failedRequests > 0 ? 1 : 0;
  } catch (err) {
    if (!interrupted.signal.aborted) {
      view.close();
      process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.stderr.write(`see ${paths.log}\n`);
      exitCode = 1;
    } else {
      exitCode = 130;
    }
  } finally {
    view.close();
    if (stack) await stack.close().catch(() => {});
    logger.flush();
  }
  return exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
