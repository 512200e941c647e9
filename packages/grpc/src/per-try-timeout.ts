import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError, assertInteger, assertKnownKeys, assertObject, describeValue } from '@shoal/core';
import { Status } from './grpc-js-compat.js';

/**
 * A per-attempt timeout for idempotent unary methods (`createClient`'s `perTryTimeout`): an attempt without an
 * answer after `timeoutMs` is abandoned (its deadline tells the server to stop too) and the call is sent again —
 * the policy picks again, so it goes elsewhere — up to `maxAttempts` attempts, all within the call's own deadline.
 * Each attempt after the first takes one retry from the policy's retry budget (it carries
 * `grpc-previous-rpc-attempts`, as grpc-js's own retries do); past the budget it fails at once with UNAVAILABLE.
 */
export interface PerTryTimeoutConfig {
  /** The idempotent methods (`{ service: 'pkg.Svc', method?: 'Get' }`; `{}` = every method). Required. */
  methods: Array<{ service?: string; method?: string }>;
  /** How long one attempt may go without an answer, ms. Default 1000. */
  timeoutMs?: number;
  /** Attempts in all, including the first (2-5). Default 3. */
  maxAttempts?: number;
}

export interface ResolvedPerTryTimeoutConfig {
  readonly methods: ReadonlyArray<{ readonly service?: string; readonly method?: string }>;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
}

export const DEFAULT_PER_TRY_TIMEOUT_MS = 1000;
export const DEFAULT_PER_TRY_MAX_ATTEMPTS = 3;
const PREVIOUS_ATTEMPTS = 'grpc-previous-rpc-attempts';

/** The call below an interceptor (grpc-js does not export its name). */
type InterceptingCallInterface = ReturnType<grpc.NextCall>;

/** Applies defaults and validates; errors name the field (`perTryTimeout.timeoutMs must be ...`). */
export function resolvePerTryTimeoutConfig(input: PerTryTimeoutConfig): ResolvedPerTryTimeoutConfig {
  assertObject('perTryTimeout', input as unknown);
  assertKnownKeys('perTryTimeout', input as unknown as Record<string, unknown>, [
    'methods',
    'timeoutMs',
    'maxAttempts',
  ]);
  if (!Array.isArray(input.methods) || input.methods.length === 0) {
    throw new InvalidArgumentError(
      `perTryTimeout.methods must be a non-empty array of { service, method? }, got ${describeValue(input.methods)}`,
    );
  }
  const methods = input.methods.map((m: unknown, i) => {
    assertObject(`perTryTimeout.methods[${i}]`, m);
    assertKnownKeys(`perTryTimeout.methods[${i}]`, m, ['service', 'method']);
    for (const key of ['service', 'method'] as const) {
      if (m[key] !== undefined && (typeof m[key] !== 'string' || m[key] === '')) {
        throw new InvalidArgumentError(
          `perTryTimeout.methods[${i}].${key} must be a non-empty string, got ${describeValue(m[key])}`,
        );
      }
    }
    if (m.method !== undefined && m.service === undefined) {
      throw new InvalidArgumentError(`perTryTimeout.methods[${i}].method needs a service, got only method ${m.method}`);
    }
    return Object.freeze({ ...(m as { service?: string; method?: string }) });
  });
  const timeoutMs = input.timeoutMs ?? DEFAULT_PER_TRY_TIMEOUT_MS;
  const maxAttempts = input.maxAttempts ?? DEFAULT_PER_TRY_MAX_ATTEMPTS;
  assertInteger('perTryTimeout.timeoutMs', timeoutMs, 1, 3_600_000);
  assertInteger('perTryTimeout.maxAttempts', maxAttempts, 2, 5);
  return Object.freeze({ methods: Object.freeze(methods), timeoutMs, maxAttempts });
}

/** Whether `path` (`/pkg.Svc/Method`) is one of `methods` (gRPC service config name matching). */
function matches(methods: ResolvedPerTryTimeoutConfig['methods'], path: string): boolean {
  const slash = path.lastIndexOf('/');
  const service = path.slice(1, slash);
  const method = path.slice(slash + 1);
  return methods.some(
    (m) => m.service === undefined || (m.service === service && (m.method === undefined || m.method === method)),
  );
}

function deadlineMs(deadline: grpc.Deadline | undefined): number {
  if (deadline === undefined) return Infinity;
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/**
 * The call the interceptor hands to grpc-js: it runs one attempt after another through `nextCall` (below it, the
 * channel's own retries and hedging, then the policy's pick) and passes up only the attempt that ends the call.
 */
class PerTryCall implements InterceptingCallInterface {
  private attempts = 0;
  private current: InterceptingCallInterface | undefined;
  private metadata: grpc.Metadata | undefined;
  private listener: Partial<grpc.InterceptingListener> | undefined;
  private message: { context: object; value: unknown } | undefined;
  private halfClosed = false;
  private cancelled = false;
  private finished = false;
  private readonly deadline: number;

  constructor(
    private readonly options: grpc.InterceptorOptions,
    private readonly nextCall: grpc.NextCall,
    private readonly config: ResolvedPerTryTimeoutConfig,
  ) {
    this.deadline = deadlineMs(options.deadline);
  }

  start(metadata: grpc.Metadata, listener?: Partial<grpc.InterceptingListener>): void {
    this.metadata = metadata;
    this.listener = listener;
    this.attempt();
  }

  private attempt(): void {
    const n = ++this.attempts;
    const attemptDeadline = Math.min(this.deadline, Date.now() + this.config.timeoutMs);
    // Only an attempt cut short by the per-try timeout (not by the call's own deadline) may be followed by another.
    const mayRetry = attemptDeadline < this.deadline && n < this.config.maxAttempts;
    const call = this.nextCall({ ...this.options, deadline: new Date(attemptDeadline) });
    this.current = call;
    const metadata = this.metadata!.clone();
    if (n > 1) metadata.set(PREVIOUS_ATTEMPTS, String(n - 1));
    let received: grpc.Metadata | undefined;
    let message: { value: unknown } | undefined;
    call.start(metadata, {
      onReceiveMetadata: (m) => {
        received = m;
      },
      onReceiveMessage: (value) => {
        message = { value };
      },
      onReceiveStatus: (status) => {
        if (n !== this.attempts || this.finished) return;
        // Checked again now: an event loop that stalled past the call's deadline leaves no time for another attempt.
        if (mayRetry && !this.cancelled && status.code === Status.DEADLINE_EXCEEDED && Date.now() < this.deadline) {
          this.attempt();
          return;
        }
        this.finished = true;
        if (received) this.listener?.onReceiveMetadata?.(received);
        if (message) this.listener?.onReceiveMessage?.(message.value);
        this.listener?.onReceiveStatus?.(status);
      },
    });
    if (this.message) call.sendMessageWithContext(this.message.context, this.message.value);
    if (this.halfClosed) call.halfClose();
  }

  sendMessageWithContext(context: object, message: unknown): void {
    this.message = { context, value: message };
    this.current?.sendMessageWithContext(context, message);
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext({}, message);
  }

  halfClose(): void {
    this.halfClosed = true;
    this.current?.halfClose();
  }

  startRead(): void {
    this.current?.startRead();
  }

  cancelWithStatus(status: grpc.status, details: string): void {
    this.cancelled = true;
    this.current?.cancelWithStatus(status, details);
  }

  getPeer(): string {
    return this.current?.getPeer() ?? '';
  }

  getAuthContext(): ReturnType<InterceptingCallInterface['getAuthContext']> {
    return this.current?.getAuthContext() ?? null;
  }
}

/**
 * The grpc-js client interceptor behind `createClient`'s `perTryTimeout`. Unary methods listed in `methods` get
 * per-attempt deadlines; every other call passes through untouched.
 */
export function perTryTimeoutInterceptor(config: ResolvedPerTryTimeoutConfig): grpc.Interceptor {
  return (options, nextCall) => {
    const definition = options.method_definition;
    if (definition.requestStream || definition.responseStream || !matches(config.methods, definition.path)) {
      return new grpc.InterceptingCall(nextCall(options));
    }
    return new grpc.InterceptingCall(new PerTryCall(options, nextCall, config));
  };
}
