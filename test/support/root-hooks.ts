/**
 * Mocha root hooks for the whole suite: an unhandled promise rejection or an uncaught exception anywhere in the
 * process fails the test that was running (or the next one), instead of passing silently.
 */
const problems: Array<{ kind: string; error: unknown }> = [];

function onUnhandledRejection(reason: unknown): void {
  problems.push({ kind: 'unhandled rejection', error: reason });
}

process.on('unhandledRejection', onUnhandledRejection);

function takeProblems(): Error | undefined {
  if (problems.length === 0) return undefined;
  const all = problems.splice(0);
  const text = all
    .map(({ kind, error }) => `${kind}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    .join('\n');
  return new Error(`the process saw ${all.length} unhandled problem(s) during this test:\n${text}`);
}

export const mochaHooks = {
  afterEach(this: Mocha.Context, done: (err?: Error) => void): void {
    // Let rejections from the test's last microtasks surface before judging.
    setImmediate(() => done(takeProblems()));
  },
};

/** How long after the suite a still-running process is reported as held open by something a test left behind. */
const LEAK_REPORT_AFTER_MS = 10_000;

export function mochaGlobalTeardown(): void {
  process.off('unhandledRejection', onUnhandledRejection);
  // Mocha runs without --exit, so a timer, socket or child a test leaves behind keeps the process (and CI) alive
  // until it ends — once, an hour. This unref'd timer fires only when something else still holds the process: it
  // names what (process.getActiveResourcesInfo()) and ends the run with mocha's own exit code.
  setTimeout(() => {
    process.stderr.write(
      `\nthe suite ended ${LEAK_REPORT_AFTER_MS / 1000} s ago but the process is still held open by: ` +
        `${process.getActiveResourcesInfo().join(', ')}. A test left it behind (close servers, clear timers, ` +
        `kill children in afterEach). Exiting.\n`,
    );
    process.exit();
  }, LEAK_REPORT_AFTER_MS).unref();
  const error = takeProblems();
  if (error) throw error;
}
