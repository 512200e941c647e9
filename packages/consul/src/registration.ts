import {
  AbortedError,
  Backoff,
  ClosedError,
  ConsulUnavailableError,
  EventEmitter,
  assertOneOf,
  describeValue,
  errorFields,
  isShoalError,
  InvalidArgumentError,
  sleep,
  type Event,
  type Instance,
  type Logger,
  type ShoalError,
  type TimerHandle,
} from '@shoal/core';
import { ConsulClient, type CheckStatus, type ServiceDefinition } from './consul-client.js';
import { consulStatusCode, isConnectionRefused } from './consul-errors.js';
import { consulMetrics, errorCode, REGISTRATION_STATES, type ConsulMetrics } from './metrics.js';
import {
  goDuration,
  resolveServiceRegistrationOptions,
  type ResolvedServiceRegistrationOptions,
  type ServiceRegistrationOptions,
} from './registration-options.js';

export type RegistrationState = 'idle' | 'registering' | 'registered' | 'failed' | 'closed';

/**
 * One instance of a service, kept registered in the local Consul agent.
 *
 * `register()` resolves once Consul has the instance (and, for the default TTL check, its first passing
 * heartbeat), retrying with full-jitter backoff while Consul is unreachable. Heartbeats every TTL/3 keep the check
 * passing; when Consul answers that it does not know the check (agent restarted, instance reaped), the
 * registration registers again at once. `close()` stops every timer and deregisters, bounded by `closeTimeoutMs`.
 */
export class ServiceRegistration {
  readonly options: ResolvedServiceRegistrationOptions;
  readonly id: string;
  readonly instance: Instance;
  readonly checkId: string;

  private readonly client: ConsulClient;
  private readonly metrics: ConsulMetrics;
  private readonly log: Logger;
  private readonly stateEmitter: EventEmitter<RegistrationState>;
  private readonly errorEmitter: EventEmitter<Error>;
  private readonly abort = new AbortController();
  private readonly heartbeatBackoff: Backoff;
  private currentState: RegistrationState = 'idle';
  private status: CheckStatus = 'passing';
  private note: string | undefined;
  private registerPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private heartbeatTimer: TimerHandle | undefined;
  private beating: Promise<void> | undefined;
  /** False while every register attempt was refused at the TCP level (so close() has nothing to deregister). */
  private mayBeRegistered = false;

  constructor(options: ServiceRegistrationOptions) {
    this.options = resolveServiceRegistrationOptions(options);
    this.instance = this.options.instance;
    this.id = this.instance.id;
    this.checkId = `service:${this.id}`;
    this.client = new ConsulClient(this.options.consul, this.options.clock);
    this.metrics = consulMetrics(this.options.registry);
    this.log = this.options.logger;
    const onListenerError = (error: unknown) =>
      this.log.error(errorFields(error), 'a registration listener threw; the registration goes on');
    this.stateEmitter = new EventEmitter(onListenerError);
    this.errorEmitter = new EventEmitter(onListenerError);
    this.heartbeatBackoff = new Backoff(this.options.backoff);
    this.setMetricState('idle');
  }

  /** 'idle' (not asked yet), 'registering', 'registered', 'failed' (a non-retryable error), 'closed'. */
  get state(): RegistrationState {
    return this.currentState;
  }

  readonly onStateChange: Event<RegistrationState> = (listener) => this.stateEmitter.event(listener);

  /** Every failed Consul call (register attempt, heartbeat, deregister); the registration keeps going. */
  readonly onError: Event<Error> = (listener) => this.errorEmitter.event(listener);

  /** The body sent to `PUT /v1/agent/service/register`. */
  definition(): ServiceDefinition {
    const { instance, check, weights, deregisterCriticalServiceAfterMs } = this.options;
    const Check: Record<string, string | boolean> = {
      CheckID: this.checkId,
      Name: `Service '${instance.service}' check`,
      DeregisterCriticalServiceAfter: goDuration(deregisterCriticalServiceAfterMs),
    };
    if (check.kind === 'ttl') {
      Check.TTL = goDuration(check.ttlMs);
    } else {
      Check[check.kind === 'http' ? 'HTTP' : check.kind === 'tcp' ? 'TCP' : 'GRPC'] = check.target;
      Check.Interval = goDuration(check.intervalMs);
      if (check.timeoutMs !== undefined) Check.Timeout = goDuration(check.timeoutMs);
      if (check.grpcUseTls !== undefined) Check.GRPCUseTLS = check.grpcUseTls;
    }
    return {
      ID: instance.id,
      Name: instance.service,
      Address: instance.address,
      Port: instance.port,
      Tags: [...instance.tags],
      Meta: { ...instance.meta },
      Weights: { Passing: weights.passing, Warning: weights.warning },
      Check,
    };
  }

  /**
   * Registers the instance; resolves once Consul has it. Retries with backoff while Consul is unreachable or
   * failing (each failure goes to `onError` and the log). Rejects with `ConsulPermissionError` / `ConsulRequestError`
   * when Consul refuses the registration, and with `ClosedError` if `close()` is called first. Calling it again
   * returns the same promise.
   */
  register(): Promise<void> {
    if (this.closePromise) return Promise.reject(new ClosedError(`registration of ${this.id} is closed`));
    if (!this.registerPromise) {
      this.registerPromise = this.registerUntilDone('initial').then(
        () => {
          this.setState('registered');
          this.scheduleHeartbeat(this.heartbeatInterval());
        },
        (error: unknown) => {
          this.registerPromise = undefined;
          if (!this.closePromise) this.setState('failed');
          throw error;
        },
      );
    }
    return this.registerPromise;
  }

  /**
   * Sets the TTL check's status (and its output `note`); the heartbeats keep sending it until changed. Resolves
   * once Consul has it; if Consul cannot be reached it rejects, and the next heartbeat sends the status again. Before
   * `register()` it only records the status. Only for TTL checks.
   */
  async setStatus(status: CheckStatus, note?: string): Promise<void> {
    assertOneOf('status', status, ['passing', 'warning', 'critical'] as const);
    if (note !== undefined && (typeof note !== 'string' || note.length > 4096)) {
      throw new InvalidArgumentError(`note must be a string of at most 4096 characters, got ${describeValue(note)}`);
    }
    if (this.options.check.kind !== 'ttl') {
      throw new InvalidArgumentError(
        `setStatus needs a TTL check; this registration uses a ${this.options.check.kind} check that Consul runs itself`,
      );
    }
    if (this.closePromise) throw new ClosedError(`registration of ${this.id} is closed`);
    this.status = status;
    this.note = note;
    if (this.currentState !== 'registered') return;
    await this.client.updateTtlCheck(this.checkId, status, note, { signal: this.abort.signal });
  }

  /** Stops every timer, aborts a pending register(), deregisters (bounded by closeTimeoutMs). Never rejects. */
  close(): Promise<void> {
    if (!this.closePromise) this.closePromise = this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.abort.abort();
    this.options.clock.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    await this.beating;
    await this.registerPromise?.catch(() => {});
    if (this.mayBeRegistered) await this.deregister();
    this.setState('closed');
    this.client.destroy();
    this.stateEmitter.clear();
    this.errorEmitter.clear();
  }

  private async deregister(): Promise<void> {
    const { clock, closeTimeoutMs } = this.options;
    const deadline = clock.monotonic() + closeTimeoutMs;
    const backoff = new Backoff({ ...this.options.backoff, maxAttempts: Number.POSITIVE_INFINITY });
    for (;;) {
      const left = Math.ceil(deadline - clock.monotonic());
      if (left <= 0) break;
      try {
        await this.client.deregisterService(this.id, { timeoutMs: left });
        this.log.info('deregistered from consul');
        return;
      } catch (error) {
        if (consulStatusCode(error) === 404) {
          this.log.info('consul no longer had the instance; nothing to deregister');
          return;
        }
        this.reportError(error);
        if (!(isShoalError(error) && error.retryable)) break;
        const remaining = deadline - clock.monotonic();
        if (remaining <= 0) break;
        // Not unref'd: close() is bounded, and the process must not exit half-way through it.
        await sleep(clock, Math.min(backoff.next() ?? 0, remaining));
      }
    }
    this.log.warn(
      { closeTimeoutMs },
      'could not deregister from consul before closeTimeoutMs; the check will go critical and Consul will reap the instance',
    );
  }

  /** Registers (and sends the first heartbeat), retrying retryable failures until it works or the registration closes. */
  private async registerUntilDone(reason: 'initial' | 'forgotten'): Promise<void> {
    const backoff = new Backoff(this.options.backoff);
    this.setState('registering');
    for (;;) {
      if (this.abort.signal.aborted)
        throw new ClosedError(`registration of ${this.id} was closed before Consul had it`);
      try {
        await this.client.registerService(this.definition(), { signal: this.abort.signal }).catch((error: unknown) => {
          // Unless the connection was refused outright, Consul may have applied the registration. An attempt cut
          // short by close() after refused ones is taken as refused too (Consul is still down); a first attempt
          // cut short may have landed.
          if (this.abort.signal.aborted ? backoff.attempts === 0 : !isConnectionRefused(error)) {
            this.mayBeRegistered = true;
          }
          throw error;
        });
        this.mayBeRegistered = true;
        if (this.options.check.kind === 'ttl') {
          await this.client.updateTtlCheck(this.checkId, this.status, this.note, { signal: this.abort.signal });
        }
        this.log.info(
          { address: this.instance.address, port: this.instance.port, reason, attempts: backoff.attempts + 1 },
          'registered in consul',
        );
        this.heartbeatBackoff.reset();
        return;
      } catch (error) {
        if (this.abort.signal.aborted) {
          throw new ClosedError(`registration of ${this.id} was closed before Consul had it`, { cause: error });
        }
        const shoal = toShoalError(error);
        this.metrics.registrationFailures.inc({ service: this.instance.service, code: shoal.code });
        if (!shoal.retryable) {
          this.log.error({ ...errorFields(shoal), reason }, 'consul refused the registration; giving up');
          this.emitError(shoal);
          throw shoal;
        }
        const delay = backoff.next() ?? this.options.backoff.capMs;
        this.log.warn(
          { ...errorFields(shoal), reason, attempt: backoff.attempts, retryInMs: delay },
          'could not register in consul; retrying',
        );
        this.emitError(shoal);
        try {
          await sleep(this.options.clock, delay, this.abort.signal, true);
        } catch {
          throw new ClosedError(`registration of ${this.id} was closed before Consul had it`, { cause: shoal });
        }
      }
    }
  }

  private heartbeatInterval(): number {
    const check = this.options.check;
    return check.kind === 'ttl' ? check.heartbeatIntervalMs : check.presenceIntervalMs;
  }

  private scheduleHeartbeat(ms: number): void {
    if (this.closePromise) return;
    this.options.clock.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = this.options.clock.setTimeout(() => {
      this.heartbeatTimer = undefined;
      this.beating = this.beat().finally(() => {
        this.beating = undefined;
      });
    }, ms);
    this.heartbeatTimer.unref();
  }

  /** One heartbeat (TTL) or presence check (other checks). Never rejects. */
  private async beat(): Promise<void> {
    const signal = this.abort.signal;
    try {
      if (this.options.check.kind === 'ttl') {
        await this.client.updateTtlCheck(this.checkId, this.status, this.note, { signal });
      } else {
        const ids = await this.client.agentServiceIds({ signal });
        if (!ids.has(this.id)) throw new ForgottenError();
      }
      this.heartbeatBackoff.reset();
      this.scheduleHeartbeat(this.heartbeatInterval());
    } catch (error) {
      if (this.closePromise) return;
      if (error instanceof ForgottenError || isForgotten(error)) {
        this.log.warn(
          { status: consulStatusCode(error) },
          'consul no longer knows this instance (agent restarted or instance reaped); registering again',
        );
        this.metrics.reregistrations.inc({ service: this.instance.service });
        try {
          await this.registerUntilDone('forgotten');
          this.setState('registered');
          this.scheduleHeartbeat(this.heartbeatInterval());
        } catch {
          // Already logged and emitted by registerUntilDone. A later register() starts over.
          this.registerPromise = undefined;
          if (!this.closePromise) this.setState('failed');
        }
        return;
      }
      const shoal = toShoalError(error);
      this.metrics.heartbeatFailures.inc({ service: this.instance.service, code: errorCode(shoal) });
      const delay = Math.min(this.heartbeatInterval(), this.heartbeatBackoff.next() ?? this.heartbeatInterval());
      this.log.warn(
        { ...errorFields(shoal), attempt: this.heartbeatBackoff.attempts, retryInMs: delay },
        'consul heartbeat failed; retrying',
      );
      this.emitError(shoal);
      this.scheduleHeartbeat(delay);
    }
  }

  private reportError(error: unknown): void {
    const shoal = toShoalError(error);
    this.log.warn(errorFields(shoal), 'consul deregistration failed');
    this.emitError(shoal);
  }

  private emitError(error: Error): void {
    this.errorEmitter.emit(error);
  }

  private setState(state: RegistrationState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.setMetricState(state);
    this.stateEmitter.emit(state);
  }

  private setMetricState(state: RegistrationState): void {
    for (const s of REGISTRATION_STATES) {
      this.metrics.registrationState.set(
        { service: this.instance.service, instance_id: this.id, state: s },
        s === state ? 1 : 0,
      );
    }
  }
}

class ForgottenError extends Error {
  constructor() {
    super('the agent does not list this instance');
  }
}

/** 404 on a check update is "unknown check"; some Consul versions answered 500 "Unknown check ID" instead. */
function isForgotten(error: unknown): boolean {
  const status = consulStatusCode(error);
  if (status === 404) return true;
  return status === 500 && error instanceof Error && /unknown check/i.test(error.message);
}

function toShoalError(error: unknown): ShoalError {
  if (isShoalError(error)) return error;
  if (error instanceof AbortedError) return error;
  return new ConsulUnavailableError(String((error as Error)?.message ?? error), { cause: error });
}
