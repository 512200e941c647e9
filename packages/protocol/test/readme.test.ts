import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { reportFromJson, validateDirective, validateHello, validateReport } from '@shoal/protocol';

function documentedCodes(): string[] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.split('## Error codes')[1]?.split('\n## ')[0] ?? '';
  return [...section.matchAll(/^\| `(SHOAL_ERR_[A-Z_]+)`/gm)].map((m) => m[1]!).sort();
}

describe('README error table', () => {
  it('lists exactly the codes the validators throw', () => {
    const seen = new Set<string>();
    for (const fn of [
      () => validateHello({}),
      () => validateReport({ intervalMs: 0 }),
      () => validateDirective({ desiredReplicas: -1 }),
      () => reportFromJson('not json'),
    ]) {
      try {
        fn();
        assert.fail('should throw');
      } catch (error) {
        seen.add((error as { code: string }).code);
      }
    }
    assert.deepEqual([...seen].sort(), documentedCodes());
  });
});
