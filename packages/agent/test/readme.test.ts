import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createAgent } from '@shoal/agent';

/** The codes listed in the README's "Error codes" table. */
function documentedCodes(): string[] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.split('## Error codes')[1]?.split('\n## ')[0] ?? '';
  return [...section.matchAll(/^\| `(SHOAL_ERR_[A-Z_]+)`/gm)].map((m) => m[1]!).sort();
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as { code: string }).code;
  }
  throw new Error('expected a throw');
}

describe('README error table', () => {
  it('lists exactly the codes the public API throws', async () => {
    const seen = new Set<string>();
    seen.add(codeOf(() => createAgent({ service: 'x', port: 0 })));
    const agent = createAgent({ service: 'x', port: 1, address: '127.0.0.1', onDrained: () => {} });
    seen.add(codeOf(() => agent.httpListener(5 as never)));
    seen.add(codeOf(() => agent.gauge('bad name', () => 1)));
    await agent.close();
    await agent.start().catch((error: { code: string }) => seen.add(error.code));
    await agent.drain(10).catch((error: { code: string }) => seen.add(error.code));
    assert.deepEqual([...seen].sort(), documentedCodes());
  });
});
