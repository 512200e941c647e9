// Public API of @shoal/http.
export { ShoalDispatcher, createDispatcher, resolveDispatcherOptions } from './dispatcher.js';
export type { ShoalDispatcherOptions, RetryOptions } from './dispatcher.js';
export { ServiceNameResolver } from './service-name.js';
export type { ServiceRoute } from './service-name.js';
export { LOAD_HEADER, parseLoadHeader, formatLoadHeader } from './load-header.js';
export type { HeaderLoad } from './load-header.js';
export { HTTP_ERROR_CODES } from './errors.js';
