import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError, assertInteger, assertKnownKeys, assertObject, describeValue } from '@shoal/core';
import { Status } from './grpc-js-compat.js';

/**
 * A per-attempt timeout for idempotent unary methods (`createClient`'s `perTryTimeout`): when an attempt has no
 * answer after `timeoutMs`, the call is sent again beside it — the policy picks again, and its in-flight count
 * steers the new attempt elsewhere — up to `maxAttempts` attempts, all within the call's own deadline; the first
 * answer wins and the other attempts are cancelled. Each attempt after the first takes one retry from the policy's
 * retry budget (it carries `grpc-previous-rpc-attempts`, as grpc-js's own retries do); one refused by the budget
 * fails at once with UNAVAILABLE, and the call keeps waiting for the attempts still running.
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

/** Statuses after which a call still waits for its other attempts (one of them may yet answer). */
const TRANSIENT = new Set<number>([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED, Status.RESOURCE_EXHAUSTED]);
/**
 * A per-try timer this late (ms) fired after a stall of the client's own event loop: the answer may be waiting
 * unread in the socket, so it is read (the next turn of the loop) before another attempt goes out.
 */
const STALL_MS = 50;

interface Attempt {
  readonly call: InterceptingCallInterface;
  received?: grpc.Metadata;
  message?: { value: unknown };
}

/**
 * The call the interceptor hands to grpc-js: it runs attempts through `nextCall` (below it, the channel's own
 * retries and hedging, then the policy's pick) and passes up only the attempt that ends the call.
 *
 * An attempt without an answer after `timeoutMs` is not abandoned: another attempt goes out beside it (Envoy's
 * `hedge_on_per_try_timeout`), and the first answer wins (the others are cancelled). So an attempt refused by the
 * retry budget, or a slow answer that arrives just after the timeout, costs nothing: the call keeps waiting for the
 * attempts still running, up to its own deadline.
 */
class PerTryCall implements InterceptingCallInterface {
  private attempts = 0;
  private readonly live: Attempt[] = [];
  private metadata: grpc.Metadata | undefined;
  private listener: Partial<grpc.InterceptingListener> | undefined;
  private message: { context: object; value: unknown } | undefined;
  private halfClosed = false;
  private cancelled = false;
  private finished = false;
  private timer: NodeJS.Timeout | undefined;
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
    const call = this.nextCall(this.options);
    const attempt: Attempt = { call };
    this.live.push(attempt);
    const metadata = this.metadata!.clone();
    if (n > 1) metadata.set(PREVIOUS_ATTEMPTS, String(n - 1));
    call.start(metadata, {
      onReceiveMetadata: (m) => {
        attempt.received = m;
      },
      onReceiveMessage: (value) => {
        attempt.message = { value };
      },
      onReceiveStatus: (status) => this.onStatus(attempt, status),
    });
    if (this.message) call.sendMessageWithContext(this.message.context, this.message.value);
    if (this.halfClosed) call.halfClose();
    this.arm();
  }

  /** The per-try timer of the newest attempt, when another attempt is allowed and has time before the deadline. */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.attempts >= this.config.maxAttempts) return;
    const dueAt = Date.now() + this.config.timeoutMs;
    if (dueAt >= this.deadline) return;
    this.timer = setTimeout(() => {
      // Late: the client's own loop stalled. Answers that arrived meanwhile are read first (a 0 ms timer runs after
      // this turn's I/O), so a stall of the caller is not taken for a slow replica.
      if (Date.now() - dueAt > STALL_MS) this.timer = setTimeout(() => this.next(), 0);
      else this.next();
    }, this.config.timeoutMs);
  }

  private next(): void {
    this.timer = undefined;
    if (this.finished || this.cancelled || Date.now() >= this.deadline) return;
    this.attempt();
  }

  private onStatus(attempt: Attempt, status: grpc.StatusObject): void {
    const i = this.live.indexOf(attempt);
    if (i >= 0) this.live.splice(i, 1);
    if (this.finished) return;
    // Another attempt may still answer: a transient failure of this one (e.g. refused by the retry budget) waits.
    if (status.code !== Status.OK && TRANSIENT.has(status.code) && this.live.length > 0 && !this.cancelled) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const other of this.live.splice(0)) other.call.cancelWithStatus(Status.CANCELLED, 'another attempt answered');
    if (attempt.received) this.listener?.onReceiveMetadata?.(attempt.received);
    if (attempt.message) this.listener?.onReceiveMessage?.(attempt.message.value);
    this.listener?.onReceiveStatus?.(status);
  }

  sendMessageWithContext(context: object, message: unknown): void {
    this.message = { context, value: message };
    for (const a of this.live) a.call.sendMessageWithContext(context, message);
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext({}, message);
  }

  halfClose(): void {
    this.halfClosed = true;
    for (const a of this.live) a.call.halfClose();
  }

  startRead(): void {
    for (const a of this.live) a.call.startRead();
  }

  cancelWithStatus(status: grpc.status, details: string): void {
    this.cancelled = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const a of [...this.live]) a.call.cancelWithStatus(status, details);
  }

  getPeer(): string {
    return this.live[this.live.length - 1]?.call.getPeer() ?? '';
  }

  getAuthContext(): ReturnType<InterceptingCallInterface['getAuthContext']> {
    return this.live[this.live.length - 1]?.call.getAuthContext() ?? null;
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
