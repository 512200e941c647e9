import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { resolveConsulDevOptions } from '@shoal/consul-dev';

const README = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');

describe('README', () => {
  it('documents every option in the options table', () => {
    let known: string[] = [];
    try {
      resolveConsulDevOptions({ '?': 1 } as never);
    } catch (err) {
      known = /known options: (.*)$/.exec((err as Error).message)![1]!.split(', ');
    }
    assert.ok(known.length >= 9);
    for (const option of known) assert.match(README, new RegExp(`^\\| \`${option}\` +\\|`, 'm'), option);
  });

  it('lists the error code the package throws', () => {
    assert.throws(() => resolveConsulDevOptions({ port: -1 }), { code: 'SHOAL_ERR_INVALID_ARGUMENT' });
    assert.match(README, /\| `SHOAL_ERR_INVALID_ARGUMENT` \|/);
  });

  it('has a runnable example', async function () {
    this.timeout(20_000);
    const code = /```ts(?: runnable)?\n([\s\S]*?)```/.exec(README)![1]!;
    const file = fileURLToPath(new URL('./.readme-example.ts', import.meta.url));
    writeFileSync(file, code);
    try {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], { timeout: 15_000 });
      assert.match(stdout, /Service: 'orders'|Service: "orders"|ID: 'orders'/);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
