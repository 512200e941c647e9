import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '@shoal/core';
import { GRPC_ERROR_CODES } from '@shoal/grpc';

describe('error codes', () => {
  it('the README error table lists exactly the codes the package throws, with the same meaning', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const rows = [...readme.matchAll(/^\| `(SHOAL_ERR_[A-Z_]+)` *\| (.*?) *\|$/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(Object.fromEntries(rows), GRPC_ERROR_CODES);
    for (const code of Object.keys(GRPC_ERROR_CODES)) assert.ok(code in ERROR_CODES, `${code} is a core code`);
  });
});
