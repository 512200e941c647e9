/**
 * Relative links in the user guide pages and example READMEs point at files that exist (anchors are not checked).
 * The published packages' READMEs are read on the npm website, where only the package's own files exist: their
 * relative links stay inside the package and point at files it ships, and they have no absolute link to a
 * placeholder or local address (the packages name no repository URL, so nothing can link into one).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
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
  'docs/scale-to-zero.md',
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

/** Every link target outside code: inline `[text](target)`, reference `[id]: target`, HTML href/src. */
function allLinks(markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
  return [
    ...[...prose.matchAll(/\]\(<?([^)\s>]+)>?(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!),
    ...[...prose.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!),
    ...[...prose.matchAll(/\b(?:href|src)=["']([^"']+)["']/g)].map((m) => m[1]!),
  ];
}

/** Why a link in a published package's README would not work on the npm website, or undefined. */
function npmLinkProblem(packageDir: string, files: string[], target: string): string | undefined {
  if (target.startsWith('#')) return undefined;
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
    if (/^mailto:/i.test(target)) return undefined;
    if (!/^https:\/\//i.test(target)) return 'not https';
    const host = new URL(target).hostname;
    if (/(^|\.)(example\.(invalid|com|org)|invalid|localhost)$/.test(host) || /^127\.|^\[?::1/.test(host)) {
      return `placeholder or local host ${host}`;
    }
    return undefined;
  }
  const path = resolve(packageDir, target.replace(/[#?].*$/, ''));
  if (!path.startsWith(`${packageDir}/`)) return 'outside the package (dead on the npm website)';
  if (!existsSync(path)) return 'no such file';
  const top = path.slice(packageDir.length + 1).split('/')[0]!;
  const shipped = ['README.md', 'LICENSE', 'package.json'].includes(top) || files.some((f) => f === top);
  return shipped ? undefined : `${top} is not in the package's "files"`;
}

describe('package READMEs: every link works on the npm website', () => {
  for (const dir of readdirSync(join(root, 'packages'))) {
    const packageDir = join(root, 'packages', dir);
    const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
      name: string;
      private?: boolean;
      files?: string[];
    };
    if (pkg.private || !existsSync(join(packageDir, 'README.md'))) continue;
    it(pkg.name, () => {
      const links = allLinks(readFileSync(join(packageDir, 'README.md'), 'utf8'));
      const problems = links
        .map((l) => [l, npmLinkProblem(packageDir, pkg.files ?? [], l)] as const)
        .filter(([, problem]) => problem !== undefined)
        .map(([l, problem]) => `${l}: ${problem}`);
      assert.deepEqual(problems, []);
    });
  }

  it('finds the links it judges (a relative link out of the package is caught)', () => {
    const dir = join(root, 'packages', 'agent');
    assert.deepEqual(allLinks('see [x](../../docs/a.md)\n[y]: ./dist/index.js\n<a href="https://example.invalid/r">'), [
      '../../docs/a.md',
      './dist/index.js',
      'https://example.invalid/r',
    ]);
    assert.match(npmLinkProblem(dir, ['dist'], '../../docs/protocol.md') ?? '', /outside the package/);
    assert.match(npmLinkProblem(dir, ['dist'], 'https://example.invalid/shoal') ?? '', /placeholder/);
    assert.match(npmLinkProblem(dir, ['dist'], 'test') ?? '', /not in the package/);
    assert.equal(npmLinkProblem(dir, ['dist'], 'README.md'), undefined);
  });
});

describe('docs: relative links resolve', () => {
  for (const page of PAGES) {
    it(page, () => {
      const file = join(root, page);
      const broken = relativeLinks(readFileSync(file, 'utf8')).filter((l) => !existsSync(resolve(dirname(file), l)));
      assert.deepEqual(broken, []);
    });
  }
});
