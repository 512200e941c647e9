// Internals of @shoal/consul for its own tests: not a public API, may change in any release.
export { resolveServiceWatcherOptions, resolveWatchQuery } from './watcher.js';
export { instanceFromHealthEntry } from './instance-mapping.js';
export { classifyConsulError, consulStatusCode } from './consul-errors.js';
