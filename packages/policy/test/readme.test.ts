// Keeps the README's tables in sync with the code: every error code and every policy option is documented.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { POLICY_ERROR_CODES, resolvePolicy, resolveModel } from '@shoal/policy';

const require = createRequire(import.meta.url);
const readme = readFileSync(join(dirname(require.resolve('@shoal/policy/package.json')), 'README.md'), 'utf8');

describe('README', () => {
  it('documents every error code', () => {
    for (const code of [...Object.keys(POLICY_ERROR_CODES), 'SHOAL_ERR_INVALID_ARGUMENT']) {
      assert.match(readme, new RegExp(`\\|\\s*\`${code}\`\\s*\\|`), code);
    }
  });

  it('documents every policy option and every model option', () => {
    const policyKeys = Object.keys(resolvePolicy({})).filter((k) => k !== 'resolved' && k !== 'preset');
    for (const key of ['preset', ...policyKeys]) assert.match(readme, new RegExp(`\\|\\s*\`${key}\`\\s*\\|`), key);
    const modelKeys = Object.keys(resolveModel({})).filter((k) => k !== 'replicaCapacityRps');
    for (const key of [...modelKeys, 'initialReplicas', 'startAtMs'])
      assert.match(readme, new RegExp(`\\|\\s*\`${key}\`\\s*\\|`), key);
  });
});
