import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server as GrpcServer, ServerInterceptor } from '@grpc/grpc-js';
import {
  ClosedError,
  EventEmitter,
  InvalidArgumentError,
  assertInteger,
  componentLogger,
  errorFields,
  sleep,
  withTimeout,
  type Event,
  type Logger,
  type MetricsRegistry,
  type TimerHandle,
} from '@shoal/core';
import { LIMITS, PROTOCOL_VERSION, validateReport, type Directive, type Hello, type LoadReport } from '@shoal/protocol';
import {
  bindSignals,
  createAgentMetrics,
  createRecordingSignals,
  newRegistry,
  type AgentMetricSources,
  type AgentMetrics,
  type AgentSignals,
} from './agent-metrics.js';
import {
  resolveAgentOptions,
  type AgentOptions,
  type DrainResult,
  type ResolvedAgentOptions,
} from './agent-options.js';
import { AppMetrics, type AppCounter, type GaugeOptions } from './app-metrics.js';
import { AGENT_META_KEY, METRICS_PATH_META_KEY, METRICS_PORT_META_KEY } from './consul-metadata.js';
import { GrpcReportTransport } from './report-transport-grpc.js';
import { HttpReportTransport } from './report-transport-http.js';
import { Reporter, type BreakerState } from './reporter.js';
import { createFastifyPlugin, type FastifyPlugin } from './fastify-plugin.js';
import { createGrpcInterceptor, shutdownGrpcServer } from './grpc-instrumentation.js';
import {
  createExpressMiddleware,
  instrumentServerListeners,
  wrapHttpListener,
  type ExpressMiddleware,
} from './http-instrumentation.js';
import { LoadTracker } from './load-tracker.js';
import { createMetricsHandler, startMetricsServer } from './metrics-endpoint.js';
import { createRegistration, type RegistrationHandle } from './registration.js';
import type { RequestGate } from './request-gate.js';
import { RuntimeSampler } from './runtime-sampler.js';

/** Life of an agent: idle → starting → ready → draining → drained; closed at any point by close(). */
export type AgentState = 'idle' | 'starting' | 'ready' | 'draining' | 'drained' | 'closed';

/** Bound on Consul calls made while draining, so a dead Consul cannot hold a drain up past its deadline. */
const CONSUL_STEP_TIMEOUT_MS = 5000;

/**
 * The agent embedded in a service process: measures its load, exposes it on /metrics, registers the instance in
 * Consul, reports to the coordinator and obeys its directives (drain). See the package README.
 */
export class Agent {
  readonly service: string;
  readonly instanceId: string;
  private readonly options: ResolvedAgentOptions;
  private readonly logger: Logger;
  /** Counters and gauges the agent writes: recorders until a registry is attached, then prom-client metrics. */
  private readonly signals: AgentSignals = createRecordingSignals();
  private registryInUse: MetricsRegistry | undefined;
  private promMetrics: AgentMetrics | undefined;
  private handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  private readonly tracker: LoadTracker;
  private readonly gate: RequestGate;
  private readonly app: AppMetrics;
  private readonly source: AgentMetricSources;
  private readonly stateEmitter = new EventEmitter<AgentState>();
  private readonly directiveEmitter = new EventEmitter<Directive>();
  private readonly connectionEmitter = new EventEmitter<boolean>();
  private readonly breakerEmitter = new EventEmitter<BreakerState>();
  private currentState: AgentState = 'idle';
  private sampler: RuntimeSampler | undefined;
  private reporter: Reporter | undefined;
  private registration: RegistrationHandle | undefined;
  private metricsServer: Server | undefined;
  private readonly httpServers = new Set<Server>();
  private readonly grpcServers = new Set<GrpcServer>();
  private tickTimer: TimerHandle | undefined;
  private lastTickAt = 0;
  private seq = 0;
  private interval: number;
  private drainPromise: Promise<DrainResult> | undefined;
  private readonly closing = new AbortController();
  private readonly signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  private startedAtMs = 0;
  /** Latest `desiredReplicas` the coordinator sent (information only). */
  desiredReplicas: number | undefined;
  /** Latest `configGeneration` the coordinator sent. */
  configGeneration: number | undefined;

  /** Fires on every state change. */
  readonly onStateChange: Event<AgentState> = this.stateEmitter.event;
  /** Fires with every valid directive, after the agent applied it. */
  readonly onDirective: Event<Directive> = this.directiveEmitter.event;

  constructor(options: AgentOptions) {
    this.options = resolveAgentOptions(options);
    const o = this.options;
    this.service = o.service;
    this.instanceId = o.instanceId;
    this.interval = o.reportIntervalMs;
    this.logger = componentLogger(o.logger, 'agent', { service: o.service, instance: o.instanceId });
    this.tracker = new LoadTracker(o.clock);
    this.gate = {
      tracker: this.tracker,
      metrics: this.signals,
      refusing: false,
      retryAfterSeconds: o.retryAfterSeconds,
    };
    this.app = new AppMetrics(this.logger);
    this.source = {
      inFlight: () => this.tracker.inFlight,
      totals: () => this.tracker.totals(),
      appGauges: () => this.app.readGauges(),
      appCounters: () => this.app.counterTotals(),
    };
    this.signals.ready.set(0);
    // prom-client is loaded only when metrics are asked for: a registry given, an own metrics server, a Consul
    // registration (which registers its metrics there too), or a later read of metricsHandler / registry.
    const ownServer = o.metrics !== false && o.metrics.port !== undefined;
    if (o.registry !== undefined || ownServer || o.consul !== false) this.attachRegistry(o.registry ?? newRegistry());
  }

  /**
   * The prom-client registry holding the agent's metrics: the `registry` option, else one created (and
   * prom-client loaded) on first use.
   */
  get registry(): MetricsRegistry {
    if (this.registryInUse === undefined) this.attachRegistry(newRegistry());
    return this.registryInUse as MetricsRegistry;
  }

  /** `(req, res)` handler serving the agent's registry in Prometheus text format (loads prom-client on first read). */
  get metricsHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    this.handler ??= createMetricsHandler(this.registry);
    return this.handler;
  }

  private attachRegistry(registry: MetricsRegistry): void {
    this.registryInUse = registry;
    const metrics = createAgentMetrics(registry);
    bindSignals(this.signals, metrics);
    if (this.currentState !== 'closed') metrics.sources.add(this.source);
    this.promMetrics = metrics;
  }

  get state(): AgentState {
    return this.currentState;
  }

  /** True while the instance takes traffic (started, not draining). */
  get ready(): boolean {
    return this.currentState === 'ready';
  }

  /** Requests in flight now, across every instrumentation. */
  get inFlight(): number {
    return this.tracker.inFlight;
  }

  /** Current report interval (after any coordinator suggestion). */
  get reportIntervalMs(): number {
    return this.interval;
  }

  /** Coordinator link: connected, breaker state, buffered/sent/dropped reports. `undefined` with no coordinator. */
  coordinatorStatus():
    { connected: boolean; breaker: BreakerState; buffered: number; sent: number; dropped: number } | undefined {
    const r = this.reporter;
    if (r === undefined) return undefined;
    return { connected: r.connected, breaker: r.breakerState, buffered: r.buffered, sent: r.sent, dropped: r.dropped };
  }

  /**
   * Fires true when the coordinator link is up (stream accepted / a report accepted), false when it is lost.
   * Subscribe any time, before `start()` too; it never fires without a `coordinator` option.
   */
  readonly onCoordinatorConnection: Event<boolean> = this.connectionEmitter.event;

  /** Fires when the report path's circuit breaker changes state. Subscribe any time, before `start()` too. */
  readonly onBreakerChange: Event<BreakerState> = this.breakerEmitter.event;

  /** Address of the agent's own metrics server, when it runs one. */
  get metricsUrl(): string | undefined {
    const address = this.metricsServer?.address() as AddressInfo | null | undefined;
    if (!address || this.options.metrics === false) return undefined;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}${this.options.metrics.path}`;
  }

  /**
   * Starts sampling and reporting, the metrics server (if configured) and registration; resolves once the
   * instance is registered (or after the registration's own first attempt budget) and marked ready. The
   * coordinator is never waited for.
   */
  async start(): Promise<void> {
    if (this.currentState === 'closed') throw new ClosedError('agent.start() after close()');
    if (this.currentState !== 'idle') return;
    const o = this.options;
    this.setState('starting');
    this.startedAtMs = o.clock.now();
    try {
      this.sampler = new RuntimeSampler(o.eventLoopResolutionMs);
      this.lastTickAt = o.clock.monotonic();
      if (o.metrics !== false && o.metrics.port !== undefined) {
        const server = await startMetricsServer(this.registry, { ...o.metrics, port: o.metrics.port });
        if ((this.currentState as AgentState) === 'closed') {
          // close() ran while the server was binding: it could not stop what did not exist yet, so stop here.
          await new Promise<void>((resolve) => server.close(() => resolve()));
          return;
        }
        this.metricsServer = server;
      }
      if (o.consulRegistration !== undefined) {
        this.registration = createRegistration(o.consulRegistration, this.consulMeta(), this.registryInUse);
      }
      if (o.coordinator !== undefined) {
        const deps = {
          clock: o.clock,
          logger: this.logger.child({ component: 'agent-reporter' }),
          identity: { service: o.service, instanceId: o.instanceId },
          metrics: this.signals,
          onDirective: (d: Directive) => this.applyDirective(d),
        };
        const coordinator = o.coordinator;
        const hello = this.hello();
        this.reporter = new Reporter(coordinator, deps, (link) =>
          coordinator.transport === 'http'
            ? new HttpReportTransport(coordinator, hello, link)
            : new GrpcReportTransport(coordinator, hello, link),
        );
        this.reporter.onConnectionChange((connected) => this.connectionEmitter.emit(connected));
        this.reporter.onBreakerChange((state) => this.breakerEmitter.emit(state));
        this.reporter.start();
      }
    } catch (error) {
      // E.g. the metrics port is taken: leave nothing running behind.
      await this.close();
      throw error;
    }
    this.scheduleTick(this.interval);
    for (const signal of o.signals) {
      const handler = () => {
        // Unready and deregistered at once; new work is still served for terminationDelayMs (watchers, kube-proxy
        // and ingresses stop sending meanwhile), then refused while in-flight work finishes; then onDrained (exit).
        this.logger.info(
          { signal, terminationDelayMs: o.terminationDelayMs, drainDeadlineMs: o.drainDeadlineMs },
          'signal received; deregistering, then draining after terminationDelayMs',
        );
        if (this.currentState === 'closed') return;
        this.drainPromise ??= this.runDrain(o.drainDeadlineMs, signal, o.terminationDelayMs);
        this.drainPromise.catch(() => undefined);
      };
      process.on(signal, handler);
      this.signalHandlers.push([signal, handler]);
    }
    const registration = this.registration;
    if (registration !== undefined) {
      // Registered critical ("starting"), then passing once registered: never routable before start() ends.
      await registration.setStatus('critical', 'starting');
      // Closed or draining meanwhile: the registration is closed, registering now could only fail (noisily).
      if ((this.currentState as AgentState) !== 'starting') return;
      const registered = registration.register();
      registered.catch(() => undefined); // observed below or, after a timeout, by the log line in the background
      try {
        await withTimeout(registered, o.registerTimeoutMs, 'register in Consul', { clock: o.clock });
      } catch (error) {
        // ServiceRegistration keeps retrying retryable failures in the background; the service serves meanwhile.
        this.logger.warn({ ...errorFields(error) }, 'registration in Consul not confirmed yet');
        registered.catch((late: unknown) =>
          this.logger.error({ ...errorFields(late) }, 'registration in Consul failed for good'),
        );
      }
    }
    if ((this.currentState as AgentState) !== 'starting') return; // draining or closed meanwhile
    this.setState('ready');
    // Recorded even if Consul does not have the instance yet: it is applied when the registration lands.
    await registration?.setStatus('passing', 'ready').catch((error: unknown) => {
      this.logger.warn(
        { ...errorFields(error) },
        'could not mark the instance passing in Consul; the heartbeat retries',
      );
    });
  }

  /** Stops everything without draining: timers, reporter (after a last not-ready report), metrics server, registration. */
  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    const wasDraining = this.currentState === 'draining';
    this.setState('closed');
    this.closing.abort();
    this.options.clock.clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    for (const [signal, handler] of this.signalHandlers.splice(0)) process.off(signal, handler);
    const final = this.sampler !== undefined ? this.buildReport() : undefined;
    await Promise.all([
      this.reporter?.close(final),
      this.registration
        ?.close()
        .catch((error: unknown) => this.logger.warn({ ...errorFields(error) }, 'deregistration failed')),
      this.metricsServer !== undefined
        ? new Promise<void>((resolve) => {
            this.metricsServer?.close(() => resolve());
            this.metricsServer?.closeAllConnections();
          })
        : undefined,
    ]);
    if (wasDraining) await this.drainPromise?.catch(() => undefined);
    this.sampler?.close();
    this.promMetrics?.sources.delete(this.source);
    this.signals.ready.set(0);
    this.stateEmitter.clear();
    this.directiveEmitter.clear();
    this.connectionEmitter.clear();
    this.breakerEmitter.clear();
  }

  // ---- application metrics -----------------------------------------------------------------------------------

  /**
   * Defines a business gauge read at each report: `agent.gauge('queue_depth', () => queue.length)`. With
   * `{ scope: 'service' }` the value is service-wide (every replica reads the same broker queue): the coordinator
   * takes it once per service instead of summing it over instances.
   */
  gauge(name: string, fn: () => number, options?: GaugeOptions): void {
    this.app.gauge(name, fn, options);
  }

  /** Defines a business counter; reports carry its increase per interval: `agent.counter('orders_total').inc()`. */
  counter(name: string): AppCounter {
    return this.app.counter(name);
  }

  // ---- instrumentation ---------------------------------------------------------------------------------------

  /** Wraps a `node:http` request listener: `http.createServer(agent.httpListener(handler))`. */
  httpListener<L extends RequestListener>(handler: L): L {
    return wrapHttpListener(this.gate, handler);
  }

  /**
   * Instruments a server created with its handler (`http.createServer(handler)`) and lets the agent close it at
   * the end of a drain. Already-wrapped requests are not counted twice.
   */
  instrumentHttpServer<S extends Server>(server: S): S {
    instrumentServerListeners(this.gate, server);
    this.httpServers.add(server);
    return server;
  }

  /** Express / Connect middleware; mount it first: `app.use(agent.express())`. */
  express(): ExpressMiddleware {
    return createExpressMiddleware(this.gate);
  }

  /** Fastify plugin (an `onRequest` hook on the whole app): `fastify.register(agent.fastify())`. */
  fastify(): FastifyPlugin {
    return createFastifyPlugin(this.gate);
  }

  /** grpc-js server interceptor: `new grpc.Server({ interceptors: [agent.grpcInterceptor()] })`. */
  grpcInterceptor(): ServerInterceptor {
    return createGrpcInterceptor(this.gate);
  }

  /** Lets a drain stop a gRPC server: `tryShutdown` (GOAWAY to clients, running calls finish). */
  attachGrpcServer<S extends GrpcServer>(server: S): S {
    this.grpcServers.add(server);
    return server;
  }

  // ---- drain -------------------------------------------------------------------------------------------------

  /**
   * Drains the instance: unready, deregister, (grace), refuse new work (HTTP 503 + Retry-After + Connection: close,
   * gRPC GOAWAY), wait for in-flight work or `deadlineMs`, close attached servers, send a last report, then call
   * `onDrained`. Calling it again returns the same promise.
   */
  drain(deadlineMs: number = this.options.drainDeadlineMs, reason = 'requested'): Promise<DrainResult> {
    assertInteger('deadlineMs', deadlineMs, 0, LIMITS.maxDrainDeadlineMs);
    if (this.currentState === 'closed') return Promise.reject(new ClosedError('agent.drain() after close()'));
    this.drainPromise ??= this.runDrain(deadlineMs, reason);
    return this.drainPromise;
  }

  private async runDrain(
    deadlineMs: number,
    reason: string,
    graceMs: number = this.options.drainGraceMs,
  ): Promise<DrainResult> {
    const { clock } = this.options;
    const startedAt = clock.monotonic();
    const remaining = () => Math.max(0, deadlineMs - (clock.monotonic() - startedAt));
    this.setState('draining');
    this.logger.info({ reason, deadlineMs, inFlight: this.tracker.inFlight }, 'draining');
    const registration = this.registration;
    if (registration !== undefined) {
      const bound = () => Math.max(1, Math.min(CONSUL_STEP_TIMEOUT_MS, remaining()));
      try {
        await withTimeout(registration.setStatus('critical', `draining: ${reason}`), bound(), 'mark unready', {
          clock,
        });
      } catch (error) {
        this.logger.warn({ ...errorFields(error) }, 'could not mark the instance critical in Consul');
      }
      try {
        await withTimeout(registration.close(), bound(), 'deregister', { clock });
      } catch (error) {
        this.logger.warn({ ...errorFields(error) }, 'could not deregister from Consul');
      }
    }
    const grace = Math.min(graceMs, remaining());
    if (grace > 0) await sleep(clock, grace, this.closing.signal, true).catch(() => undefined);
    this.gate.refusing = true;
    for (const server of this.grpcServers) void shutdownGrpcServer(server);
    const idle = await this.waitIdle(remaining());
    for (const server of this.httpServers) {
      server.close();
      server.closeIdleConnections();
    }
    const result: DrainResult = { reason, timedOut: !idle, inFlight: this.tracker.inFlight };
    if (this.currentState === 'closed') return result;
    this.setState('drained');
    this.options.clock.clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    await this.reporter?.close(this.buildReport());
    this.logger.info({ ...result }, 'drained');
    try {
      await this.options.onDrained(result);
    } catch (error) {
      this.logger.error({ ...errorFields(error) }, 'onDrained failed');
    }
    return result;
  }

  /** True when nothing is in flight before `ms` passed. */
  private async waitIdle(ms: number): Promise<boolean> {
    if (this.tracker.inFlight <= 0) return true;
    const timeout = new AbortController();
    const onClose = () => timeout.abort();
    this.closing.signal.addEventListener('abort', onClose, { once: true });
    try {
      return await Promise.race([
        this.tracker.whenIdle().then(() => true),
        sleep(this.options.clock, ms, timeout.signal, true).then(
          () => false,
          () => false,
        ),
      ]);
    } finally {
      timeout.abort();
      this.closing.signal.removeEventListener('abort', onClose);
    }
  }

  // ---- reporting ---------------------------------------------------------------------------------------------

  private hello(): Hello {
    const o = this.options;
    return {
      protocolVersion: PROTOCOL_VERSION,
      service: o.service,
      instanceId: o.instanceId,
      address: o.address,
      port: o.port,
      ...(o.zone !== undefined ? { zone: o.zone } : {}),
      ...(o.version !== undefined ? { version: o.version } : {}),
      startedAtMs: this.startedAtMs,
      ...(o.capacity !== undefined ? { capacity: o.capacity } : {}),
      ...this.metricsTarget(),
    };
  }

  /** Where Prometheus scrapes this instance: the agent's own metrics server, or the service port. */
  private metricsTarget(): { metricsPort?: number; metricsPath?: string } {
    const m = this.options.metrics;
    if (m === false) return {};
    const port = (this.metricsServer?.address() as AddressInfo | null | undefined)?.port;
    return { ...(port !== undefined ? { metricsPort: port } : {}), metricsPath: m.path };
  }

  private consulMeta(): Record<string, string> {
    const meta: Record<string, string> = { [AGENT_META_KEY]: '1' };
    const m = this.options.metrics;
    if (m !== false) {
      const port = (this.metricsServer?.address() as AddressInfo | null | undefined)?.port ?? this.options.port;
      meta[METRICS_PORT_META_KEY] = String(port);
      meta[METRICS_PATH_META_KEY] = m.path;
    }
    return meta;
  }

  private scheduleTick(delayMs: number): void {
    this.options.clock.clearTimeout(this.tickTimer);
    this.tickTimer = this.options.clock.setTimeout(() => this.tick(), delayMs);
    this.tickTimer.unref();
  }

  private tick(): void {
    this.tickTimer = undefined;
    try {
      const report = this.buildReport();
      if (this.reporter !== undefined && this.currentState !== 'drained' && this.currentState !== 'closed') {
        try {
          this.reporter.enqueue(validateReport(report));
        } catch (error) {
          // A report the agent itself built is invalid: a bug (or an odd app gauge); never send it.
          this.logger.error({ ...errorFields(error) }, 'built an invalid load report; not sent');
        }
      }
    } catch (error) {
      this.logger.error({ ...errorFields(error) }, 'load sampling failed');
    }
    if (this.currentState === 'starting' || this.currentState === 'ready' || this.currentState === 'draining') {
      this.scheduleTick(this.interval);
    }
  }

  /** Samples the interval since the previous report and updates the gauges. */
  private buildReport(): LoadReport {
    const { clock } = this.options;
    const now = clock.monotonic();
    const intervalMs = Math.min(LIMITS.maxIntervalMs, Math.max(1, Math.round(now - this.lastTickAt)));
    this.lastTickAt = now;
    const runtime = this.sampler?.sample() ?? {
      eventLoopUtilization: 0,
      eventLoopDelayP99Ms: 0,
      cpu: 0,
      rssBytes: 0,
      heapUsedBytes: 0,
    };
    const load = this.tracker.takeInterval();
    const m = this.signals;
    m.eventLoopUtilization.set(runtime.eventLoopUtilization);
    m.eventLoopDelayP99.set(runtime.eventLoopDelayP99Ms / 1000);
    m.cpu.set(runtime.cpu);
    m.rss.set(runtime.rssBytes);
    m.heapUsed.set(runtime.heapUsedBytes);
    const { custom, serviceMetrics } = this.app.takeReportMetrics();
    return {
      seq: ++this.seq,
      intervalMs,
      ready: this.ready,
      inFlight: Math.max(0, this.tracker.inFlight),
      ...load,
      ...runtime,
      custom,
      ...(Object.keys(serviceMetrics).length > 0 ? { serviceMetrics } : {}),
      sentAtMs: clock.now(),
      droppedReports: 0,
    };
  }

  private applyDirective(directive: Directive): void {
    if (directive.reportIntervalMs !== undefined) {
      const o = this.options;
      const next = Math.min(o.maxReportIntervalMs, Math.max(o.minReportIntervalMs, directive.reportIntervalMs));
      if (next !== this.interval) {
        this.logger.info({ reportIntervalMs: next, asked: directive.reportIntervalMs }, 'report interval changed');
        this.interval = next;
        if (this.tickTimer !== undefined) {
          const elapsed = o.clock.monotonic() - this.lastTickAt;
          this.scheduleTick(Math.max(0, next - elapsed));
        }
      }
    }
    if (directive.desiredReplicas !== undefined) this.desiredReplicas = directive.desiredReplicas;
    if (directive.configGeneration !== undefined) this.configGeneration = directive.configGeneration;
    this.directiveEmitter.emit(directive);
    if (directive.drain !== undefined && this.drainPromise === undefined && this.currentState !== 'closed') {
      void this.drain(directive.drain.deadlineMs, directive.drain.reason ?? 'coordinator');
    }
  }

  private setState(state: AgentState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.signals.ready.set(state === 'ready' ? 1 : 0);
    this.stateEmitter.emit(state);
  }
}

/** Creates an agent (validating `options`; errors name the option and the value). Call `start()` next. */
export function createAgent(options: AgentOptions): Agent {
  if (options === undefined || options === null) {
    throw new InvalidArgumentError('createAgent(options) needs an options object, got ' + String(options));
  }
  return new Agent(options);
}
