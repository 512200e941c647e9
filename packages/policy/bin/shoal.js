#!/usr/bin/env node
// The `shoal` command. npm links a package's bin when it is installed, which in this repository is before
// `npm run build` has written dist/; this small file exists from the start, so the link is always made.
import { readFileSync } from 'node:fs';

if (process.argv[2] === '--version' || process.argv[2] === '-V') {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${pkg.version}\n`);
} else {
  await import('../dist/cli.js');
}
