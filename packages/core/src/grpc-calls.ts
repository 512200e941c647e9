/**
 * What Shoal's gRPC server instrumentations (`@shoal/agent`'s interceptor and `@shoal/grpc`'s load reporter)
 * agree on: which status codes are the server's fault, which calls are not work, and how two of them installed on
 * one server count each call once. Plain numbers and a symbol: core loads no gRPC library.
 */

/**
 * gRPC status codes that count as the server's failure (as HTTP 5xx): UNKNOWN (2), DEADLINE_EXCEEDED (4),
 * RESOURCE_EXHAUSTED (8), UNIMPLEMENTED (12), INTERNAL (13), UNAVAILABLE (14), DATA_LOSS (15). Codes that describe
 * the client's request or choice — OK, CANCELLED (by the client), INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
 * PERMISSION_DENIED, UNAUTHENTICATED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE — do not, as a 4xx does not. A
 * call the client cancels before the server answered is counted as a failure by the instrumentations (the server
 * may have been too slow), whatever the code.
 */
export const GRPC_SERVER_FAULT_CODES: ReadonlySet<number> = new Set([2, 4, 8, 12, 13, 14, 15]);

/** True when a call that ended with `code` counts as the server's failure (see GRPC_SERVER_FAULT_CODES). */
export function isGrpcServerFault(code: number): boolean {
  return GRPC_SERVER_FAULT_CODES.has(code);
}

/**
 * Calls that are not work and are not counted (in flight, requests, latency): the `grpc.health.v1.Health` service.
 * A health `Watch` stream lives as long as the client, so counting it would inflate the in-flight load and hold a
 * drain up to its deadline.
 */
export function isUncountedGrpcMethod(path: string): boolean {
  return path.startsWith('/grpc.health.v1.Health/');
}

/** Running totals of a gRPC server instrumentation. */
export interface GrpcCallCounter {
  readonly inFlight: number;
  /** Calls finished since start. */
  readonly requests: number;
  /** Of which server faults (or cancelled before an answer). */
  readonly errors: number;
}

/**
 * The mark an instrumentation that counts a call puts on the call objects it sees, so that another Shoal
 * instrumentation on the same server (in either order) counts nothing and reads its figures from the counter
 * instead. `Symbol.for` makes it shared by every copy of `@shoal/core` in the process.
 */
export const GRPC_CALL_COUNTER: unique symbol = Symbol.for('shoal.grpc.call-counter') as never;

/** Marks `call` as counted by `counter`. */
export function markGrpcCallCounted(call: object, counter: GrpcCallCounter): void {
  (call as { [GRPC_CALL_COUNTER]?: GrpcCallCounter })[GRPC_CALL_COUNTER] = counter;
}

/** The counter that already counts `call`, if any. */
export function grpcCallCounterOf(call: object): GrpcCallCounter | undefined {
  return (call as { [GRPC_CALL_COUNTER]?: GrpcCallCounter })[GRPC_CALL_COUNTER];
}
