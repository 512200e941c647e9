// The TypeScript sources the lint scripts read: every packages/*/src and examples/*/src under the repository root.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** The repository root (this file is scripts/lib/sources.mjs). */
export const root = resolve(dirname(new URL(import.meta.url).pathname), '..', '..');

/** Every packages/<name>/src and examples/<name>/src directory. */
export function defaultDirs() {
  const dirs = [];
  for (const group of ['packages', 'examples']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      const src = join(base, name, 'src');
      if (existsSync(src) && statSync(src).isDirectory()) dirs.push(src);
    }
  }
  return dirs;
}

/** The .ts/.tsx/.mts/.cts files below `dir` (declaration files left out). */
export function sourceFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|tsx|mts|cts)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}
