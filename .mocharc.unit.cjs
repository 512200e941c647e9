'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- mocha loads this CommonJS config with require() */
// `npm run test:unit`: every package's own tests that start no child process (fast, loopback only). A test file
// that uses child_process (spawn, fork, exec*) is left to the full `npm test`, as is everything in the
// cross-package test/ folder (end-to-end, chaos, examples, monitoring). The selection reads each file, so a new
// test lands on the right side without a list to keep.
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const base = require('./.mocharc.cjs');

const STARTS_PROCESSES = /node:child_process|['"]child_process['"]|\bspawn\(|\bfork\(|\bexecFile\(/;

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : testFiles(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const spec = readdirSync('packages')
  .flatMap((pkg) => {
    try {
      return testFiles(join('packages', pkg, 'test'));
    } catch {
      return [];
    }
  })
  .filter((file) => !STARTS_PROCESSES.test(readFileSync(file, 'utf8')))
  .concat(['test/kit/wait.test.ts']);

module.exports = { ...base, spec: process.env.SHOAL_TEST ? base.spec : spec };
