// Public API of @shoal/consul-dev.
export { startConsulDev, CONSUL_VERSION } from './server.js';
export type { ConsulDevServer } from './server.js';
export { resolveConsulDevOptions } from './options.js';
export type { ConsulDevOptions, ResolvedConsulDevOptions } from './options.js';
export { formatGoDuration, parseGoDurationMs } from './duration.js';
