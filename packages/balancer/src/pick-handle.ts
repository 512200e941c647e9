import type { Instance } from '@shoal/core';
import type { EndpointState, EndpointLoad } from './endpoint.js';

export type PickOutcome = 'success' | 'failure';

/** The result of a pick: call `instance`, then report how it went. */
export interface PickHandle {
  readonly instance: Instance;
  /**
   * Reports the call's outcome and latency (ms), optionally with the load the server reported. Idempotent: only
   * the first call counts. Throws InvalidArgumentError for an unknown outcome or a negative/NaN latency.
   */
  complete(outcome: PickOutcome, latencyMs: number, load?: EndpointLoad): void;
}

/** @internal What a handle reports back to. */
export interface HandleOwner {
  completeHandle(handle: Handle, outcome: PickOutcome, latencyMs: number, load: EndpointLoad | undefined): void;
}

/** @internal The one object a pick allocates. */
export class Handle implements PickHandle {
  done = false;
  constructor(
    readonly instance: Instance,
    readonly endpoint: EndpointState,
    readonly generation: number,
    private readonly owner: HandleOwner,
  ) {}

  complete(outcome: PickOutcome, latencyMs: number, load?: EndpointLoad): void {
    if (this.done) return;
    this.owner.completeHandle(this, outcome, latencyMs, load);
  }
}
