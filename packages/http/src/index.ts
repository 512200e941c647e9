// Public API of @shoal/http.
export { ShoalDispatcher, createDispatcher } from './dispatcher.js';
export { resolveDispatcherOptions, DEFAULT_PER_TRY_TIMEOUT_MS } from './dispatcher-options.js';
export type {
  ShoalDispatcherOptions,
  HttpRetryOptions,
  HedgeOptions,
  ResolvedDispatcherOptions,
  ResolvedRetry,
} from './dispatcher-options.js';
export type { ServiceRoute, OriginTarget } from './service-name.js';
export { LOAD_HEADER, parseLoadHeader, formatLoadHeader } from './load-header.js';
export type { HeaderLoad } from './load-header.js';
export { HTTP_ERROR_CODES } from './errors.js';
