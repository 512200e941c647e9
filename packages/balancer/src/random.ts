// The seeded generator lives in @shoal/core (one for the project); the balancer re-exports it for its users.
export { createRandom } from '@shoal/core';
export type { RandomSource } from '@shoal/core';
