import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../scripts/check-import-cycles.mjs', import.meta.url));

/** Runs the check (the one `npm run lint` runs) on a directory of sources. */
function check(files: Record<string, string>): { status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-cycles-'));
  try {
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    const run = spawnSync(process.execPath, [script, dir], { encoding: 'utf8' });
    return { status: run.status, stderr: run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the import-cycle check of npm run lint', () => {
  it('fails on two files importing each other, a type-only import included', () => {
    const result = check({
      'options.ts': "import { load } from './registration.js';\nexport interface Options { a: number }\nload();\n",
      'registration.ts':
        "import type { Options } from './options.js';\nexport function load(o?: Options) { return o; }\n",
    });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /import cycles found \(1\)/);
    assert.match(result.stderr, /options\.ts <-> .*registration\.ts/);
  });

  it('fails on a longer circle through a re-export and a sub-folder index', () => {
    const result = check({
      'a.ts': "export { b } from './sub/index.js';\n",
      'sub/index.ts': "import { c } from '../c.js';\nexport const b = c;\n",
      'c.ts': "import * as a from './a.js';\nexport const c = Object.keys(a).length;\n",
    });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /a\.ts <-> .*c\.ts <-> .*sub\/index\.ts/);
  });

  it('passes a tree without a circle, and ignores package imports', () => {
    const result = check({
      'a.ts': "import { b } from './b.js';\nimport { x } from '@shoal/core';\nexport const a = b + x;\n",
      'b.ts': 'export const b = 1;\n',
    });
    assert.equal(result.status, 0, result.stderr);
  });
});
