#!/usr/bin/env node
// Fails (exit 1) when a source function is longer than the limit (default 150 lines, from its first line to its
// closing brace). A function that builds a class (a class expression or declaration inside it) is exempt: its
// length is the class's. Usage: node scripts/check-function-length.mjs [--max N] [dir ...]
// (default dirs: every packages/*/src and examples/*/src). Uses the TypeScript compiler API only.
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import ts from 'typescript';
import { defaultDirs, sourceFiles } from './lib/sources.mjs';

function buildsClass(node) {
  let found = false;
  const visit = (n) => {
    if (found) return;
    if (ts.isClassExpression(n) || ts.isClassDeclaration(n)) found = true;
    else ts.forEachChild(n, visit);
  };
  ts.forEachChild(node, visit);
  return found;
}

function nameOf(node, sf) {
  if (node.name) return node.name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText(sf);
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(sf);
  if (parent && ts.isPropertyDeclaration(parent)) return parent.name.getText(sf);
  return '(anonymous)';
}

/** Every function in `file` longer than `max` lines: { file, line, name, lines }. */
export function longFunctions(file, max) {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      if (lines > max && !buildsClass(node)) found.push({ file, line: first + 1, name: nameOf(node, sf), lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function main(argv) {
  let max = 150;
  const dirs = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--max') {
      max = Number(argv[++i]);
      if (!Number.isInteger(max) || max < 1) {
        console.error(`check-function-length: --max must be a positive integer, got ${argv[i]}`);
        return 2;
      }
    } else dirs.push(resolve(argv[i]));
  }
  const files = (dirs.length ? dirs : defaultDirs()).flatMap(sourceFiles);
  const long = files.flatMap((f) => longFunctions(f, max));
  for (const f of long) {
    console.error(`${relative(process.cwd(), f.file)}:${f.line}: ${f.name} is ${f.lines} lines (limit ${max})`);
  }
  if (long.length) {
    console.error(`check-function-length: ${long.length} function(s) over ${max} lines: split them into named steps`);
    return 1;
  }
  console.log(`check-function-length: ${files.length} files, no function over ${max} lines`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  process.exitCode = main(process.argv.slice(2));
}
