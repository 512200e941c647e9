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

export function mochaGlobalTeardown(): void {
  process.off('unhandledRejection', onUnhandledRejection);
  const error = takeProblems();
  if (error) throw error;
}
