/**
 * The stable error codes the dispatcher reports (all defined in `@shoal/core`). The README's error table lists
 * exactly these; `test/errors.test.ts` keeps the two in sync. Errors from undici (connection refused, reset, ...)
 * reach the caller unchanged when a request cannot be retried.
 */
export const HTTP_ERROR_CODES = {
  SHOAL_ERR_INVALID_ARGUMENT:
    'An option is invalid (thrown by createDispatcher), or an https:// origin names a service.',
  SHOAL_ERR_NO_ENDPOINTS: 'The service has no healthy instance (or every one was already tried by this request).',
  SHOAL_ERR_TIMEOUT: "The service's first instance list did not arrive within resolveTimeoutMs.",
  SHOAL_ERR_CLOSED: 'A request was dispatched after close() or destroy().',
  SHOAL_ERR_COLD_START_TIMEOUT:
    'A request (activator on) waited for a service at zero and no instance passed within the activator maxWaitMs.',
} as const;
