/**
 * Code blocks marked runnable in the documentation (```ts runnable, ```js runnable) and a TypeScript program that
 * type-checks them against the built packages, exactly as a user's file next to `node_modules/@shoal/*` would.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export interface RunnableBlock {
  /** Markdown file, relative to the repository root. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: 'ts' | 'js';
  code: string;
  /** The virtual file name the block is compiled as. */
  virtualName: string;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w-]+)([^\n]*)$/;

export function extractRunnableBlocks(markdown: string, file: string, virtualDir: string): RunnableBlock[] {
  const lines = markdown.split('\n');
  const blocks: RunnableBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, langRaw, rest] = open as unknown as [string, string, string, string, string];
    let end = i + 1;
    while (end < lines.length && !lines[end]!.trimStart().startsWith(fence)) end++;
    const lang = langRaw.toLowerCase();
    const runnable = /(^|\s)runnable(\s|$)/.test(rest);
    if (runnable && ['ts', 'typescript', 'js', 'javascript'].includes(lang)) {
      const code = lines
        .slice(i + 1, end)
        .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
        .join('\n');
      const kind = lang.startsWith('t') ? 'ts' : 'js';
      const slug = file.replace(/[^A-Za-z0-9]+/g, '_');
      blocks.push({
        file,
        line: i + 1,
        lang: kind,
        code,
        virtualName: join(virtualDir, `${slug}_L${i + 1}.${kind === 'ts' ? 'mts' : 'mjs'}`),
      });
    }
    i = end;
  }
  return blocks;
}

/** Markdown files a user reads: docs/ (not the generated API reference), every README of packages and examples. */
export function documentationFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (name === 'node_modules' || name === 'dist' || name === 'api') continue;
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.md')) out.push(full);
    }
  };
  walk(join(root, 'docs'));
  for (const parent of ['packages', 'examples']) {
    let names: string[] = [];
    try {
      names = readdirSync(join(root, parent));
    } catch {
      continue;
    }
    for (const name of names) {
      const readme = join(root, parent, name, 'README.md');
      try {
        if (statSync(readme).isFile()) out.push(readme);
      } catch {
        // no README
      }
    }
  }
  try {
    if (statSync(join(root, 'README.md')).isFile()) out.push(join(root, 'README.md'));
  } catch {
    // none
  }
  try {
    if (statSync(join(root, 'examples', 'README.md')).isFile()) out.push(join(root, 'examples', 'README.md'));
  } catch {
    // none
  }
  return out.sort().map((f) => relative(root, f));
}

/** The compiler options of tsconfig.base.json, for a check-only program. */
export function baseCompilerOptions(root: string): ts.CompilerOptions {
  const configPath = join(root, 'tsconfig.base.json');
  const read = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root, undefined, configPath);
  return {
    ...parsed.options,
    noEmit: true,
    composite: false,
    incremental: false,
    declaration: false,
    declarationMap: false,
    sourceMap: false,
    allowJs: true,
    checkJs: true,
    // A doc example may declare a variable only to show a call's result.
    noUnusedLocals: false,
    noUnusedParameters: false,
  };
}

export interface BlockDiagnostic {
  block: RunnableBlock;
  /** 1-based line within the markdown file. */
  line: number;
  message: string;
}

/** Type-checks every block in one program; returns the diagnostics of each block. */
export function checkBlocks(root: string, blocks: readonly RunnableBlock[]): Map<RunnableBlock, BlockDiagnostic[]> {
  const options = baseCompilerOptions(root);
  const byName = new Map<string, { block: RunnableBlock; text: string }>();
  for (const block of blocks) {
    // A block without import/export would be a script; make it a module so top-level await works.
    const isModule = /^\s*(import|export)\s/m.test(block.code);
    byName.set(block.virtualName, { block, text: isModule ? block.code : `${block.code}\nexport {};\n` });
  }
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.fileExists = (name) => byName.has(name) || fileExists(name);
  host.readFile = (name) => byName.get(name)?.text ?? readFile(name);
  host.getSourceFile = (name, languageVersion, onError, shouldCreate) => {
    const virtual = byName.get(name);
    if (virtual) return ts.createSourceFile(name, virtual.text, languageVersion, true);
    return getSourceFile(name, languageVersion, onError, shouldCreate);
  };
  const program = ts.createProgram({ rootNames: [...byName.keys()], options, host });
  const result = new Map<RunnableBlock, BlockDiagnostic[]>();
  for (const block of blocks) result.set(block, []);
  const all = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  if (all.length > 0) {
    throw new Error(all.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('\n'));
  }
  for (const [name, { block }] of byName) {
    const sf = program.getSourceFile(name);
    if (!sf) throw new Error(`compiler lost ${name}`);
    const diagnostics = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    for (const d of diagnostics) {
      const pos = d.start !== undefined ? sf.getLineAndCharacterOfPosition(d.start).line : 0;
      result.get(block)!.push({
        block,
        line: block.line + 1 + pos,
        message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
      });
    }
  }
  return result;
}
