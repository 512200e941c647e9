import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '@shoal/core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (name.endsWith('.ts')) out.push(full);
  }
  return out;
}

/** Every `SHOAL_ERR_*` code the packages' sources define or throw. */
function codesInSources(): Set<string> {
  const codes = new Set<string>(Object.keys(ERROR_CODES));
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const src = join(root, 'packages', pkg, 'src');
    try {
      statSync(src);
    } catch {
      continue;
    }
    for (const file of sourceFiles(src)) {
      for (const m of readFileSync(file, 'utf8').matchAll(/\bSHOAL_ERR_[A-Z0-9_]+\b/g)) codes.add(m[0]);
    }
  }
  return codes;
}

describe('docs: troubleshooting lists every error code', () => {
  const page = readFileSync(join(root, 'docs', 'troubleshooting.md'), 'utf8');
  const tableCodes = new Set([...page.matchAll(/^\| `(SHOAL_ERR_[A-Z0-9_]+)`/gm)].map((m) => m[1]!));
  const codes = codesInSources();

  it('has a row for every code a package defines', () => {
    assert.ok(codes.size >= Object.keys(ERROR_CODES).length);
    const missing = [...codes].filter((c) => !tableCodes.has(c)).sort();
    assert.deepEqual(missing, [], `add these codes to docs/troubleshooting.md's error-code table`);
  });

  it('has no row for a code that no package defines', () => {
    const stale = [...tableCodes].filter((c) => !codes.has(c)).sort();
    assert.deepEqual(stale, []);
  });
});
