import { createRequire } from 'node:module';
import type * as grpc from '@grpc/grpc-js';
import type { Server, ServerInterceptor } from '@grpc/grpc-js';
import { isGrpcServerFault, isUncountedGrpcMethod, markGrpcCallCounted, type GrpcCallCounter } from '@shoal/core';
import { finishRequest, type RequestGate } from './request-gate.js';

/**
 * A grpc-js server interceptor that counts every call: `new grpc.Server({ interceptors: [agent.grpcInterceptor()] })`.
 * A call ends when its status is sent (a failure when the code is a server fault, `isGrpcServerFault`), or when
 * the client cancels it (a failure only if the server had not answered). `grpc.health.v1.Health` calls are not
 * counted (a Watch stream is not work, and must not hold a drain). The calls it counts are marked
 * (`markGrpcCallCounted`), so `@shoal/grpc`'s load reporter on the same server counts nothing more and reads its
 * figures from the agent.
 */
export function createGrpcInterceptor(gate: RequestGate): ServerInterceptor {
  // Loaded here, not at import: an application asking for the interceptor already has grpc-js (a peer dependency).
  const { ServerInterceptingCall } = createRequire(import.meta.url)('@grpc/grpc-js') as typeof grpc;
  const tracker = gate.tracker;
  const counter: GrpcCallCounter = {
    get inFlight() {
      return Math.max(0, tracker.inFlight);
    },
    get requests() {
      return tracker.totals().requests;
    },
    get errors() {
      return tracker.totals().errors;
    },
  };
  return (method, call) => {
    if (isUncountedGrpcMethod(method.path)) return new ServerInterceptingCall(call);
    const start = tracker.begin();
    let done = false;
    const finish = (failed: boolean) => {
      if (done) return;
      done = true;
      finishRequest(gate, start, failed);
    };
    const intercepting = new ServerInterceptingCall(call, {
      start(next) {
        next({
          onCancel() {
            finish(true);
          },
        });
      },
      sendStatus(statusObject, next) {
        finish(isGrpcServerFault(statusObject.code));
        next(statusObject);
      },
    });
    // Both sides: an instrumentation listed before this one sees `call`, one listed after sees `intercepting`.
    markGrpcCallCounted(call, counter);
    markGrpcCallCounted(intercepting, counter);
    return intercepting;
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
