import { createRequire } from 'node:module';
import type * as grpc from '@grpc/grpc-js';
import type { Server, ServerInterceptor } from '@grpc/grpc-js';
import { finishRequest, type RequestGate } from './request-gate.js';

/**
 * Status codes that count as the server's failure. Codes that describe the client's request (INVALID_ARGUMENT,
 * NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, UNAUTHENTICATED, FAILED_PRECONDITION, OUT_OF_RANGE, ABORTED,
 * CANCELLED) do not, as a 4xx does not in HTTP.
 */
export const GRPC_ERROR_CODES: ReadonlySet<number> = new Set([
  2, // UNKNOWN
  4, // DEADLINE_EXCEEDED
  8, // RESOURCE_EXHAUSTED
  12, // UNIMPLEMENTED
  13, // INTERNAL
  14, // UNAVAILABLE
  15, // DATA_LOSS
]);

/**
 * A grpc-js server interceptor that counts every call: `new grpc.Server({ interceptors: [agent.grpcInterceptor()] })`.
 * A call ends when its status is sent, or when the client cancels it (counted as a failure only if the server had
 * not answered).
 */
export function createGrpcInterceptor(gate: RequestGate): ServerInterceptor {
  // Loaded here, not at import: an application asking for the interceptor already has grpc-js (a peer dependency).
  const { ServerInterceptingCall } = createRequire(import.meta.url)('@grpc/grpc-js') as typeof grpc;
  return (_method, call) => {
    const start = gate.tracker.begin();
    let done = false;
    const finish = (failed: boolean) => {
      if (done) return;
      done = true;
      finishRequest(gate, start, failed);
    };
    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onCancel() {
            finish(true);
          },
        });
      },
      sendStatus(statusObject, next) {
        finish(GRPC_ERROR_CODES.has(statusObject.code));
        next(statusObject);
      },
    });
  };
}

/**
 * Stops a gRPC server from taking new calls while letting the running ones finish: `tryShutdown` sends GOAWAY on
 * every connection (clients move to other instances) and resolves when the last call ended.
 */
export function shutdownGrpcServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.tryShutdown(() => resolve());
  });
}
