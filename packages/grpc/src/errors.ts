/**
 * The stable error codes this package throws (all defined in `@shoal/core`). The README's error table lists
 * exactly these; `test/errors.test.ts` keeps the two in sync. On a call path errors stay gRPC status errors
 * (UNAVAILABLE with a `details` message naming the cause).
 */
export const GRPC_ERROR_CODES = {
  SHOAL_ERR_INVALID_ARGUMENT:
    'An option, target or policy config is invalid (thrown by register, createClient, createLoadReporter, addHealthService); the message names the field and the value.',
  SHOAL_ERR_PROTOCOL: 'decodeOrcaLoadReport() got bytes that are not a valid OrcaLoadReport.',
  SHOAL_ERR_COLD_START_TIMEOUT:
    'A call (activator on) waited for a service at zero and no instance passed within maxWaitMs: UNAVAILABLE with details "SHOAL_ERR_COLD_START_TIMEOUT: ...".',
} as const;
