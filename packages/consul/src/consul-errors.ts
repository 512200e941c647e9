import {
  AbortedError,
  ConsulPermissionError,
  ConsulRequestError,
  ConsulUnavailableError,
  type ShoalError,
} from '@shoal/core';

/**
 * Turns what the `consul` npm client (papi underneath) throws into a Shoal error with a stable code.
 *
 * papi's messages are unreliable for classification (a text body longer than 80 characters is replaced by the
 * status text), so this reads `statusCode` and the body, never the message.
 */
interface PapiLikeError {
  isPapi?: boolean;
  isResponse?: boolean;
  isValidation?: boolean;
  isAbort?: boolean;
  isTimeout?: boolean;
  isCodec?: boolean;
  code?: unknown;
  message?: unknown;
  response?: { statusCode?: number; body?: unknown };
}

const STATUS = Symbol.for('shoal.consul.statusCode');

/** The HTTP status Consul answered with, when the error came from a response. */
export function consulStatusCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const value = (error as Record<symbol, unknown>)[STATUS];
  return typeof value === 'number' ? value : undefined;
}

function withStatus<E extends ShoalError>(error: E, status: number): E {
  Object.defineProperty(error, STATUS, { value: status, enumerable: false });
  Object.defineProperty(error, 'statusCode', { value: status, enumerable: true });
  return error;
}

/** True when the call never reached Consul: the TCP connection was refused (so nothing was applied). */
export function isConnectionRefused(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  return cause?.code === 'ECONNREFUSED';
}

/** A short, single-line excerpt of a response body for an error message (bodies never hold the token). */
export function bodyExcerpt(body: unknown, max = 200): string {
  let text: string;
  if (typeof body === 'string') text = body;
  else if (Buffer.isBuffer(body)) text = body.toString('utf8');
  else if (body === undefined || body === null) text = '';
  else {
    try {
      text = JSON.stringify(body);
    } catch {
      text = String(body);
    }
  }
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/**
 * Classifies an error thrown by a `consul` client call made for `operation` (e.g. `agent.service.register`).
 * - 403 / 401 → `ConsulPermissionError` (`SHOAL_ERR_CONSUL_PERMISSION_DENIED`), not retryable.
 * - 429 and 5xx, connection failures, timeouts, undecodable bodies → `ConsulUnavailableError`, retryable.
 * - other 4xx, a 500 for an invalid filter expression, and client-side validation → `ConsulRequestError`
 *   (`SHOAL_ERR_CONSUL_REQUEST`), not retryable.
 * - an abort we asked for → `AbortedError`.
 */
export function classifyConsulError(error: unknown, operation: string, target: string): ShoalError {
  const e = (typeof error === 'object' && error !== null ? error : {}) as PapiLikeError;
  if (e.isAbort) return new AbortedError(`consul ${operation} aborted`, { cause: error });
  if (e.isResponse && e.response && typeof e.response.statusCode === 'number') {
    const status = e.response.statusCode;
    const body = bodyExcerpt(e.response.body);
    const detail = body ? `: ${body}` : '';
    if (status === 403 || status === 401) {
      return withStatus(
        new ConsulPermissionError(
          `consul ${operation} was denied by ${target} (HTTP ${status})${detail}; check the ACL token passed as consul.token`,
          { cause: error },
        ),
        status,
      );
    }
    // Consul answers an invalid ?filter= with a 500 (hashicorp/consul#7338); retrying cannot fix it.
    if (status === 500 && /Failed to create boolean expression evaluator/i.test(body)) {
      return withStatus(
        new ConsulRequestError(`consul ${operation} was rejected by ${target}: invalid filter expression${detail}`, {
          cause: error,
        }),
        status,
      );
    }
    if (status === 429 || status >= 500) {
      return withStatus(
        new ConsulUnavailableError(`consul ${operation} failed at ${target} (HTTP ${status})${detail}`, {
          cause: error,
        }),
        status,
      );
    }
    return withStatus(
      new ConsulRequestError(`consul ${operation} was rejected by ${target} (HTTP ${status})${detail}`, {
        cause: error,
      }),
      status,
    );
  }
  if (e.isValidation) {
    return new ConsulRequestError(`consul ${operation} was not sent: ${String(e.message)}`, { cause: error });
  }
  const code = typeof e.code === 'string' ? ` (${e.code})` : '';
  const message = typeof e.message === 'string' ? e.message : String(error);
  return new ConsulUnavailableError(`consul ${operation} could not reach ${target}${code}: ${message}`, {
    cause: error,
  });
}

/** Every error code @shoal/consul produces, with what it means here (the README's error table mirrors this). */
export const CONSUL_ERROR_CODES = Object.freeze({
  SHOAL_ERR_INVALID_ARGUMENT: 'An option or argument is invalid; the message names it and the value received.',
  SHOAL_ERR_CONSUL_UNAVAILABLE:
    'Consul could not be reached, timed out, or answered 429/5xx. Retryable: registration, heartbeats and watches retry with backoff.',
  SHOAL_ERR_CONSUL_PERMISSION_DENIED: 'Consul answered 401/403: the ACL token is missing, unknown or lacks permission.',
  SHOAL_ERR_CONSUL_REQUEST:
    'Consul rejected the request: another 4xx, or an invalid filter expression (which Consul answers with a 500).',
  SHOAL_ERR_CLOSED: 'The registration or watcher was closed (e.g. register() pending when close() was called).',
  SHOAL_ERR_ABORTED: 'A Consul call was aborted by its caller.',
} as const);
