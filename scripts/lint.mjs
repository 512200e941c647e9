#!/usr/bin/env node
// `npm run lint`: every check, two at a time (each is one busy process; CI has 2 cores), the longest first. Each
// check's output is printed whole when it ends, with its time; the exit code is 1 when any check failed.
// Usage: node scripts/lint.mjs [--jobs N]   (npm run lint -- --jobs 1 runs them one after another)
// ESLint and Prettier keep a cache (by file content) under node_modules/.cache, so a second run checks only what
// changed; a fresh clone (CI) has none and checks everything.
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => resolve(root, 'node_modules', '.bin', name);

/** The checks, the longest first. */
const CHECKS = [
  [bin('eslint'), '--cache', '--cache-strategy', 'content', '--cache-location', 'node_modules/.cache/eslint/', '.'],
  [bin('tsc'), '-p', 'test/tsconfig.json'],
  [bin('prettier'), '--check', '--cache', '--cache-strategy', 'content', '.'],
  [process.execPath, 'scripts/check-function-length.mjs'],
  [process.execPath, 'scripts/check-import-cycles.mjs'],
];

function parseJobs(argv) {
  const at = argv.indexOf('--jobs');
  if (at === -1) return 2;
  const jobs = Number(argv[at + 1]);
  if (!Number.isInteger(jobs) || jobs < 1) {
    console.error(`lint: --jobs must be a whole number of at least 1, got ${argv[at + 1]}`);
    process.exit(2);
  }
  return jobs;
}

/** Runs one check, its stdout and stderr kept together; resolves with whether it passed. */
function run(command) {
  const started = Date.now();
  const [file, ...args] = command;
  const name = [file.replace(`${root}/node_modules/.bin/`, '').replace(process.execPath, 'node'), ...args].join(' ');
  return new Promise((resolvePassed) => {
    const child = spawn(file, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    child.on('error', (err) => (output += `${err.message}\n`));
    child.on('close', (code, signal) => {
      const passed = code === 0;
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`== lint: ${name}: ${passed ? 'passed' : `FAILED (${signal ?? code})`} in ${seconds} s\n`);
      if (output) process.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
      resolvePassed(passed);
    });
  });
}

const queue = [...CHECKS];
const results = [];
const lane = async () => {
  for (let next = queue.shift(); next; next = queue.shift()) results.push(await run(next));
};
await Promise.all(Array.from({ length: parseJobs(process.argv.slice(2)) }, lane));
process.exitCode = results.every(Boolean) ? 0 : 1;
