import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../scripts/check-function-length.mjs', import.meta.url));

/** Runs the check (the one `npm run lint` runs) on a directory of sources, with a small limit. */
function check(files: Record<string, string>, max = 10): { status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-length-'));
  try {
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    const run = spawnSync(process.execPath, [script, '--max', String(max), dir], { encoding: 'utf8' });
    return { status: run.status, stderr: run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const lines = (n: number): string => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');

const fields = (n: number): string => Array.from({ length: n }, (_, i) => `    v${i} = ${i};`).join('\n');

describe('the function-length check of npm run lint', () => {
  it('fails on a function, a method and an arrow function over the limit, naming each with its line', () => {
    const result = check({
      'long.ts': `export function long() {\n${lines(10)}\n}\n`,
      'sub/method.ts': `export class C {\n  run() {\n${lines(10)}\n  }\n}\n`,
      'arrow.ts': `export const arrow = () => {\n${lines(10)}\n};\n`,
    });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /long\.ts:1: long is 12 lines \(limit 10\)/);
    assert.match(result.stderr, /method\.ts:2: run is 12 lines/);
    assert.match(result.stderr, /arrow\.ts:1: arrow is 12 lines/);
    assert.match(result.stderr, /3 function\(s\) over 10 lines/);
  });

  it('passes functions at the limit, and one that builds a class', () => {
    const result = check({
      'ok.ts': `export function ok() {\n${lines(8)}\n}\n`,
      'factory.ts': `export function factory() {\n  return class {\n${fields(12)}\n  };\n}\n`,
    });
    assert.equal(result.status, 0, result.stderr);
  });

  it('refuses a limit that is not a positive integer', () => {
    const result = check({ 'ok.ts': 'export const a = 1;\n' }, 0);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--max must be a positive integer, got 0/);
  });
});
