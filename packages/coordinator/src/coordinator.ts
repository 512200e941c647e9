import { ExternalMetricsSource, createPrometheusClient } from './external-metrics.js';
import type { PrometheusClient } from './prometheus-client.js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  ClosedError,
  ConfigError,
  InvalidArgumentError,
  componentLogger,
  errorFields,
  realClock,
  type Clock,
  type Logger,
  type MetricsRegistry,
  type TimerHandle,
} from '@shoal/core';
import { ConsulKv, ServiceWatcher, type Watch } from '@shoal/consul';
import { loadCoordinatorService, parseBearer, type LoadReport } from '@shoal/protocol';
import type { Actuator } from './actuators/actuator.js';
import { createActuator } from './actuators/create-actuator.js';
import {
  limitConnections,
  listenGrpc,
  RefusedConnectionLog,
  type ConnectionLimits,
  type ConnectionWatch,
  type GrpcListener,
} from './connection-limits.js';
import { LocalActuator } from './actuators/local.js';
import {
  TokenAuthenticator,
  bearerMatches,
  resolveApiTokens,
  resolveKedaToken,
  resolveServiceTokens,
  resolveWakeTokens,
} from './auth.js';
import { parseWakeReport } from './wake-demand.js';
import {
  parseConfig,
  servicePolicy,
  externalMetricsOf,
  type CoordinatorConfig,
  type CoordinatorConfigInput,
  type ServiceConfig,
} from './config.js';
import { ServiceController, type DecisionRecord } from './control-loop.js';
import {
  createHttpHandler,
  type SdTargetGroup,
  type ServiceStatus,
  type WakeAnswer,
  type WakeRequestInfo,
} from './http-api.js';
import { Ingest } from './ingest.js';
import { KedaScaler, externalScalerService, UpdateHub, type KedaServiceSnapshot } from './keda-scaler.js';
import { LeaderElection, type LeaderInfo } from './leader-election.js';
import { LeaderUnavailableError, LeaderView, type LeaderAnswer } from './leader-view.js';
import { grpcPeerNames } from './peer-identity.js';
import { createCoordinatorMetrics, defaultRegistry, removeServiceSeries, startServiceSeries } from './metrics.js';
import { isRolloutChange, specOf } from './rollout/replica-spec.js';
import { createRolloutMetrics } from './rollout/rollout-metrics.js';
import { ConsulRolloutStore, MemoryRolloutStore, type RolloutStore } from './rollout/rollout-store.js';
import { RolloutError, RolloutManager, type RolloutOptions, type RolloutStatus } from './rollout/rollout.js';
import { checkRolloutSpec } from './rollout/spec-check.js';
import { ServiceWindow } from './service-window.js';
import { serviceWindowOptions } from '@shoal/policy';
import { ConsulStateStore, MemoryStateStore, type StateStore } from './state-store.js';

export interface CoordinatorOptions {
  logger?: Logger;
  registry?: MetricsRegistry;
  clock?: Clock;
  /** This coordinator's id (leader key, logs). Default `<hostname>-<random>`. */
  id?: string;
  /** Environment local replicas and commands inherit (the CLI passes `process.env`). Default: none. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Directory relative `tokenFile`s are read from. Default: the working directory. */
  baseDir?: string;
  /** Kubernetes client configuration for `kubernetes` actuators (default: in-cluster or the configured kubeconfig). */
  kubeConfig?: KubeConfig;
  /** Replaces the actuator a service's config names (tests, or a custom platform). */
  actuatorFactory?: (service: ServiceConfig) => Actuator | undefined;
  /** Called with each accepted report's receipt→window time in ms, and the report (benchmarks). */
  onReportAccepted?: (latencyMs: number, report: LoadReport) => void;
}

export interface CoordinatorUrls {
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:8080`. */
  http: string;
  /** gRPC address agents use, e.g. `grpc://127.0.0.1:9090`. */
  grpc: string;
  /** KEDA external scaler address (host:port), when `listen.keda` is set; else KEDA is served on the gRPC port. */
  keda: string;
}

export interface Coordinator {
  readonly id: string;
  readonly config: CoordinatorConfig;
  /** Binds the ports, starts actuators, leader election and the control loops. */
  start(): Promise<void>;
  /**
   * Stops everything: loops, election (releasing the lock), servers, actuators (local replicas are stopped). With
   * `keepLocalReplicas` (a planned restart or upgrade), local replicas keep running for their `orphanGraceMs`, for
   * the next coordinator with the same `stateDir` to adopt.
   */
  close(options?: { keepLocalReplicas?: boolean }): Promise<void>;
  urls(): CoordinatorUrls;
  services(): ServiceStatus[];
  decisions(service: string): DecisionRecord[] | undefined;
  /** Runs one control-loop iteration for a service now (normally they run every sync period). */
  tick(service: string): Promise<DecisionRecord | undefined>;
  /** Applies a new config (SIGHUP). Throws ConfigError and keeps the running config when it is invalid. */
  reload(config: CoordinatorConfigInput | CoordinatorConfig): Promise<void>;
  /** The service's rollout (local actuator only; undefined for others or an unknown service). */
  rollout(service: string): RolloutStatus | undefined;
  /** Pauses, resumes or undoes a service's rollout. Throws when it does not fit the rollout's state. */
  rolloutAction(service: string, action: 'pause' | 'resume' | 'undo'): Promise<RolloutStatus>;
  readonly isLeader: boolean;
  actuator(service: string): Actuator | undefined;
}

interface ServiceRuntime {
  config: ServiceConfig;
  window: ServiceWindow;
  actuator: Actuator;
  controller: ServiceController;
  rollout?: RolloutManager;
  consulWatch?: Watch;
}

/** The rollout as `GET /v1/services` shows it (the full status is at `/v1/services/:name/rollout`). */
function rolloutSummary(s: RolloutStatus): NonNullable<ServiceStatus['rollout']> {
  return {
    state: s.state,
    paused: s.paused,
    ...(s.from ? { from: s.from.version } : {}),
    ...(s.to ? { to: s.to.version } : {}),
    ...(s.reason ? { reason: s.reason } : {}),
    ...(s.warning ? { warning: s.warning } : {}),
  };
}

function rolloutOptions(s: ServiceConfig): Partial<RolloutOptions> {
  return s.rollout ?? {};
}

function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}

function windowOptions(config: CoordinatorConfig, s: ServiceConfig) {
  return serviceWindowOptions({
    reportIntervalMs: s.reportIntervalMs,
    syncPeriodMs: s.syncPeriodMs ?? config.syncPeriodMs,
    windowSize: config.limits.windowSize,
    maxInstances: config.limits.maxInstancesPerService,
  });
}

/**
 * Builds a coordinator from a config object (validated here: throws ConfigError naming the path and the value).
 * Nothing listens until `start()`.
 */
export function createCoordinator(
  config: CoordinatorConfigInput | CoordinatorConfig,
  options: CoordinatorOptions = {},
): Coordinator {
  return new CoordinatorImpl(parseConfig(config), options);
}

class CoordinatorImpl implements Coordinator {
  readonly id: string;
  config: CoordinatorConfig;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly registry: MetricsRegistry;
  private readonly metrics;
  private readonly runtimes = new Map<string, ServiceRuntime>();
  private readonly hub = new UpdateHub();
  private auth = new TokenAuthenticator(new Map());
  private readToken: string | undefined;
  private ingest: Ingest | undefined;
  private keda: KedaScaler | undefined;
  private kedaToken: string | undefined;
  /** Each service's wake token (clients report waiting calls with it). */
  private wakeTokens = new Map<string, string>();
  private grpcServer: grpc.Server | undefined;
  private kedaServer: grpc.Server | undefined;
  /** Shoal's own listeners in front of the gRPC servers (connection caps). */
  private readonly grpcListeners: GrpcListener[] = [];
  private httpServer: HttpServer | undefined;
  private kv: ConsulKv | undefined;
  private election: LeaderElection | undefined;
  /** A follower's window on the leader (HA only): the read API and KEDA answer with the leader's view. */
  private leaderView: LeaderView | undefined;
  /** While following: tells KEDA streams to look at the leader's view again, every sync period. */
  private followTimer: TimerHandle | undefined;
  private stateStore: StateStore = new MemoryStateStore();
  private rolloutStore: RolloutStore = new MemoryRolloutStore();
  private consulWatcher: ServiceWatcher | undefined;
  private prometheus: PrometheusClient | undefined;
  private apiToken: string | undefined;
  private addresses: CoordinatorUrls | undefined;
  private leading = false;
  private started = false;
  private closed = false;

  constructor(
    config: CoordinatorConfig,
    private readonly options: CoordinatorOptions,
  ) {
    this.config = config;
    this.id = options.id ?? config.ha?.id ?? `${hostname()}-${randomBytes(3).toString('hex')}`;
    this.log = componentLogger(options.logger, 'coordinator', { coordinator: this.id });
    this.clock = options.clock ?? realClock;
    this.registry = defaultRegistry(options.registry);
    this.metrics = createCoordinatorMetrics(this.registry);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  urls(): CoordinatorUrls {
    if (!this.addresses) throw new ClosedError('coordinator is not started');
    return this.addresses;
  }

  actuator(service: string): Actuator | undefined {
    return this.runtimes.get(service)?.actuator;
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('coordinator already started');
    this.started = true;
    try {
      await this.startParts();
    } catch (error) {
      // E.g. the HTTP port is taken after the gRPC one was bound: leave nothing listening or running behind.
      await this.close().catch((closeError: unknown) =>
        this.log.warn(errorFields(closeError), 'cleanup after a failed start failed'),
      );
      throw error;
    }
  }

  private async startParts(): Promise<void> {
    const tokens = await resolveServiceTokens(this.config, this.options.baseDir);
    ({ operator: this.apiToken, read: this.readToken } = await resolveApiTokens(this.config, this.options.baseDir));
    this.kedaToken = await resolveKedaToken(this.config, this.options.baseDir);
    this.wakeTokens = await resolveWakeTokens(this.config, this.options.baseDir);
    if (this.config.prometheus) {
      this.prometheus = await createPrometheusClient(this.config.prometheus, this.options.baseDir ?? '.', this.clock);
    }
    this.auth = new TokenAuthenticator(tokens, this.config.insecureDev);
    if (this.config.ha?.enabled) {
      // The relay's TLS files are read at each leader change: a missing or invalid one fails the start, not a relay.
      try {
        this.relayCredentials();
      } catch (error) {
        throw new ConfigError(
          `ha.relay: cannot use the relay's TLS files (${this.config.ha.relay?.certFile ?? 'tls.certFile'}): ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    if (!this.readToken && !this.apiToken) {
      this.log.warn('no api.readToken: the read API (/v1/services, /metrics, /v1/sd) is open');
    }
    if (this.config.insecureDev)
      this.log.warn('--insecure-dev: agents of services without a token are not authenticated');
    const { config } = this;
    this.ingest = new Ingest({
      auth: this.auth,
      windows: (s) => this.runtimes.get(s)?.window,
      metrics: this.metrics,
      reportsPerSecondPerInstance: config.limits.reportsPerSecondPerInstance,
      maxStreams: config.limits.maxStreams,
      maxInstancesPerService: config.limits.maxInstancesPerService,
      helloTimeoutMs: config.limits.helloTimeoutMs,
      ...(config.tls?.requireClientCert ? { peerNames: grpcPeerNames } : {}),
      ...(config.tls?.requireClientCert && config.ha?.enabled && config.ha.relay
        ? { relayPeerName: config.ha.relay.name }
        : {}),
      relayCredentials: () => this.relayCredentials(),
      relayChannelOptions: () => this.relayChannelOptions(),
      ...(this.options.onReportAccepted ? { onAccepted: this.options.onReportAccepted } : {}),
      ...(this.options.logger ? { logger: this.options.logger } : {}),
      clock: this.clock,
    });
    await this.startServers();
    if (config.consul) {
      this.kv = new ConsulKv({
        consul: {
          url: config.consul.url,
          requestTimeoutMs: config.consul.requestTimeoutMs,
          ...(config.consul.token ? { token: config.consul.token } : {}),
          ...(config.consul.datacenter ? { datacenter: config.consul.datacenter } : {}),
          ...(config.consul.caFile ? { ca: readFileSync(config.consul.caFile) } : {}),
        },
        clock: this.clock,
        ...(this.options.logger ? { logger: this.options.logger } : {}),
      });
      this.stateStore = new ConsulStateStore(
        this.kv,
        config.ha?.stateKeyPrefix ?? 'shoal/coordinator/state',
        this.options.logger,
      );
      this.rolloutStore = new ConsulRolloutStore(
        this.kv,
        config.ha?.stateKeyPrefix ?? 'shoal/coordinator/state',
        this.options.logger,
      );
      this.consulWatcher = new ServiceWatcher({
        consul: {
          url: config.consul.url,
          requestTimeoutMs: config.consul.requestTimeoutMs,
          ...(config.consul.token ? { token: config.consul.token } : {}),
          ...(config.consul.datacenter ? { datacenter: config.consul.datacenter } : {}),
          ...(config.consul.caFile ? { ca: readFileSync(config.consul.caFile) } : {}),
        },
        ...(this.options.logger ? { logger: this.options.logger } : {}),
        clock: this.clock,
      });
    }
    config.services.forEach((s, i) =>
      this.addService(
        s,
        tokens.get(s.name),
        Math.floor((i / config.services.length) * (s.syncPeriodMs ?? config.syncPeriodMs)),
      ),
    );
    if (config.ha?.enabled && this.kv) {
      const urls = this.urls();
      const self: LeaderInfo = {
        id: this.id,
        grpcUrl: this.advertised(urls.grpc),
        httpUrl: this.advertised(urls.http),
      };
      const tls = config.tls;
      this.leaderView = new LeaderView({
        ...(tls ? { ca: readFileSync(tls.caFile ?? tls.certFile) } : {}),
        ...(tls?.serverName ? { serverName: tls.serverName } : {}),
        authorization: () => {
          const token = this.readToken ?? this.apiToken;
          return token ? `Bearer ${token}` : undefined;
        },
        clock: this.clock,
        ...(this.options.logger ? { logger: this.options.logger } : {}),
      });
      this.election = new LeaderElection({
        kv: this.kv,
        key: config.ha.lockKey,
        self,
        sessionTtlMs: config.ha.sessionTtlMs,
        lockDelayMs: config.ha.lockDelayMs,
        clock: this.clock,
        ...(this.options.logger ? { logger: this.options.logger } : {}),
      });
      this.election.onChange(({ isLeader, leader }) => this.setLeading(isLeader, leader));
      this.election.start();
    } else {
      this.setLeading(true, undefined);
    }
    this.log.info(
      { ...this.urls(), services: config.services.map((s) => s.name), dryRun: config.dryRun },
      'coordinator started',
    );
  }

  /** `url` with its host replaced by `advertiseHost`, when one is configured. */
  private advertised(url: string): string {
    const host = this.config.advertiseHost;
    if (!host) return url;
    const bare = host.replace(/^\[(.*)\]$/, '$1');
    const u = new URL(url);
    u.hostname = isIP(bare) === 6 ? `[${bare}]` : bare;
    return u.toString().replace(/\/$/, '');
  }

  /**
   * How a follower dials the leader: with TLS when this coordinator serves TLS (coordinators of one deployment share
   * a TLS config), trusting `tls.caFile`, or else the coordinator's own certificate (a shared self-signed one).
   */
  private relayCredentials(): grpc.ChannelCredentials {
    const tls = this.config.tls;
    if (!tls) return grpc.credentials.createInsecure();
    const ca = readFileSync(tls.caFile ?? tls.certFile);
    // Mutual TLS: the follower shows the relay's certificate (ha.relay, default the coordinator's own) to the leader,
    // which accepts relayed agents from a certificate naming ha.relay.name.
    if (tls.requireClientCert) {
      const relay = this.config.ha?.relay;
      return grpc.credentials.createSsl(
        ca,
        readFileSync(relay?.keyFile ?? tls.keyFile),
        readFileSync(relay?.certFile ?? tls.certFile),
      );
    }
    return grpc.credentials.createSsl(ca);
  }

  /** With `tls.serverName`: the name the leader's certificate is checked against instead of its address. */
  private relayChannelOptions(): grpc.ChannelOptions {
    const name = this.config.tls?.serverName;
    return name ? { 'grpc.ssl_target_name_override': name, 'grpc.default_authority': name } : {};
  }

  /** A follower's answer to a read: the leader's (undefined: this coordinator answers itself). */
  private proxy(path: string, authorization: string | undefined): Promise<LeaderAnswer> | undefined {
    if (this.leading || !this.leaderView) return undefined;
    return this.leaderView.get(path, authorization);
  }

  private setLeading(isLeader: boolean, leader: LeaderInfo | undefined): void {
    this.leading = isLeader;
    this.metrics.leader.set(isLeader ? 1 : 0);
    const target = leader?.grpcUrl?.replace(/^grpcs?:\/\//, '');
    this.ingest?.setMode(isLeader, isLeader ? undefined : target);
    this.leaderView?.setLeader(isLeader ? undefined : leader);
    this.clock.clearTimeout(this.followTimer);
    this.followTimer = undefined;
    if (!isLeader && this.leaderView && !this.closed) this.follow();
    for (const r of this.runtimes.values()) {
      r.controller.lead(isLeader).catch((error: unknown) => this.log.warn(errorFields(error), 'lead() failed'));
    }
  }

  /**
   * While following, every sync period (the first at once): fetch the leader's `/v1/services` and tell the KEDA
   * scaler, so unary calls and StreamIsActive watchers on this follower see the leader's decisions.
   */
  private follow(delayMs = 0): void {
    this.followTimer = this.clock.setTimeout(() => {
      if (this.leading || this.closed || !this.leaderView) return;
      void this.refreshLeaderView().finally(() => {
        if (!this.leading && !this.closed) this.follow(this.config.syncPeriodMs);
      });
    }, delayMs);
    this.followTimer.unref();
  }

  /** Fetches the leader's view (one request at a time) and tells the KEDA scaler every service may have changed. */
  private refreshLeaderView(): Promise<void> {
    const view = this.leaderView;
    if (!view) return Promise.resolve();
    return view
      .services()
      .then(() => {
        if (!this.leading && !this.closed) for (const name of this.runtimes.keys()) this.hub.emit(name);
      })
      .catch(() => undefined); // logged by the view; KEDA answers UNAVAILABLE once the last view is stale
  }

  private addService(s: ServiceConfig, token: string | undefined, initialDelayMs = 0): void {
    const window = new ServiceWindow(s.name, windowOptions(this.config, s));
    const base =
      this.options.actuatorFactory?.(s) ??
      createActuator(s.actuator, {
        service: s.name,
        coordinatorUrl: this.config.advertiseUrl ?? this.advertised(this.urls().grpc),
        ...(this.config.stateDir ? { stateDir: resolvePath(this.options.baseDir ?? '.', this.config.stateDir) } : {}),
        ...(token ? { coordinatorToken: token } : {}),
        ...(this.options.env ? { baseEnv: this.options.env } : {}),
        ...(this.options.kubeConfig ? { kubeConfig: this.options.kubeConfig } : {}),
        initialReplicas: s.minReplicas,
        ...(this.options.logger ? { logger: this.options.logger } : {}),
        clock: this.clock,
      });
    let rollout: RolloutManager | undefined;
    let consulWatch: Watch | undefined;
    if (base instanceof LocalActuator) {
      consulWatch = this.consulWatcher?.watch(s.name);
      const watch = consulWatch;
      rollout = new RolloutManager({
        service: s.name,
        actuator: base,
        options: rolloutOptions(s),
        instances: () => window.views(this.clock.now()),
        ...(watch
          ? {
              consulPassing: () => {
                const list = watch.current();
                return list ? new Set(list.map((i) => i.id)) : undefined;
              },
            }
          : {}),
        drain: (id, reason) => (this.ingest as Ingest).drain(s.name, id, s.drainTimeoutMs, reason),
        store: this.rolloutStore,
        metrics: createRolloutMetrics(this.registry),
        id: this.id,
        onEvent: (message, status) => this.rolloutDecision(s.name, message, status),
        ...(this.options.logger ? { logger: this.options.logger } : {}),
        clock: this.clock,
      });
      void rollout.restore();
    }
    const actuator: Actuator = rollout ?? base;
    const controller = new ServiceController({
      service: s,
      policy: servicePolicy(s),
      window,
      actuator,
      ingest: this.ingest as Ingest,
      metrics: this.metrics,
      stateStore: this.stateStore,
      syncPeriodMs: s.syncPeriodMs ?? this.config.syncPeriodMs,
      decisionLogSize: this.config.decisionLogSize,
      dryRun: this.config.dryRun,
      id: this.id,
      onDecision: (record) => this.hub.emit(record.service),
      ...this.externalMetricsOption(s),
      ...(this.options.logger ? { logger: this.options.logger } : {}),
      clock: this.clock,
    });
    const runtime: ServiceRuntime = {
      config: s,
      window,
      actuator,
      controller,
      ...(rollout ? { rollout } : {}),
      ...(consulWatch ? { consulWatch } : {}),
    };
    this.runtimes.set(s.name, runtime);
    startServiceSeries(this.metrics, s.name);
    controller.start(initialDelayMs);
    if (this.leading) controller.lead(true).catch(() => undefined);
  }

  /** The controller option for a service's external metrics (targets with a `query`), if it has any. */
  private externalMetricsOption(s: ServiceConfig): { externalMetrics?: ExternalMetricsSource } {
    const list = externalMetricsOf(s);
    if (list.length === 0 || !this.prometheus) return {};
    return { externalMetrics: new ExternalMetricsSource(s.name, list, this.prometheus, this.options.logger) };
  }

  private async removeService(name: string): Promise<void> {
    const r = this.runtimes.get(name);
    if (!r) return;
    this.runtimes.delete(name);
    removeServiceSeries(this.metrics, name);
    await r.controller.stop();
    await r.actuator.close();
    r.consulWatch?.close();
  }

  /** A rollout event as a line of the service's decision log. */
  private rolloutDecision(service: string, message: string, status: RolloutStatus): void {
    const r = this.runtimes.get(service);
    if (!r) return;
    const record: DecisionRecord = {
      atMs: this.clock.now(),
      service,
      currentReplicas: status.replicas.old + status.replicas.new,
      desiredReplicas: status.replicas.desired,
      reasons: [`rollout (${status.state}${status.paused ? ', paused' : ''}): ${message}`],
      applied: true,
      dryRun: this.config.dryRun,
      durationMs: 0,
    };
    r.controller.decisions.push(record);
    this.hub.emit(service);
  }

  rollout(service: string): RolloutStatus | undefined {
    return this.runtimes.get(service)?.rollout?.status();
  }

  async rolloutAction(service: string, action: 'pause' | 'resume' | 'undo'): Promise<RolloutStatus> {
    const r = this.runtimes.get(service);
    if (!r) throw new InvalidArgumentError(`service must name a configured service, got ${JSON.stringify(service)}`);
    if (!r.rollout)
      throw new RolloutError(
        'SHOAL_ERR_ROLLOUT_UNSUPPORTED',
        `service "${service}" has a ${r.actuator.type} actuator: only the local actuator rolls out`,
      );
    if (action === 'pause') return r.rollout.pause();
    if (action === 'resume') return r.rollout.resume();
    return r.rollout.undo();
  }

  private async startServers(): Promise<void> {
    const { config } = this;
    const limit = config.limits.maxMessageBytes;
    const serverOptions: grpc.ServerOptions = {
      'grpc.max_receive_message_length': limit,
      'grpc.max_send_message_length': limit,
      'grpc.max_concurrent_streams': Math.max(100, config.limits.maxStreams),
      'grpc.keepalive_time_ms': 60_000,
      'grpc.keepalive_timeout_ms': 20_000,
      'grpc.http2.max_pings_without_data': 0,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_connection_idle_ms': config.limits.grpcMaxConnectionIdleMs,
    };
    let creds = grpc.ServerCredentials.createInsecure();
    let tls: { cert: Buffer; key: Buffer; ca?: Buffer } | undefined;
    if (config.tls) {
      tls = {
        cert: readFileSync(config.tls.certFile),
        key: readFileSync(config.tls.keyFile),
        ...(config.tls.caFile ? { ca: readFileSync(config.tls.caFile) } : {}),
      };
      creds = grpc.ServerCredentials.createSsl(
        tls.ca ?? null,
        [{ cert_chain: tls.cert, private_key: tls.key }],
        config.tls.requireClientCert,
      );
    }
    const { CoordinatorService } = loadCoordinatorService(grpc);
    const ingest = this.ingest as Ingest;
    this.grpcServer = new grpc.Server(serverOptions);
    this.grpcServer.addService(CoordinatorService, { connect: ingest.connect, report: ingest.report });
    this.keda = new KedaScaler({
      source: {
        compute: (s) => this.kedaSnapshot(s),
        onUpdate: this.hub.onUpdate,
        // A leader's answer holds until its next decision (or a sync period); a follower's only as long as its view
        // of the leader is fresh, or a KEDA call between two of the follower's fetches would keep an old answer.
        maxAgeMs: (s) =>
          !this.leading && this.leaderView
            ? this.leaderView.maxAgeMs
            : (this.runtimes.get(s)?.config.syncPeriodMs ?? this.config.syncPeriodMs),
      },
      ...(this.kedaToken ? { token: this.kedaToken } : {}),
      open: config.insecureDev,
      ...(config.tls?.requireClientCert && config.keda.clientName
        ? { authorize: (call) => grpcPeerNames(call).includes(config.keda.clientName as string) }
        : {}),
      maxWatchers: config.keda.maxWatchers,
      clock: this.clock,
      onCompute: () => this.metrics.kedaSnapshots.inc(),
      onWatchers: (n) => this.metrics.kedaWatchers.set(n),
    });
    const keda = this.keda.handlers();
    if (!config.listen.keda) this.grpcServer.addService(externalScalerService(), keda);
    const grpcLimits: ConnectionLimits = {
      maxConnections: config.limits.grpcMaxConnections,
      maxConnectionsPerClient: config.limits.grpcMaxConnectionsPerClient,
    };
    const grpcHost = splitHostPort(config.listen.grpc).host;
    const grpcPort = await this.listenGrpc(this.grpcServer, creds, config.listen.grpc, grpcLimits, 'grpc');
    let kedaAddress = `${grpcHost}:${grpcPort}`;
    if (config.listen.keda) {
      this.kedaServer = new grpc.Server(serverOptions);
      this.kedaServer.addService(externalScalerService(), keda);
      const port = await this.listenGrpc(this.kedaServer, creds, config.listen.keda, grpcLimits, 'keda');
      kedaAddress = `${splitHostPort(config.listen.keda).host}:${port}`;
    }
    const handler = createHttpHandler({
      ingest,
      registry: this.registry,
      maxBodyBytes: limit,
      services: () => this.services(),
      decisions: (s) => this.decisions(s),
      rollout: (s) => this.rollout(s),
      rolloutAction: (s, action) => this.rolloutAction(s, action),
      apiAccess: (authorization, write) => this.apiAccess(authorization, write),
      sd: () => this.sd(),
      proxy: (path, authorization) => this.proxy(path, authorization),
      ready: () => this.readiness(),
      checkRead: (authorization) => this.readAccess(authorization),
      wakeAccess: (service, authorization) => this.wakeAccess(service, authorization),
      wake: (service, body, request) => this.wake(service, body, request),
      info: () => ({
        id: this.id,
        leader: this.leading,
        leaderId: this.election?.leader?.id ?? (this.leading ? this.id : undefined),
        dryRun: this.config.dryRun,
      }),
    });
    // Under requireClientCert the HTTP port asks for a certificate but does not insist (probes and Prometheus have
    // none; they use tokens); POST /v1/report then needs a verified one naming the service.
    const server = tls
      ? createHttpsServer(
          {
            cert: tls.cert,
            key: tls.key,
            ...(tls.ca && config.tls?.requireClientCert
              ? { ca: tls.ca, requestCert: true, rejectUnauthorized: false }
              : {}),
          },
          handler,
        )
      : createHttpServer(handler);
    server.requestTimeout = config.limits.httpRequestTimeoutMs;
    server.headersTimeout = Math.min(config.limits.httpHeadersTimeoutMs, config.limits.httpRequestTimeoutMs);
    server.keepAliveTimeout = config.limits.httpKeepAliveTimeoutMs;
    const httpLimits = {
      maxConnections: config.limits.httpMaxConnections,
      maxConnectionsPerClient: config.limits.httpMaxConnectionsPerClient,
    };
    limitConnections(server, httpLimits, this.connectionWatch('http', httpLimits));
    const http = splitHostPort(config.listen.http);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(http.port, http.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.httpServer = server;
    const httpPort = (server.address() as AddressInfo).port;
    const scheme = tls ? 'https' : 'http';
    const hostForUrl = (h: string) => (h.includes(':') ? `[${h}]` : h);
    this.addresses = {
      http: `${scheme}://${hostForUrl(http.host)}:${httpPort}`,
      grpc: `${tls ? 'grpcs' : 'grpc'}://${hostForUrl(grpcHost)}:${grpcPort}`,
      keda: kedaAddress,
    };
  }

  private refusedConnections: RefusedConnectionLog | undefined;

  /** Counts and logs (rate-limited) the connections a listener closed on accept. */
  private connectionWatch(listener: string, limits: ConnectionLimits): ConnectionWatch {
    const log = (this.refusedConnections ??= new RefusedConnectionLog(this.log, this.clock));
    return {
      onRefused: (reason, peer) => {
        this.metrics.connectionsRefused.inc({ listener, reason });
        const limit = reason === 'max_connections' ? limits.maxConnections : limits.maxConnectionsPerClient;
        log.note(listener, reason, limit, peer);
      },
    };
  }

  /**
   * Who may report waiting calls for `service`: only a client with the service's wake token (never anonymous, not
   * even under insecureDev). A follower checks it too, so a wrong token never reaches the leader.
   */
  private wakeAccess(
    service: string,
    authorization: string | undefined,
  ): { status: number; body: unknown } | undefined {
    const r = this.runtimes.get(service);
    if (!r) return { status: 404, body: { error: `no service "${service}"` } };
    const token = this.wakeTokens.get(service);
    if (!r.config.wake || token === undefined) {
      return {
        status: 404,
        body: { error: `service "${service}" does not wake on client calls (it has no "wake" section)` },
      };
    }
    let refusal: string | undefined;
    if (parseBearer(authorization) === undefined) refusal = 'missing "authorization: Bearer <wake token>"';
    else if (!bearerMatches(token, authorization)) refusal = `the bearer token is not the wake token of "${service}"`;
    if (refusal) {
      this.metrics.wakeReports.inc({ service, outcome: 'refused' });
      return { status: 401, body: { error: refusal } };
    }
    return undefined;
  }

  /**
   * A client's validated waiting-call count: the leader records it in the service's control loop; a follower
   * forwards it to the leader (the re-encoded, validated report with the client's own bearer token, one attempt
   * within the leader view's deadline; the client retries with its backoff) and answers with the leader's answer,
   * so a client that knows one address (a Service in front of every coordinator) wakes the service whichever
   * coordinator it reaches. A relayed request is never relayed again: a coordinator that stopped leading answers 503.
   */
  private async wake(service: string, body: unknown, request: WakeRequestInfo): Promise<WakeAnswer> {
    const r = this.runtimes.get(service);
    if (!r) return { status: 404, body: { error: `no service "${service}"` } };
    let report;
    try {
      report = parseWakeReport(body);
    } catch (error) {
      this.metrics.wakeReports.inc({ service, outcome: 'refused' });
      return { status: 400, body: { error: (error as Error).message } };
    }
    if (!this.leading && this.leaderView) {
      if (request.forwardedBy !== undefined) {
        return {
          status: 503,
          body: { error: 'this coordinator is not the leader (any more): the follower should retry' },
        };
      }
      try {
        const answer = await this.leaderView.post(
          `/v1/services/${encodeURIComponent(service)}/wake`,
          request.authorization,
          JSON.stringify(report),
          this.id,
        );
        this.metrics.wakeReports.inc({ service, outcome: 'forwarded' });
        let parsed: unknown;
        try {
          parsed = JSON.parse(answer.body.toString('utf8'));
        } catch {
          parsed = { error: `the leader answered ${answer.status}` };
        }
        return { status: answer.status, body: parsed, answeredBy: 'leader' };
      } catch (error) {
        this.metrics.wakeReports.inc({ service, outcome: 'unforwarded' });
        return { status: 503, body: { error: (error as Error).message } };
      }
    }
    this.metrics.wakeReports.inc({ service, outcome: 'accepted' });
    const waiting = r.controller.reportWaiting(report);
    return {
      status: 202,
      body: {
        service,
        waiting,
        ...(r.controller.currentReplicas !== undefined ? { currentReplicas: r.controller.currentReplicas } : {}),
        ...(r.controller.desiredReplicas !== undefined ? { desiredReplicas: r.controller.desiredReplicas } : {}),
      },
    };
  }

  /** A gRPC server on `hostPort` behind a counting listener; resolves to the port. */
  private async listenGrpc(
    server: grpc.Server,
    creds: grpc.ServerCredentials,
    hostPort: string,
    limits: ConnectionLimits,
    listener: 'grpc' | 'keda',
  ): Promise<number> {
    const l = await listenGrpc(server, creds, splitHostPort(hostPort), limits, this.connectionWatch(listener, limits));
    this.grpcListeners.push(l);
    return l.port;
  }

  /** The read API: open without a read or operator token; else either token. */
  private readAccess(authorization: string | undefined): boolean {
    if (this.readToken === undefined && this.apiToken === undefined) return true;
    return (
      (this.readToken !== undefined && bearerMatches(this.readToken, authorization)) ||
      (this.apiToken !== undefined && bearerMatches(this.apiToken, authorization))
    );
  }

  /** Whether a request to the rollout routes may go on: the `api` token, compared in constant time. */
  private apiAccess(authorization: string | undefined, write: boolean): 'ok' | 'unauthenticated' | 'forbidden' {
    const token = this.apiToken;
    // Reading a rollout is a read: the read token will do.
    if (!write && this.readToken !== undefined && bearerMatches(this.readToken, authorization)) return 'ok';
    if (!token) return !write || this.config.insecureDev ? 'ok' : 'forbidden';
    const m = /^Bearer (.+)$/i.exec(authorization ?? '');
    if (!m) return 'unauthenticated';
    const a = Buffer.from(m[1] as string);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b) ? 'ok' : 'unauthenticated';
  }

  private readiness(): { ready: boolean; reason: string } {
    if (!this.started || this.closed) return { ready: false, reason: 'not started' };
    if (this.leading) return { ready: true, reason: 'leader' };
    if (this.election?.leader) return { ready: true, reason: `following ${this.election.leader.id}` };
    return { ready: false, reason: 'no leader elected yet' };
  }

  /**
   * KEDA's view of a service: this coordinator's when it leads (or runs alone), else the leader's — the
   * `/v1/services` the follower fetched last (every sync period), or LeaderUnavailableError (UNAVAILABLE) when it has
   * none fresh enough.
   */
  private kedaSnapshot(service: string): KedaServiceSnapshot | undefined {
    const r = this.runtimes.get(service);
    if (!r) return undefined;
    const targets: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const t of r.config.policy.targets ?? []) targets[t.metric] ??= t.value;
    let desiredReplicas = r.controller.desiredReplicas;
    let instances: Iterable<{ ready: boolean; missing: boolean; draining: boolean; metrics: Record<string, unknown> }> =
      r.window.views(this.clock.now());
    const view = this.leaderView;
    if (!this.leading && view) {
      // A view older than the leader view's maxAgeMs is fetched again in the background (the answer follows).
      if (!view.lastServices()) this.refreshLeaderView();
      const list = view.lastServices(this.followStaleMs());
      if (!list) throw new LeaderUnavailableError(`no fresh view of the leader ${view.leader ?? ''}; retry`);
      const s = list.find((x) => x.name === service);
      if (!s) return undefined;
      desiredReplicas = s.desiredReplicas;
      instances = Array.isArray(s.instances) ? s.instances : [];
    }
    const totals: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const v of instances) {
      if (!v.ready || v.missing || v.draining) continue;
      for (const [metric, value] of Object.entries(v.metrics ?? {})) {
        if (typeof value === 'number' && Number.isFinite(value)) totals[metric] = (totals[metric] ?? 0) + value;
      }
    }
    return { desiredReplicas, rps: totals.rps ?? 0, metricTotals: totals, targets };
  }

  /** How old the leader's view a follower serves KEDA from may be: three sync periods, at least 10 s. */
  private followStaleMs(): number {
    return Math.max(10_000, 3 * this.config.syncPeriodMs);
  }

  services(): ServiceStatus[] {
    const now = this.clock.now();
    return [...this.runtimes.values()].map((r) => {
      const last = r.controller.decisions.last();
      return {
        name: r.config.name,
        actuator: r.actuator.type,
        minReplicas: r.config.minReplicas,
        maxReplicas: r.config.maxReplicas,
        ...(r.controller.currentReplicas !== undefined ? { currentReplicas: r.controller.currentReplicas } : {}),
        ...(r.controller.desiredReplicas !== undefined ? { desiredReplicas: r.controller.desiredReplicas } : {}),
        ...(last ? { lastDecision: last } : {}),
        ...(r.rollout ? { rollout: rolloutSummary(r.rollout.status()) } : {}),
        instances: r.window.views(now),
      };
    });
  }

  decisions(service: string): DecisionRecord[] | undefined {
    return this.runtimes.get(service)?.controller.decisions.toArray().reverse();
  }

  private sd(): SdTargetGroup[] {
    const now = this.clock.now();
    const groups: SdTargetGroup[] = [];
    if (this.addresses) {
      groups.push({
        targets: [this.addresses.http.replace(/^https?:\/\//, '')],
        labels: { service: 'shoal-coordinator', instance: this.id, zone: '', version: '', ready: 'true' },
      });
    }
    for (const r of this.runtimes.values()) {
      for (const v of r.window.views(now)) {
        if (v.missing || v.draining) continue;
        const host = v.address.includes(':') ? `[${v.address}]` : v.address;
        groups.push({
          targets: [`${host}:${v.metricsPort ?? v.port}`],
          labels: {
            ...(v.metricsPath !== undefined && v.metricsPath !== '/metrics' ? { __metrics_path__: v.metricsPath } : {}),
            service: r.config.name,
            instance: v.id,
            zone: v.zone ?? '',
            version: v.version ?? '',
            ready: String(v.ready),
          },
        });
      }
    }
    return groups;
  }

  async tick(service: string): Promise<DecisionRecord | undefined> {
    const r = this.runtimes.get(service);
    if (!r) throw new Error(`no service "${service}"`);
    return r.controller.tick();
  }

  async reload(input: CoordinatorConfigInput | CoordinatorConfig): Promise<void> {
    const next = parseConfig(input, 'reloaded config');
    const tokens = await resolveServiceTokens(next, this.options.baseDir);
    const wakeTokens = await resolveWakeTokens(next, this.options.baseDir);
    const { operator: apiToken, read: readToken } = await resolveApiTokens(next, this.options.baseDir);
    const prev = this.config;
    // A new version that cannot start is refused before anything changes (the running config stays in force).
    for (const s of next.services) {
      const r = this.runtimes.get(s.name);
      if (!r?.rollout || s.actuator.type !== 'local') continue;
      if (!isRolloutChange(r.config.actuator as Record<string, unknown>, s.actuator as Record<string, unknown>))
        continue;
      try {
        await checkRolloutSpec(s.name, specOf(s.actuator), this.options.env);
      } catch (error) {
        if (error instanceof RolloutError) r.rollout.refused(error);
        throw error;
      }
    }
    if (
      JSON.stringify(prev.listen) !== JSON.stringify(next.listen) ||
      JSON.stringify(prev.tls) !== JSON.stringify(next.tls)
    ) {
      this.log.warn('listen/tls changes need a restart; keeping the current addresses');
    }
    if (
      JSON.stringify(prev.consul) !== JSON.stringify(next.consul) ||
      JSON.stringify(prev.ha) !== JSON.stringify(next.ha)
    ) {
      this.log.warn('consul/ha changes need a restart; keeping the current election');
    }
    if (JSON.stringify(prev.prometheus) !== JSON.stringify(next.prometheus)) {
      this.log.warn('prometheus changes need a restart; keeping the current Prometheus client');
    }
    this.config = {
      ...next,
      listen: prev.listen,
      ...(prev.tls ? { tls: prev.tls } : {}),
      ...(prev.consul ? { consul: prev.consul } : {}),
      ...(prev.ha ? { ha: prev.ha } : {}),
      ...(prev.prometheus ? { prometheus: prev.prometheus } : {}),
    } as CoordinatorConfig;
    const kedaToken = await resolveKedaToken(next, this.options.baseDir);
    this.wakeTokens = wakeTokens;
    this.auth = new TokenAuthenticator(tokens, next.insecureDev);
    this.readToken = readToken;
    this.kedaToken = kedaToken;
    this.keda?.setToken(kedaToken);
    this.ingest?.setAuth(this.auth);
    this.apiToken = apiToken;
    const names = new Set(next.services.map((s) => s.name));
    for (const name of [...this.runtimes.keys()]) if (!names.has(name)) await this.removeService(name);
    for (const s of next.services) {
      const r = this.runtimes.get(s.name);
      if (!r) {
        this.addService(s, tokens.get(s.name));
      } else if (
        r.rollout &&
        isRolloutChange(r.config.actuator as Record<string, unknown>, s.actuator as Record<string, unknown>) &&
        s.actuator.type === 'local'
      ) {
        // A new version: roll it out over the running replicas instead of restarting the service.
        r.config = s;
        r.controller.update(s, servicePolicy(s), next.dryRun, s.syncPeriodMs ?? next.syncPeriodMs);
        r.controller.setExternalMetrics(this.externalMetricsOption(s).externalMetrics);
        r.rollout.setOptions(rolloutOptions(s));
        await r.rollout.begin(specOf(s.actuator), 'config reloaded with a new command/args/env/cwd');
      } else if (JSON.stringify(r.config.actuator) !== JSON.stringify(s.actuator)) {
        await this.removeService(s.name);
        this.addService(s, tokens.get(s.name));
      } else {
        r.config = s;
        r.controller.update(s, servicePolicy(s), next.dryRun, s.syncPeriodMs ?? next.syncPeriodMs);
        r.controller.setExternalMetrics(this.externalMetricsOption(s).externalMetrics);
        r.rollout?.setOptions(rolloutOptions(s));
      }
    }
    this.log.info({ services: next.services.map((s) => s.name) }, 'config reloaded');
  }

  async close(options: { keepLocalReplicas?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.runtimes.values()].map((r) => r.controller.stop()));
    await this.election?.close();
    this.clock.clearTimeout(this.followTimer);
    this.leaderView?.close();
    this.ingest?.close();
    this.keda?.close();
    this.hub.clear();
    for (const l of this.grpcListeners) l.stopAccepting();
    await Promise.all([shutdown(this.grpcServer), shutdown(this.kedaServer)]);
    for (const l of this.grpcListeners) l.destroyAll();
    if (this.httpServer) {
      const s = this.httpServer;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    }
    await Promise.all(
      [...this.runtimes.values()].map((r) =>
        options.keepLocalReplicas && r.actuator instanceof LocalActuator ? r.actuator.detach() : r.actuator.close(),
      ),
    );
    for (const r of this.runtimes.values()) r.consulWatch?.close();
    await this.consulWatcher?.close();
    await this.prometheus?.close();
    await this.kv?.close();
    this.log.info('coordinator stopped');
  }
}

function shutdown(server: grpc.Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 2000);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
