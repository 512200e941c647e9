// Internals of @shoal/grpc for its own tests: not a public API, may change in any release.
export { POLICY_CONFIG_KEYS, resolvePolicyConfig } from './policy-config.js';
export { parseConsulTarget, parseConsulTargetString } from './consul-target.js';
export { grpcJsVersion } from './grpc-js-compat.js';
