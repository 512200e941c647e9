/**
 * Relative links in the user guide pages and example READMEs point at files that exist (anchors are not checked).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PAGES = [
  'docs/README.md',
  'docs/getting-started.md',
  'docs/concepts.md',
  'docs/choosing-a-strategy.md',
  'docs/metrics-reference.md',
  'docs/troubleshooting.md',
  'examples/README.md',
  'examples/demo/README.md',
  'examples/http-orders/README.md',
  'examples/monitoring/README.md',
];

/** Markdown links outside code blocks and inline code: `[text](target)`. */
function relativeLinks(markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
  const links: string[] = [];
  for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
    links.push(target.replace(/#.*$/, ''));
  }
  return links;
}

describe('docs: relative links resolve', () => {
  for (const page of PAGES) {
    it(page, () => {
      const file = join(root, page);
      const broken = relativeLinks(readFileSync(file, 'utf8')).filter((l) => !existsSync(resolve(dirname(file), l)));
      assert.deepEqual(broken, []);
    });
  }
});
