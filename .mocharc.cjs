'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- mocha loads this CommonJS config with require() */
// Mocha runs every package's unit tests and the cross-package tests in test/. TypeScript test files are loaded
// through tsx; the packages under test are imported from their built dist/ through their exports maps, exactly as
// users import them (so `npm test` builds first).
// SHOAL_TEST=packages/balancer runs one package's (or folder's) tests: `SHOAL_TEST=packages/balancer npx mocha`.
//
// SHOAL_TEST_JOBS=N runs the whole suite in N parallel worker processes, one test file at a time each (most tests
// wait on real sockets and child processes); the default is 1, one process. The files that start processes (the
// long ones) come first so that none of them is left to run alone at the end. SHOAL_TEST=... (one file or folder)
// always runs in one process, so `.only` and the debugger work.
const { testFiles, packageTestFiles, startsProcesses } = require('./test/support/suite-files.cjs');

const only = process.env.SHOAL_TEST;
const JOBS = Number(process.env.SHOAL_TEST_JOBS ?? 1);
if (!Number.isInteger(JOBS) || JOBS < 1) {
  throw new Error(`SHOAL_TEST_JOBS must be a whole number of at least 1, got ${process.env.SHOAL_TEST_JOBS}`);
}

/** Every test file, those that start processes first (every cross-package test does, or waits on one that does). */
function wholeSuite() {
  const files = [...packageTestFiles(), ...testFiles('test')].filter((file) => !file.startsWith('test/container/'));
  const heavy = (file) => file.startsWith('test/') || startsProcesses(file);
  return [...files.filter(heavy), ...files.filter((file) => !heavy(file))];
}

const parallel = !only && JOBS > 1;
module.exports = {
  spec: only ? [only.endsWith('.ts') ? only : `${only.replace(/\/$/, '')}/**/*.test.ts`] : wholeSuite(),
  // test/container builds and runs the coordinator image with Docker (minutes, mostly downloads): it runs only by
  // name, `npm run test:container` (SHOAL_TEST=test/container).
  ignore: only ? [] : ['test/container/**'],
  'node-option': ['import=tsx'],
  require: ['test/support/root-hooks.ts'],
  timeout: 20000,
  reporter: 'spec',
  'forbid-only': Boolean(process.env.CI),
  parallel,
  ...(parallel ? { jobs: JOBS } : {}),
};
