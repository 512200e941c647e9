// Internals of @shoal/http for its own tests and benchmarks: not a public API, may change in any release.
export { DeadlineQueue, DeadlineEntry } from './deadline-queue.js';
export { isRetryable, isReplayableRequest } from './balanced-request.js';
export { ServiceNameResolver } from './service-name.js';
