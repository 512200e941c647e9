'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- mocha loads the configurations (and so this) with require() */
// The test files of the suite, for the mocha configurations (.mocharc.cjs, .mocharc.unit.cjs).
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

/** Whether a source text starts child processes itself (spawn, fork, exec*). */
const STARTS_PROCESSES = /node:child_process|['"]child_process['"]|\bspawn\(|\bfork\(|\bexecFile\(/;

/**
 * The functions of the shared test support (test/support, test/kit) exported by modules that start processes
 * (runModule, createTestCa, packWorkspaces, ...): a test that names one starts processes through it.
 */
const PROCESS_HELPERS = (() => {
  const names = [];
  for (const dir of [join(__dirname), join(__dirname, '..', 'kit')]) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(join(dir, file), 'utf8');
      if (!STARTS_PROCESSES.test(text)) continue;
      for (const m of text.matchAll(/^export (?:async )?function (\w+)/gm)) names.push(m[1]);
    }
  }
  return new RegExp(`\\b(?:${names.join('|')})\\b`);
})();

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

/** Whether a test file starts child processes: itself, or through a process-starting helper of the test support. */
function startsProcesses(file) {
  const text = readFileSync(file, 'utf8');
  return STARTS_PROCESSES.test(text) || PROCESS_HELPERS.test(text);
}

module.exports = { testFiles, packageTestFiles, startsProcesses };
