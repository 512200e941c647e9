import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkBlocks,
  documentationFiles,
  extractRunnableBlocks,
  type BlockDiagnostic,
  type RunnableBlock,
} from './runnable-blocks.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// Virtual files live in the repository (never written) so `@shoal/*` resolves through node_modules.
const virtualDir = join(root, 'test', 'docs', '.runnable');

const files = documentationFiles(root);
const blocks: RunnableBlock[] = files.flatMap((file) =>
  extractRunnableBlocks(readFileSync(join(root, file), 'utf8'), file, virtualDir),
);

describe('docs: every code block marked runnable compiles against the built packages', function () {
  this.timeout(120_000);
  let results: Map<RunnableBlock, BlockDiagnostic[]>;

  before(() => {
    results = checkBlocks(root, blocks);
  });

  it('finds runnable blocks in the docs and the package READMEs', () => {
    assert.ok(blocks.length >= 3, `only ${blocks.length} runnable blocks found in ${files.length} files`);
    assert.ok(
      blocks.some((b) => b.file.startsWith('docs/')),
      'no runnable block in docs/',
    );
    assert.ok(
      blocks.some((b) => b.file.startsWith('packages/')),
      'no runnable block in a package README',
    );
  });

  for (const block of blocks) {
    it(`${block.file}:${block.line} (${block.lang})`, () => {
      const problems = results.get(block) ?? [];
      assert.deepEqual(
        problems.map((p) => `${p.block.file}:${p.line}: ${p.message}`),
        [],
      );
    });
  }
});

describe('docs: finding runnable blocks', () => {
  it('takes ts/js blocks marked runnable and ignores the rest', () => {
    const md = [
      '# x',
      '```ts runnable',
      'const a: number = 1;',
      '```',
      '```ts',
      'not checked',
      '```',
      '```js runnable',
      'const b = 2;',
      '```',
      '```sh runnable',
      'echo no',
      '```',
    ].join('\n');
    const found = extractRunnableBlocks(md, 'docs/x.md', '/v');
    assert.deepEqual(
      found.map((b) => [b.line, b.lang, b.code]),
      [
        [2, 'ts', 'const a: number = 1;'],
        [8, 'js', 'const b = 2;'],
      ],
    );
  });

  it('reports a type error with its markdown line', () => {
    const md = [
      'text',
      '```ts runnable',
      "import { createInstance } from '@shoal/core';",
      'const n: string = 1;',
      '```',
    ];
    const [block] = extractRunnableBlocks(md.join('\n'), 'docs/bad.md', virtualDir);
    const problems = checkBlocks(root, [block!]).get(block!)!;
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]!.line, 4);
    assert.match(problems[0]!.message, /not assignable to type 'string'/);
  });

  it('reports an import of something a package does not export', () => {
    const md = ['```ts runnable', "import { noSuchThing } from '@shoal/core';", 'noSuchThing();', '```'];
    const [block] = extractRunnableBlocks(md.join('\n'), 'docs/bad2.md', virtualDir);
    const problems = checkBlocks(root, [block!]).get(block!)!;
    assert.match(problems.map((p) => p.message).join('\n'), /no exported member 'noSuchThing'/);
  });
});
