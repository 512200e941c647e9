/**
 * The client interceptor that wakes a service from zero (issue #20). A call that starts while the service's Consul
 * watch lists no healthy instance is held here, before grpc-js sees it (its channel would fail it at once with "no
 * addresses resolved"): the `Activator` counts it as waiting and tells the coordinator, and the call starts as
 * soon as an instance passes. It fails with UNAVAILABLE `SHOAL_ERR_COLD_START_TIMEOUT: ...` when none passes within
 * the activator's `maxWaitMs`, or DEADLINE_EXCEEDED when the call's own deadline comes first.
 *
 * Calls to a service with instances pass straight through: one array-length check per call.
 */
import * as grpc from '@grpc/grpc-js';
import type { Activator, Watch } from '@shoal/consul';
import { isShoalError } from '@shoal/core';

function remainingMs(deadline: grpc.Deadline | undefined): number {
  if (deadline === undefined) return Infinity;
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return at === Infinity ? Infinity : at - Date.now();
}

function statusFor(error: unknown, deadlineBound: boolean): { code: grpc.status; details: string } {
  if (isShoalError(error)) {
    if (error.code === 'SHOAL_ERR_ABORTED') return { code: grpc.status.CANCELLED, details: 'Cancelled on client' };
    if (error.code === 'SHOAL_ERR_COLD_START_TIMEOUT' && deadlineBound) {
      return {
        code: grpc.status.DEADLINE_EXCEEDED,
        details: `Deadline exceeded while waiting for a wake: ${error.message}`,
      };
    }
    return { code: grpc.status.UNAVAILABLE, details: `${error.code}: ${error.message}` };
  }
  return { code: grpc.status.UNAVAILABLE, details: `waiting for a wake failed: ${(error as Error).message}` };
}

/** The interceptor for one client: its calls wait on `watch` (the target service's instances) through `activator`. */
export function activatorInterceptor(activator: Activator, watch: Watch): grpc.Interceptor {
  return (options, nextCall) => {
    const next = nextCall(options);
    let waiting: AbortController | undefined;
    let userListener: grpc.InterceptingListener | undefined;
    let ended = false;
    const end = (status: { code: grpc.status; details: string }) => {
      if (ended) return;
      ended = true;
      userListener?.onReceiveStatus({ ...status, metadata: new grpc.Metadata() });
    };
    const requester: grpc.Requester = {
      start(metadata, listener, startNext) {
        const list = watch.current();
        const left = remainingMs(options.deadline);
        if ((list !== undefined && list.length > 0) || left <= 0) {
          startNext(metadata, listener);
          return;
        }
        userListener = listener as grpc.InterceptingListener;
        const controller = new AbortController();
        waiting = controller;
        const deadlineBound = left < activator.options.maxWaitMs;
        activator.waitForInstance(watch, controller.signal, left).then(
          () => {
            waiting = undefined;
            if (ended) return;
            if (remainingMs(options.deadline) <= 0) {
              end({ code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded while waiting for a wake' });
              next.cancelWithStatus(grpc.status.CANCELLED, 'ended while waiting for a wake');
              return;
            }
            // The resolver hears of the instance from the same watch: let its update reach the channel first.
            setImmediate(() => {
              if (!ended) startNext(metadata, listener);
            });
          },
          (error: unknown) => {
            waiting = undefined;
            end(statusFor(error, deadlineBound));
            next.cancelWithStatus(grpc.status.CANCELLED, 'ended while waiting for a wake');
          },
        );
      },
      cancel(cancelNext) {
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          end({ code: grpc.status.CANCELLED, details: 'Cancelled on client' });
          w.abort();
        }
        cancelNext();
      },
    };
    return new grpc.InterceptingCall(next, requester);
  };
}
