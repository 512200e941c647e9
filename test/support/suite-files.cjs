'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- mocha loads the configurations (and so this) with require() */
// The test files of the suite, for the mocha configurations (.mocharc.cjs, .mocharc.unit.cjs).
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

/** Whether a test file's source starts child processes (spawn, fork, exec*). */
const STARTS_PROCESSES = /node:child_process|['"]child_process['"]|\bspawn\(|\bfork\(|\bexecFile\(/;

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : testFiles(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** Every package's own test files (packages/<name>/test/**). */
function packageTestFiles() {
  return readdirSync('packages').flatMap((pkg) => {
    try {
      return testFiles(join('packages', pkg, 'test'));
    } catch {
      return [];
    }
  });
}

function startsProcesses(file) {
  return STARTS_PROCESSES.test(readFileSync(file, 'utf8'));
}

module.exports = { testFiles, packageTestFiles, startsProcesses };
