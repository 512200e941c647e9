import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, hasErrorCode } from '@shoal/core';
import { Balancer } from '@shoal/balancer';
import { BUILT_IN_STRATEGIES, makeInstances } from './helpers.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('documents exactly the error codes the balancer can produce, all of them real', async () => {
    const documented = [...readme.matchAll(/`(SHOAL_ERR_[A-Z_]+)`/g)].map((m) => m[1]!);
    for (const code of documented) assert.ok(code in ERROR_CODES, `README lists unknown code ${code}`);
    const b = new Balancer();
    const produced = new Set<string>();
    const record = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        for (const code of Object.keys(ERROR_CODES)) if (hasErrorCode(e, code)) produced.add(code);
      }
    };
    record(() => b.pick());
    record(() => b.setEndpoints([{ ...makeInstances(1)[0]!, weight: -1 }]));
    await b.close();
    record(() => b.pick());
    for (const code of produced) assert.ok(documented.includes(code), `${code} is not in the README`);
    assert.equal(produced.size, 3);
  });

  it('documents every strategy and every balancer option', () => {
    for (const name of BUILT_IN_STRATEGIES) assert.match(readme, new RegExp(`\\| \`${name}\``), name);
    // The accepted options, as the balancer itself lists them when it refuses an unknown one: an option added to
    // the code without a README row fails here.
    let message = '';
    try {
      void new Balancer({ notAnOption: 1 } as never);
    } catch (e) {
      message = (e as Error).message;
    }
    const listed = /known options: (.*)$/.exec(message)?.[1];
    assert.ok(listed, `unexpected error for an unknown option: ${message}`);
    const options = listed.split(', ');
    assert.ok(options.includes('strategy') && options.length >= 10, listed);
    for (const option of options) {
      assert.match(readme, new RegExp(`^\\| \`${option}\` `, 'm'), option);
      // …and each documented option is one the balancer accepts.
      assert.doesNotThrow(() => void new Balancer({ [option]: undefined }).close(), option);
    }
  });
});
