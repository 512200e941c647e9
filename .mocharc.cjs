'use strict';
// Mocha runs every package's unit tests and the cross-package tests in test/. TypeScript test files are loaded
// through tsx; the packages under test are imported from their built dist/ through their exports maps, exactly as
// users import them (so `npm test` builds first).
// SHOAL_TEST=packages/balancer runs one package's (or folder's) tests: `SHOAL_TEST=packages/balancer npx mocha`.
const only = process.env.SHOAL_TEST;
module.exports = {
  spec: only
    ? [only.endsWith('.ts') ? only : `${only.replace(/\/$/, '')}/**/*.test.ts`]
    : ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
  // test/container builds and runs the coordinator image with Docker (minutes, mostly downloads): it runs only by
  // name, `npm run test:container` (SHOAL_TEST=test/container).
  ignore: only ? [] : ['test/container/**'],
  'node-option': ['import=tsx'],
  require: ['test/support/root-hooks.ts'],
  timeout: 20000,
  reporter: 'spec',
  'forbid-only': Boolean(process.env.CI),
};
