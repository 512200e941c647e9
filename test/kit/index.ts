/**
 * The private test kit shared by every package's tests and the cross-package tests: import it by relative path
 * (`../../../test/kit/index.js`). Nothing here is published.
 */
export { waitFor, nextEvent, type Pending, type Subscribe, type WaitOptions } from './wait.js';
export { freePort, isAlive, survivors } from './process.js';
export { packWorkspaces, pinnedVersions, publicPackages, ROOT } from './packages.js';
export { YAML_ALIAS_BOMB } from './fixtures.js';
