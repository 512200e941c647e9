/**
 * Every coordinator config shown in the docs (a ```yaml block marked `coordinator-config`) is valid for the real
 * coordinator's schema, so a reader who copies it gets a coordinator that starts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigYaml } from '@shoal/coordinator';
import { documentationFiles } from './runnable-blocks.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface ConfigBlock {
  file: string;
  line: number;
  text: string;
}

function configBlocks(): ConfigBlock[] {
  const blocks: ConfigBlock[] = [];
  for (const file of documentationFiles(root)) {
    const lines = readFileSync(join(root, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!/^\s*```ya?ml\s+coordinator-config\b/.test(lines[i]!)) continue;
      let end = i + 1;
      while (end < lines.length && !lines[end]!.trimStart().startsWith('```')) end++;
      blocks.push({ file, line: i + 1, text: lines.slice(i + 1, end).join('\n') });
      i = end;
    }
  }
  return blocks;
}

describe('docs: every coordinator config in the docs is valid', () => {
  const blocks = configBlocks();

  it('finds the getting-started config', () => {
    assert.ok(blocks.some((b) => b.file === 'docs/getting-started.md'));
  });

  for (const block of blocks) {
    it(`${block.file}:${block.line}`, () => {
      const config = parseConfigYaml(block.text, `${block.file}:${block.line}`);
      assert.ok(config.services.length >= 1);
    });
  }
});
