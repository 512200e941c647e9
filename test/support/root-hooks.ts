/**
 * Mocha root hooks for the whole suite: an unhandled promise rejection or an uncaught exception anywhere in the
 * process fails the test that was running (or the next one), instead of passing silently; and whatever a test
 * leaves holding the process open (a timer, socket, server or child) is named.
 *
 * `npm test` runs mocha with --parallel: each worker process runs one test file at a time, these hooks run in every
 * worker, and the root suite's beforeAll/afterAll run around each file. A single file or folder
 * (`SHOAL_TEST=... npx mocha`) runs in one process, where the root suite is the whole run.
 */
const problems: Array<{ kind: string; error: unknown }> = [];

function onUnhandledRejection(reason: unknown): void {
  problems.push({ kind: 'unhandled rejection', error: reason });
}

/** (Re)attaches the listener: a parallel worker removes every unhandledRejection listener after each file. */
function listenForRejections(): void {
  if (!process.listeners('unhandledRejection').includes(onUnhandledRejection)) {
    process.on('unhandledRejection', onUnhandledRejection);
  }
}

listenForRejections();

function takeProblems(): Error | undefined {
  if (problems.length === 0) return undefined;
  const all = problems.splice(0);
  const text = all
    .map(({ kind, error }) => `${kind}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    .join('\n');
  return new Error(`the process saw ${all.length} unhandled problem(s) during this test:\n${text}`);
}

/** How long after the suite (or, in a parallel worker, a file) a resource still held is reported as left behind. */
const LEAK_REPORT_AFTER_MS = 10_000;

/** Whether this process is one of mocha's --parallel workers (forked with mocha's worker script). */
const IN_WORKER = /[\\/]mocha[\\/]lib[\\/]nodejs[\\/]worker\.js$/.test(process.argv[1] ?? '');

/** What keeps the event loop alive right now, counted by kind (TCPWrap, Timeout, ProcessWrap, ...). */
function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** The resources held now beyond `baseline`, e.g. ['TCPWrap', 'ProcessWrap'] (empty when nothing was left). */
function heldBeyond(baseline: Map<string, number>): string[] {
  const extra: string[] = [];
  for (const [kind, n] of activeResources()) {
    for (let i = baseline.get(kind) ?? 0; i < n; i++) extra.push(kind);
  }
  return extra;
}

/**
 * In a worker, waits (up to LEAK_REPORT_AFTER_MS) for the file's own resources to go, and names any still held:
 * the worker is ended when the run is over, so what a test left would otherwise vanish unreported. Checked from
 * an immediate so that the polling timer is not counted.
 */
async function reportLeftovers(baseline: Map<string, number>, files: string[]): Promise<void> {
  const deadline = Date.now() + LEAK_REPORT_AFTER_MS;
  for (;;) {
    await new Promise((resolve) => setImmediate(resolve));
    const held = heldBeyond(baseline);
    if (held.length === 0) return;
    if (Date.now() >= deadline) {
      process.stderr.write(
        `\n${files.join(', ')} ended ${LEAK_REPORT_AFTER_MS / 1000} s ago but its worker is still held open by: ` +
          `${held.join(', ')}. A test left it behind (close servers, clear timers, kill children in afterEach).\n`,
      );
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let baseline = new Map<string, number>();

// The root hooks take a `done` callback so that mocha's own timeout timer for the hook is running in both
// beforeAll and afterAll: the resources counted before and after a file then differ only by what the file left.
export const mochaHooks = {
  beforeAll(done: () => void): void {
    listenForRejections();
    if (IN_WORKER) baseline = activeResources();
    done();
  },
  afterEach(done: (err?: Error) => void): void {
    // Let rejections from the test's last microtasks surface before judging.
    setImmediate(() => done(takeProblems()));
  },
  afterAll(this: Mocha.Context, done: (err?: Error) => void): void {
    if (!IN_WORKER) return done(); // one process: mochaGlobalTeardown below does this once, after the whole run
    this.timeout(LEAK_REPORT_AFTER_MS + 5_000);
    const files = (this.test?.parent?.suites ?? []).map((suite) => suite.file ?? suite.title);
    reportLeftovers(baseline, files).then(
      () => done(takeProblems()),
      (err: Error) => done(err),
    );
  },
};

// Runs once, in the main mocha process (not in parallel workers: see afterAll above).
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
