/**
 * The demo's run loop, independent of how the system under demonstration is started: it drives the load
 * scenario against a `DemoStack`, samples once per tick, feeds the view, and on the end (or an interrupt) stops
 * the load, closes the stack and returns the summary.
 */
import { LoadGenerator } from './load-generator.js';
import { Recorder, type DecisionRecord } from './recorder.js';
import type { Scenario } from './scenario.js';
import { summarize, type DemoSummary } from './summary.js';
import type { TerminalView } from './terminal-view.js';

/** What the run needs from the running system. */
export interface DemoStack {
  /** One call to the service through the client (consul:/// + shoal_peak_ewma). */
  call(): Promise<void>;
  /** Healthy instances the client's watcher sees. */
  servingReplicas(): number;
  /** The coordinator's desired replica count, if it has decided. */
  desiredReplicas(): number | undefined;
  /** Decisions since the last call (from the coordinator's decision log). */
  takeDecisions(): Promise<Array<Omit<DecisionRecord, 'tMs'> & { atMs: number }>>;
  /** Process ids of every replica started so far. */
  replicaPids(): number[];
}

export interface RunOptions {
  scenario: Scenario;
  stack: DemoStack;
  view: TerminalView;
  tickMs: number;
  /** Aborted on Ctrl-C / SIGTERM. */
  signal: AbortSignal;
  /** After the ramp-down, end early once replicas are back at the start count for this long. */
  settleMs: number;
}

export interface RunResult {
  recorder: Recorder;
  completed: boolean;
  startedAtEpochMs: number;
}

export async function runScenario(options: RunOptions): Promise<RunResult> {
  const { scenario, stack, view, signal } = options;
  const recorder = new Recorder();
  const startedAtEpochMs = Date.now();
  const start = performance.now();
  const elapsed = (): number => performance.now() - start;
  const generator = new LoadGenerator({
    rateAt: (ms) => scenario.rateAt(ms),
    call: () => stack.call(),
    onSuccess: (ms) => recorder.recordSuccess(ms),
    onFailure: (kind, message) => recorder.recordFailure(kind, message),
  });
  const startReplicas = stack.servingReplicas();
  generator.start(start);
  let completed = false;
  let settledSince: number | undefined;
  try {
    for (;;) {
      await waitTick(options.tickMs, signal);
      if (signal.aborted) break;
      const tMs = elapsed();
      for (const d of await stack.takeDecisions()) {
        // The start-up decision (0 → minReplicas) belongs to the set-up, not to the scenario.
        if (d.atMs < startedAtEpochMs) continue;
        recorder.recordDecision({
          tMs: Math.max(0, d.atMs - startedAtEpochMs),
          from: d.from,
          to: d.to,
          reasons: d.reasons,
        });
      }
      const phase = scenario.phaseAt(tMs);
      const sample = recorder.tick({
        tMs,
        phase: phase.name,
        targetRps: scenario.rateAt(tMs),
        replicas: stack.servingReplicas(),
        desired: stack.desiredReplicas(),
      });
      view.update({
        elapsedMs: tMs,
        scenario,
        sample,
        decisions: recorder.decisions,
        failedTotal: recorder.totals.failed,
        requestsTotal: recorder.totals.requests,
        lastFailure: recorder.lastFailures[recorder.lastFailures.length - 1],
      });
      if (tMs >= scenario.durationMs) {
        completed = true;
        break;
      }
      // Once the load is back down and the service is back where it started, the story is told.
      const scaledBack =
        phase.name === 'cool-down' &&
        recorder.samples.some((s) => s.replicas > startReplicas) &&
        sample.replicas <= startReplicas &&
        (sample.desired === undefined || sample.desired <= startReplicas);
      if (scaledBack) {
        settledSince ??= tMs;
        if (tMs - settledSince >= options.settleMs) {
          completed = true;
          break;
        }
      } else {
        settledSince = undefined;
      }
    }
  } finally {
    await generator.stop();
  }
  return { recorder, completed, startedAtEpochMs };
}

function waitTick(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export function finish(
  result: RunResult,
  scenario: Scenario,
  extra: { chartPath: string | undefined; replicaPids: number[] },
): DemoSummary {
  return summarize(result.recorder, scenario, { completed: result.completed, ...extra });
}
