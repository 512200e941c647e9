// Internals of @shoal/grpc for its own tests: not a public API, may change in any release.
export { POLICY_CONFIG_KEYS } from './policy-config.js';
