#!/usr/bin/env node
// Fails (exit 1) when the TypeScript sources import each other in a circle, as grpc-js's build fails on `madge -c`.
// Usage: node scripts/check-import-cycles.mjs [dir ...]   (default: every packages/*/src and examples/*/src)
// Relative imports and re-exports count, `import type` included (a cycle of types is still two files that cannot be
// understood apart); package imports do not (packages follow the graph in docs/ARCHITECTURE, checked by tsc's
// project references). Uses the TypeScript compiler API only: no other dependency.
import { readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { defaultDirs, root, sourceFiles } from './lib/sources.mjs';

/** The file a relative specifier names: `./x.js` is `./x.ts` in the sources; `./dir` is `./dir/index.ts`. */
function resolveSpecifier(from, specifier) {
  const base = resolve(dirname(from), specifier);
  const stem = base.replace(/\.(js|jsx|mjs|cjs|ts|tsx|mts|cts)$/, '');
  const candidates = [`${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${stem}.cts`, join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

function importGraph(files) {
  const graph = new Map();
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = new Set();
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = resolveSpecifier(file, fileName);
      if (target !== undefined && target !== file) targets.add(target);
    }
    graph.set(file, [...targets]);
  }
  return graph;
}

/** Strongly connected components with more than one file (Tarjan), each a set of files importing in a circle. */
function cycles(graph) {
  let index = 0;
  const stack = [];
  const onStack = new Set();
  const indexOf = new Map();
  const low = new Map();
  const found = [];
  const visit = (v) => {
    indexOf.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!indexOf.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), indexOf.get(w)));
      }
    }
    if (low.get(v) === indexOf.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!indexOf.has(v)) visit(v);
  return found;
}

const dirs = process.argv.length > 2 ? process.argv.slice(2).map((d) => resolve(d)) : defaultDirs();
const files = dirs.flatMap(sourceFiles);
const found = cycles(importGraph(files));
if (found.length > 0) {
  console.error(`import cycles found (${found.length}):`);
  for (const component of found) console.error(`  ${component.map((f) => relative(root, f)).join(' <-> ')}`);
  process.exit(1);
}
console.log(`no import cycles in ${files.length} files`);
