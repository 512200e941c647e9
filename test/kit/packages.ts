import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root (where package.json with the workspaces is). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The published packages: every workspace under packages/ that is not private, by name. */
export function publicPackages(): string[] {
  return readdirSync(join(ROOT, 'packages'))
    .map((dir) => JSON.parse(readFileSync(join(ROOT, 'packages', dir, 'package.json'), 'utf8')) as PackageJson)
    .filter((pkg) => !pkg.private)
    .map((pkg) => pkg.name);
}

interface PackageJson {
  name: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/**
 * Every version in the dependency closure of `packages` as installed in this checkout, so that
 * `npm install --offline` with these as `overrides` resolves from the local cache exactly what the lockfile chose
 * (no network in tests). Names installed in more than one version are left to npm.
 */
export function pinnedVersions(packages: string[]): Record<string, string> {
  const seen = new Map<string, Set<string>>();
  const find = (from: string, name: string): string | undefined => {
    for (let d = from; ; d = dirname(d)) {
      const p = join(d, 'node_modules', name, 'package.json');
      if (existsSync(p)) return p;
      if (d === ROOT.replace(/\/$/, '') || d === '/') return undefined;
    }
  };
  const walked = new Set<string>();
  const walk = (dir: string) => {
    if (walked.has(dir)) return;
    walked.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies })) {
      if (dep.startsWith('@shoal/')) {
        walk(join(ROOT, 'packages', dep.slice('@shoal/'.length)));
        continue;
      }
      const p = find(dir, dep);
      if (!p) continue;
      const v = (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
      const versions = seen.get(dep) ?? new Set();
      versions.add(v);
      seen.set(dep, versions);
      walk(dirname(p));
    }
  };
  for (const name of packages) walk(join(ROOT, 'packages', name.slice('@shoal/'.length)));
  return Object.fromEntries([...seen].filter(([, v]) => v.size === 1).map(([k, v]) => [k, [...v][0]!]));
}

/** `npm pack`s the named workspaces (built) into `destination`; returns the tarball file names. */
export async function packWorkspaces(packages: string[], destination: string): Promise<string[]> {
  const { stdout } = await run(
    'npm',
    ['pack', ...packages.flatMap((p) => ['-w', p]), '--pack-destination', destination, '--json', '--silent'],
    { cwd: ROOT, maxBuffer: 32 * 1024 * 1024 },
  );
  return (JSON.parse(stdout) as Array<{ filename: string }>).map((t) => t.filename);
}
