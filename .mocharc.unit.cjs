'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- mocha loads this CommonJS config with require() */
// `npm run test:unit`: every package's own tests that start no child process (fast, loopback only). A test file
// that uses child_process (spawn, fork, exec*) is left to the full `npm test`, as is everything in the
// cross-package test/ folder (end-to-end, chaos, examples, monitoring). The selection reads each file, so a new
// test lands on the right side without a list to keep. It runs in one process (CI runs it on two Node majors side
// by side).
const base = require('./.mocharc.cjs');
const { packageTestFiles, startsProcesses } = require('./test/support/suite-files.cjs');

const spec = packageTestFiles()
  .filter((file) => !startsProcesses(file))
  .concat(['test/kit/wait.test.ts']);

const unit = { ...base, parallel: false };
delete unit.jobs;
module.exports = { ...unit, spec: process.env.SHOAL_TEST ? base.spec : spec };
