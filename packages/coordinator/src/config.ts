import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import * as z from 'zod';
import { ConfigError, isShoalError } from '@shoal/core';
import { DEFAULT_CONSUL_URL } from '@shoal/consul';
import { resolvePolicy, type Policy, type PolicyInput } from '@shoal/policy';
import { parseYamlDocument } from '@shoal/policy/internal';
import { METRIC_NAME, SERVICE_NAME, isMetricName, isServiceName } from '@shoal/protocol';
import { unknownMetricReason } from './metric-names.js';
import { isLabelSelector } from './actuators/kubernetes-selector.js';
import { MAX_QUERY_LENGTH } from './prometheus-client.js';

/**
 * The coordinator's configuration: a YAML file (`shoal-coordinator --config shoal.yaml`) or the same object passed
 * to `createCoordinator()`. Validated with zod; unknown keys are rejected everywhere and errors give the path and
 * the value (`services[2].policy.targets[0].value: must be > 0, got -1`).
 */

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { message: 'must be "host:port"' })
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, { message: 'port must be <= 65535' });

/** Names follow the one grammar agents are validated against (`@shoal/protocol`'s names). */
const serviceName = z.string().refine(isServiceName, { message: `must be ${SERVICE_NAME.description}` });
const metricName = z.string().refine(isMetricName, { message: `must be ${METRIC_NAME.description}` });

const positiveMs = z.number().int().positive();

const tlsSchema = z
  .strictObject({
    certFile: z.string().min(1),
    keyFile: z.string().min(1),
    /** PEM of the CA(s) that sign client certificates (agents', KEDA's); required with `requireClientCert`. */
    caFile: z.string().min(1).optional(),
    /**
     * Mutual TLS on the gRPC ports: a client without a certificate signed by `caFile` is refused at the handshake,
     * and an agent's certificate must name its service (CN or a DNS SAN), KEDA's `keda.clientName`. The HTTP port
     * asks for a certificate too; `POST /v1/report` then needs one naming the service.
     */
    requireClientCert: z.boolean().default(false),
    /**
     * The name a follower checks the leader's certificate against (and sends as SNI), when the certificate was not
     * issued for the advertised address, e.g. `shoal-coordinator.shoal.svc` for a pod IP. Default: the advertised
     * host.
     */
    serverName: z
      .string()
      .refine((v) => /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(v), { message: 'must be a DNS name' })
      .optional(),
  })
  .refine((t) => !t.requireClientCert || t.caFile !== undefined, {
    message: 'requireClientCert needs caFile (the CA that signs client certificates)',
    path: ['requireClientCert'],
  });

const backoffSchema = z.strictObject({
  baseMs: positiveMs.default(500),
  capMs: positiveMs.default(30_000),
});

const localActuatorSchema = z.strictObject({
  type: z.literal('local'),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().min(1).optional(),
  host: z.string().min(1).default('127.0.0.1'),
  stopTimeoutMs: positiveMs.default(10_000),
  /** How long a replica outlives its coordinator, waiting to be adopted by a restarted one. */
  orphanGraceMs: positiveMs.default(30_000),
  restartBackoff: backoffSchema.default({ baseMs: 500, capMs: 30_000 }),
});

const kubernetesActuatorSchema = z.strictObject({
  type: z.literal('kubernetes'),
  kind: z.enum(['Deployment', 'StatefulSet']).default('Deployment'),
  name: z.string().min(1),
  namespace: z.string().min(1).default('default'),
  /** Path of a kubeconfig file; default: in-cluster service account. */
  kubeconfig: z.string().min(1).optional(),
  /** Label selector of the workload's pods: scale-down victims are only pods listed under it. Default: the Deployment's selector. */
  podSelector: z
    .string()
    .refine(isLabelSelector, { message: 'must be a label selector such as "app=web,tier in (api)"' })
    .optional(),
  requestTimeoutMs: positiveMs.default(10_000),
});

const commandActuatorSchema = z
  .strictObject({
    type: z.literal('command'),
    command: z.string().min(1).optional(),
    args: z.array(z.string()).default([]),
    cwd: z.string().min(1).optional(),
    webhook: z
      .strictObject({
        url: z.url({ protocol: /^https?$/ }),
        secret: z.string().min(16),
      })
      .optional(),
    timeoutMs: positiveMs.default(10_000),
  })
  .refine((a) => (a.command === undefined) !== (a.webhook === undefined), {
    message: 'needs exactly one of "command" or "webhook"',
  });

const actuatorSchema = z.discriminatedUnion('type', [
  localActuatorSchema,
  kubernetesActuatorSchema,
  commandActuatorSchema,
]);

const targetSchema = z
  .strictObject({
    metric: metricName,
    value: z.number().positive(),
    type: z.enum(['average', 'utilization', 'total']).optional(),
    request: z.number().positive().optional(),
    /**
     * An external metric: a PromQL query the coordinator evaluates against `prometheus` every sync period; its one
     * number is the service's value of `metric` (a `total` target: value per replica). Needs the `prometheus`
     * section.
     */
    query: z.string().min(1).max(MAX_QUERY_LENGTH).optional(),
    /**
     * KEDA's activation threshold: at 0 replicas, the service wakes (0 → N) once this metric's service value is
     * above it. Default 0 (any positive value wakes it). Only on `total` targets.
     */
    activationValue: z.number().nonnegative().optional(),
  })
  .refine((t) => t.query === undefined || t.type === undefined || t.type === 'total', {
    message: 'a target with a query is a "total" target (its value per replica)',
    path: ['type'],
  })
  .refine((t) => t.activationValue === undefined || t.type === 'total' || t.query !== undefined, {
    message: 'activationValue applies to a "total" target (a service-level or external metric)',
    path: ['activationValue'],
  });

/** The Prometheus server external-metric targets (`targets[].query`) are evaluated against. */
const prometheusSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/ }),
    /** Time limit of one query attempt. */
    timeoutMs: positiveMs.default(5000),
    /** Attempts per query (the first included), with full-jitter backoff between them. */
    maxAttempts: z.number().int().min(1).max(10).default(3),
    backoff: backoffSchema.default({ baseMs: 200, capMs: 2000 }),
    /** `Authorization` header value (`Bearer <token>`); or read it from a file. Never logged. */
    authorization: z.string().min(1).optional(),
    authorizationFile: z.string().min(1).optional(),
    /** PEM file of the CA(s) that signed Prometheus's certificate (an https url only). */
    caFile: z.string().min(1).optional(),
  })
  .refine((p) => !(p.authorization && p.authorizationFile), {
    message: 'give "authorization" or "authorizationFile", not both',
  })
  .refine((p) => p.caFile === undefined || p.url.startsWith('https:'), {
    message: 'caFile needs an https url',
    path: ['caFile'],
  });

/**
 * The parts of a policy the coordinator checks itself; the rest is handed to `@shoal/policy`'s `resolvePolicy`,
 * which validates it again (its error messages are reported under `services[i].policy`).
 */
const policySchema = z
  .looseObject({
    targets: z.array(targetSchema).min(1).optional(),
  })
  .refine((p) => !('minReplicas' in p) && !('maxReplicas' in p), {
    message: 'minReplicas/maxReplicas belong to the service, not its policy',
  });

/** How a change of a `local` actuator's command/args/env/cwd is rolled out (see docs/operations.md). */
const rolloutSchema = z.strictObject({
  maxSurge: z.number().int().positive().default(1),
  maxUnavailable: z.number().int().nonnegative().default(0),
  bakeMs: z.number().int().nonnegative().default(30_000),
  readyTimeoutMs: positiveMs.default(60_000),
  crashLoopRestarts: z.number().int().positive().default(3),
  autoRollback: z.boolean().default(true),
  requireConsulPassing: z.boolean().default(true),
  stepMs: z.number().int().min(50).max(60_000).default(500),
  analysis: z
    .strictObject({
      minRequests: z.number().int().positive().default(30),
      maxErrorRatioIncrease: z.number().positive().max(1).default(0.05),
      alpha: z.number().min(0).max(0.05).default(0.001),
      latencyRatio: z.number().min(1).default(2),
      minLatencyIncreaseMs: z.number().nonnegative().default(50),
    })
    .default({
      minRequests: 30,
      maxErrorRatioIncrease: 0.05,
      alpha: 0.001,
      latencyRatio: 2,
      minLatencyIncreaseMs: 50,
    }),
});

/**
 * Waking from zero on client calls (issue #20): clients (`@shoal/grpc`, `@shoal/http` with an `activator`) that
 * find no instance report how many calls wait (`POST /v1/services/:name/wake`, with this token); the coordinator
 * scales 0 → ceil(waiting / callsPerReplica), capped by maxReplicas.
 */
const wakeSchema = z
  .strictObject({
    /** The bearer token clients present with their waiting-call count (not the agents' token). */
    token: z.string().min(16).optional(),
    tokenFile: z.string().min(1).optional(),
    /** Waiting calls one replica takes. Default: the value of the policy's `inFlight` target. */
    callsPerReplica: z.number().positive().optional(),
    /** A client's reported count is forgotten after this long without a new report. Default 10000. */
    demandTtlMs: z.number().int().min(1000).max(600_000).default(10_000),
  })
  .refine((w) => (w.token === undefined) !== (w.tokenFile === undefined), {
    message: 'needs exactly one of "token" or "tokenFile" (anonymous demand is refused)',
  });

const serviceSchema = z
  .strictObject({
    name: serviceName,
    /** Bearer token the service's agents present. */
    token: z.string().min(16).optional(),
    tokenFile: z.string().min(1).optional(),
    // 0 needs something that can wake the service with no replica running: client calls (`wake`) or an external
    // (query) target.
    minReplicas: z.number().int().nonnegative().default(1),
    /**
     * With minReplicas 0: how long every activation target must stay at or below its activationValue before the
     * last replica is removed (KEDA's cooldownPeriod).
     */
    idleCooldownMs: z.number().int().nonnegative().default(300_000),
    /** Wake from zero on client calls (see wakeSchema). */
    wake: wakeSchema.optional(),
    maxReplicas: z.number().int().positive().default(10),
    reportIntervalMs: positiveMs.default(1000),
    syncPeriodMs: positiveMs.optional(),
    drainTimeoutMs: positiveMs.default(30_000),
    /** Custom (business) metrics the service's agents report that its policy may target. */
    customMetrics: z.array(metricName).max(100).default([]),
    policy: policySchema,
    actuator: actuatorSchema,
    rollout: rolloutSchema.optional(),
  })
  .superRefine((s, ctx) => {
    // A target on a metric no report carries never has a value: the service would silently never scale.
    const check = (metric: unknown, path: Array<string | number>) => {
      if (typeof metric !== 'string' || !isMetricName(metric)) return; // the grammar already said why
      const reason = unknownMetricReason(metric, s.customMetrics, 'customMetrics');
      if (reason) ctx.addIssue({ code: 'custom', message: reason, path });
    };
    // An external metric's name is whatever its query gives it.
    s.policy.targets?.forEach((t, i) => {
      if (t.query === undefined) check(t.metric, ['policy', 'targets', i, 'metric']);
    });
    const loose = s.policy as { slo?: { metric?: unknown }; loadMetric?: unknown };
    check(loose.slo?.metric, ['policy', 'slo', 'metric']);
    check(loose.loadMetric, ['policy', 'loadMetric']);
  })
  .refine(
    (s) => s.minReplicas !== 0 || s.wake !== undefined || (s.policy.targets ?? []).some((t) => t.query !== undefined),
    {
      message:
        'minReplicas 0 needs something that can wake the service with no replica running: a "wake" section (clients report waiting calls) or an external-metric target (a target with a "query")',
      path: ['minReplicas'],
    },
  )
  .refine((s) => s.wake === undefined || s.wake.callsPerReplica !== undefined || inFlightTarget(s) !== undefined, {
    message:
      'wake needs callsPerReplica (waiting calls one replica takes) when the policy has no "inFlight" target to size it from',
    path: ['wake', 'callsPerReplica'],
  })
  .refine((s) => s.maxReplicas >= s.minReplicas, {
    message: 'maxReplicas must be >= minReplicas',
    path: ['maxReplicas'],
  })
  .refine((s) => !(s.token && s.tokenFile), { message: 'give "token" or "tokenFile", not both' });

const consulSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/ }).default(DEFAULT_CONSUL_URL),
    token: z.string().min(1).optional(),
    datacenter: z.string().min(1).optional(),
    requestTimeoutMs: positiveMs.default(10_000),
    /** PEM file of the CA(s) that signed Consul's certificate (an https url only). */
    caFile: z.string().min(1).optional(),
  })
  .refine((c) => c.caFile === undefined || c.url.startsWith('https:'), {
    message: 'caFile needs an https url',
    path: ['caFile'],
  });

const haSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /**
   * This coordinator's identity in the election: unique among the coordinators sharing the lock, and stable across
   * restarts, so that a coordinator restarted after a crash takes its lock back at once. Default: `<hostname>-<random>`.
   */
  id: z
    .string()
    .refine((v) => /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(v), {
      message: 'must be letters, digits, ".", "_" and "-" (at most 128, starting with a letter or digit)',
    })
    .optional(),
  lockKey: z.string().min(1).default('shoal/coordinator/leader'),
  stateKeyPrefix: z.string().min(1).default('shoal/coordinator/state'),
  sessionTtlMs: z.number().int().min(10_000).max(86_400_000).default(15_000),
  lockDelayMs: z.number().int().nonnegative().max(60_000).default(1000),
  /**
   * Mutual TLS between coordinators (`tls.requireClientCert`): the client certificate a follower relays agents to the
   * leader with, and the name in it. The leader accepts a relayed agent on a connection whose verified certificate
   * carries `name` (the follower already checked the agent's own certificate against its service), and still checks
   * the agent's token. Required with `tls.requireClientCert`.
   */
  relay: z
    .strictObject({
      /** The name (CN or DNS SAN) in the relay's certificate; never a service name or `keda.clientName`. */
      name: z
        .string()
        .refine((v) => /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(v), { message: 'must be a DNS name' }),
      /** PEM certificate (chain) the follower shows the leader. Default: `tls.certFile`. */
      certFile: z.string().min(1).optional(),
      /** Its private key. Default: `tls.keyFile`. */
      keyFile: z.string().min(1).optional(),
    })
    .refine((r) => (r.certFile === undefined) === (r.keyFile === undefined), {
      message: 'give both "certFile" and "keyFile", or neither (then tls.certFile and tls.keyFile)',
    })
    .optional(),
});

/** The KEDA external scaler (served on the gRPC port or `listen.keda`). */
const kedaSchema = z
  .strictObject({
    /** The token KEDA sends in the trigger's metadata (`token:`, so it arrives as `scalerMetadata.token`). */
    token: z.string().min(16).optional(),
    tokenFile: z.string().min(1).optional(),
    /**
     * With `tls.requireClientCert`: the name (certificate CN or DNS SAN) of KEDA's client certificate. A call over a
     * connection whose verified certificate carries it needs no token.
     */
    clientName: z.string().min(1).max(253).optional(),
    /** `StreamIsActive` streams open at once (KEDA opens one per ScaledObject). */
    maxWatchers: z.number().int().positive().max(100_000).default(100),
  })
  .refine((k) => !(k.token && k.tokenFile), { message: 'give "token" or "tokenFile", not both' });

const limitsSchema = z.strictObject({
  maxMessageBytes: z
    .number()
    .int()
    .min(1024)
    .default(64 * 1024),
  reportsPerSecondPerInstance: z.number().positive().default(5),
  maxInstancesPerService: z.number().int().positive().default(1000),
  maxStreams: z.number().int().positive().default(20_000),
  windowSize: z.number().int().min(3).max(1000).default(60),
  helloTimeoutMs: positiveMs.default(10_000),
  /** HTTP API: connections open at once, and from one client address (Consul's http_max_conns_per_client). */
  httpMaxConnections: z.number().int().positive().default(1024),
  httpMaxConnectionsPerClient: z.number().int().positive().default(100),
  /** HTTP API: an idle keep-alive connection is closed after this. */
  httpKeepAliveTimeoutMs: positiveMs.default(5000),
  /** HTTP API: a request's headers must arrive within this, the whole request within `httpRequestTimeoutMs`. */
  httpHeadersTimeoutMs: positiveMs.default(10_000),
  httpRequestTimeoutMs: positiveMs.default(30_000),
  /** gRPC: a connection with no call open for this long is closed (GOAWAY); agents reconnect on their next report. */
  grpcMaxConnectionIdleMs: positiveMs.default(300_000),
  /**
   * gRPC ports (agents, KEDA): connections open at once, and from one client address; further ones are closed as
   * soon as they are accepted, before any TLS or HTTP/2 work.
   */
  grpcMaxConnections: z.number().int().positive().default(2048),
  grpcMaxConnectionsPerClient: z.number().int().positive().default(256),
});

export const configSchema = z
  .strictObject({
    listen: z
      .strictObject({
        http: hostPort.default('127.0.0.1:8080'),
        grpc: hostPort.default('127.0.0.1:9090'),
        keda: hostPort.optional(),
      })
      .default({ http: '127.0.0.1:8080', grpc: '127.0.0.1:9090' }),
    /** URL replicas use to reach the coordinator's gRPC port (default: derived from listen.grpc). */
    advertiseUrl: z.string().min(1).optional(),
    /**
     * The host other coordinators (followers relaying to the leader) and local replicas use to reach this one, when
     * `listen` binds every interface (`0.0.0.0`, `::`). Required then with `ha`. The CLI also reads it from
     * `SHOAL_ADVERTISE_HOST` (e.g. the pod IP from the Kubernetes downward API).
     */
    advertiseHost: z
      .string()
      .refine(isDialableHostSyntax, { message: 'must be a host name or an IP address (IPv6 with or without brackets)' })
      .refine((h) => !isUnspecifiedHost(h), {
        message: 'must be an address others can dial, not an unspecified address (0.0.0.0, ::)',
      })
      .optional(),
    /**
     * Directory where local replicas' guards keep their records (relative: to the config file's directory), so a
     * restarted coordinator adopts them. Default: none (a private temporary directory; no adoption).
     */
    stateDir: z.string().min(1).optional(),
    tls: tlsSchema.optional(),
    insecureDev: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    syncPeriodMs: positiveMs.default(5000),
    decisionLogSize: z.number().int().positive().max(10_000).default(200),
    consul: consulSchema.optional(),
    /** Where external-metric targets (`services[].policy.targets[].query`) are evaluated. */
    prometheus: prometheusSchema.optional(),
    ha: haSchema.optional(),
    /**
     * The operator token of the HTTP API's rollout routes (`GET`/`POST /v1/services/:name/rollout...`) and the
     * CLI's `rollout` commands. Without one, rollout writes are refused (except with insecureDev).
     */
    api: z
      .strictObject({
        token: z.string().min(16).optional(),
        tokenFile: z.string().min(1).optional(),
        /**
         * The read token: everything on the HTTP port but /healthz, /readyz and POST /v1/report (agents' own
         * tokens) needs it or the operator `token` — status, decisions, rollouts, /metrics, /v1/sd. With neither
         * set, the read API is open (a warning at start).
         */
        readToken: z.string().min(16).optional(),
        readTokenFile: z.string().min(1).optional(),
      })
      .refine((a) => !(a.token && a.tokenFile), { message: 'give "token" or "tokenFile", not both' })
      .refine((a) => !(a.readToken && a.readTokenFile), { message: 'give "readToken" or "readTokenFile", not both' })
      .optional(),
    keda: kedaSchema.default({ maxWatchers: 100 }),
    limits: limitsSchema.default({
      maxMessageBytes: 64 * 1024,
      reportsPerSecondPerInstance: 5,
      maxInstancesPerService: 1000,
      maxStreams: 20_000,
      windowSize: 60,
      helloTimeoutMs: 10_000,
      httpMaxConnections: 1024,
      httpMaxConnectionsPerClient: 100,
      httpKeepAliveTimeoutMs: 5000,
      httpHeadersTimeoutMs: 10_000,
      httpRequestTimeoutMs: 30_000,
      grpcMaxConnectionIdleMs: 300_000,
      grpcMaxConnections: 2048,
      grpcMaxConnectionsPerClient: 256,
    }),
    services: z.array(serviceSchema).min(1),
  })
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.services.forEach((s, i) => {
      const prev = seen.get(s.name);
      if (prev !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', i, 'name'],
          message: `duplicate service name (also services[${prev}].name)`,
          input: s.name,
        });
      }
      seen.set(s.name, i);
    });
    if (c.ha?.enabled && c.tls?.requireClientCert && !c.ha.relay) {
      ctx.addIssue({
        code: 'custom',
        path: ['ha', 'relay'],
        message:
          'is required with tls.requireClientCert: the name (and certificate) followers relay agents to the leader with',
      });
    }
    const relayName = c.ha?.relay?.name;
    if (relayName !== undefined) {
      if (!c.tls?.requireClientCert) {
        ctx.addIssue({
          code: 'custom',
          path: ['ha', 'relay'],
          message: 'needs tls.requireClientCert (without mutual TLS followers relay without a client certificate)',
        });
      }
      const clash = c.services.findIndex((s) => s.name === relayName);
      if (clash >= 0 || c.keda?.clientName === relayName) {
        ctx.addIssue({
          code: 'custom',
          path: ['ha', 'relay', 'name'],
          message: `must differ from every service name and keda.clientName (an agent's or KEDA's certificate would pass for a coordinator's), got ${JSON.stringify(relayName)}`,
        });
      }
    }
    c.services.forEach((s, i) => {
      s.policy.targets?.forEach((t, k) => {
        if (t.query !== undefined && !c.prometheus) {
          ctx.addIssue({
            code: 'custom',
            path: ['services', i, 'policy', 'targets', k, 'query'],
            message: 'a query target needs the "prometheus" section (its url)',
          });
        }
      });
    });
    if (c.ha?.enabled && !c.consul) {
      ctx.addIssue({ code: 'custom', path: ['ha'], message: 'high availability needs a "consul" section' });
    }
    const wildcard = [c.listen.http, c.listen.grpc].find((hp) => isUnspecifiedHost(listenHost(hp)));
    if (c.ha?.enabled && wildcard && !c.advertiseHost) {
      ctx.addIssue({
        code: 'custom',
        path: ['advertiseHost'],
        message: `is required with ha when listen binds every interface (${wildcard}): followers would dial themselves`,
      });
    }
  });

/** A host name, an IPv4 address, or an IPv6 address with or without brackets. */
function isDialableHostSyntax(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) !== 0) return true;
  return /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(host);
}

/** Whether a host means "every interface" (`0.0.0.0`, `::` in any spelling): nobody can dial it. */
export function isUnspecifiedHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) === 4) return bare.split('.').every((o) => Number(o) === 0);
  if (isIP(bare) === 6) return new URL(`http://[${bare}]/`).hostname === '[::]';
  return false;
}

/** The host of a `host:port` (IPv6 brackets removed). */
export function listenHost(hostPort: string): string {
  return hostPort.slice(0, hostPort.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}

export type CoordinatorConfigInput = z.input<typeof configSchema>;
export type CoordinatorConfig = z.output<typeof configSchema>;
export type ServiceConfig = CoordinatorConfig['services'][number];
export type ActuatorConfig = ServiceConfig['actuator'];
export type LocalActuatorConfig = z.output<typeof localActuatorSchema>;
export type KubernetesActuatorConfig = z.output<typeof kubernetesActuatorSchema>;
export type CommandActuatorConfig = z.output<typeof commandActuatorSchema>;
export type RolloutConfig = z.output<typeof rolloutSchema>;

/** `services[2].policy.targets[0].value` from a zod path. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value === 'object' ? 'an object' : typeof value;
}

type Issue = z.core.$ZodIssue & { input?: unknown };

/** Fields whose values are credentials: a problem with one names the field, never the value. */
const SECRET_KEYS = new Set(['token', 'secret', 'readToken', 'authorization']);

function issueText(issue: Issue): string[] {
  const at = formatPath(issue.path);
  const last = issue.path[issue.path.length - 1];
  // A webhook URL may carry a credential (userinfo, a query token, or a secret pasted into the wrong field).
  const secret =
    typeof last === 'string' && (SECRET_KEYS.has(last) || (last === 'url' && issue.path.includes('webhook')));
  const got = `got ${
    secret && typeof issue.input === 'string'
      ? `a string of length ${issue.input.length} (not shown)`
      : describe(issue.input)
  }`;
  switch (issue.code) {
    case 'too_small': {
      const op = issue.inclusive ? '>=' : '>';
      if (issue.origin === 'number' || issue.origin === 'int') return [`${at}: must be ${op} ${issue.minimum}, ${got}`];
      if (issue.origin === 'array') return [`${at}: needs at least ${issue.minimum} item(s), ${got}`];
      return [`${at}: needs at least ${issue.minimum} character(s), ${got}`];
    }
    case 'too_big': {
      const op = issue.inclusive ? '<=' : '<';
      if (issue.origin === 'number' || issue.origin === 'int') return [`${at}: must be ${op} ${issue.maximum}, ${got}`];
      return [`${at}: must have at most ${issue.maximum} item(s)/character(s), ${got}`];
    }
    case 'invalid_type':
      if (issue.input === undefined) return [`${at}: is required (a ${issue.expected})`];
      return [`${at}: must be ${/^[aeiou]/.test(issue.expected) ? 'an' : 'a'} ${issue.expected}, ${got}`];
    case 'unrecognized_keys':
      return issue.keys.map((k) => `${at === '(root)' ? k : `${at}.${k}`}: unknown key`);
    case 'invalid_value':
      return [`${at}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, ${got}`];
    case 'invalid_union':
      if ('note' in issue && issue.note === 'No matching discriminator') {
        const input = issue.input as { type?: unknown } | undefined;
        const value = input && typeof input === 'object' ? input.type : input;
        return [`${at}: must be one of "local", "kubernetes", "command", got ${describe(value)}`];
      }
      return [`${at}: ${issue.message}, ${got}`];
    case 'invalid_format':
      return [`${at}: must be a valid ${issue.format}, ${got}`];
    default:
      return [
        `${at}: ${issue.message}${issue.input === undefined || typeof issue.input === 'object' ? '' : `, ${got}`}`,
      ];
  }
}

/** Every problem in a config, one line each, in the order zod found them. */
export function describeConfigIssues(error: z.ZodError): string[] {
  return error.issues.flatMap((issue) => issueText(issue as Issue));
}

/**
 * Validates and normalizes a config object (defaults applied, frozen). Throws `ConfigError` whose message lists
 * every problem, one per line; `error.problems` holds the same lines.
 */
export function parseConfig(input: unknown, source = 'config'): CoordinatorConfig {
  const result = configSchema.safeParse(input, { reportInput: true });
  if (!result.success) {
    const problems = describeConfigIssues(result.error);
    const err = new ConfigError(`${source} is invalid:\n  ${problems.join('\n  ')}`, { cause: result.error });
    Object.defineProperty(err, 'problems', { value: problems, enumerable: true });
    throw err;
  }
  const problems: string[] = [];
  result.data.services.forEach((s, i) => {
    try {
      resolvedPolicies.set(s, resolveServicePolicy(s));
    } catch (error) {
      if (!isShoalError(error)) throw error;
      problems.push(`services[${i}].policy: ${error.message}`);
    }
  });
  if (problems.length > 0) {
    const err = new ConfigError(`${source} is invalid:\n  ${problems.join('\n  ')}`);
    Object.defineProperty(err, 'problems', { value: problems, enumerable: true });
    throw err;
  }
  return deepFreeze(result.data);
}

/** Each parsed service's policy, resolved once by `parseConfig` (the config is frozen, so it cannot go stale). */
const resolvedPolicies = new WeakMap<ServiceConfig, Policy>();

/**
 * The `@shoal/policy` policy of a service: its `policy` section plus its min/max replicas. Resolved once when the
 * config was parsed; a service config built by hand is resolved here.
 */
export function servicePolicy(service: ServiceConfig): Policy {
  return resolvedPolicies.get(service) ?? resolveServicePolicy(service);
}

function resolveServicePolicy(service: ServiceConfig): Policy {
  const input = service.policy as PolicyInput;
  return resolvePolicy({
    ...input,
    // The coordinator's own target fields (query, activationValue) stay here; the policy sees a plain target.
    ...(service.policy.targets
      ? {
          targets: service.policy.targets.map((t) => ({
            metric: t.metric,
            value: t.value,
            ...(t.type !== undefined ? { type: t.type } : t.query !== undefined ? { type: 'total' as const } : {}),
            ...(t.request !== undefined ? { request: t.request } : {}),
          })),
        }
      : {}),
    minReplicas: service.minReplicas,
    maxReplicas: service.maxReplicas,
  });
}

/** A service's external metrics: its targets with a `query`, by metric name. */
export function externalMetricsOf(service: ServiceConfig): Array<{ metric: string; query: string }> {
  return (service.policy.targets ?? [])
    .filter((t): t is typeof t & { query: string } => t.query !== undefined)
    .map((t) => ({ metric: t.metric, query: t.query }));
}

function inFlightTarget(s: {
  policy: { targets?: ReadonlyArray<{ metric: string; value: number; query?: string | undefined }> | undefined };
}): number | undefined {
  return (s.policy.targets ?? []).find((t) => t.metric === 'inFlight' && t.query === undefined)?.value;
}

/**
 * How a service wakes on client calls: undefined when it has no `wake` section; else the calls one replica takes
 * (`wake.callsPerReplica`, or the policy's `inFlight` target value) and how long a client's count is kept.
 */
export function wakeSettingsOf(service: ServiceConfig): { callsPerReplica: number; demandTtlMs: number } | undefined {
  if (!service.wake) return undefined;
  return {
    callsPerReplica: service.wake.callsPerReplica ?? inFlightTarget(service) ?? 1,
    demandTtlMs: service.wake.demandTtlMs,
  };
}

/** A service's activation targets (scale to zero): its query targets, with their activationValue (default 0). */
export function activationTargetsOf(service: ServiceConfig): Array<{ metric: string; activationValue: number }> {
  return (service.policy.targets ?? [])
    .filter((t) => t.query !== undefined || t.activationValue !== undefined)
    .map((t) => ({ metric: t.metric, activationValue: t.activationValue ?? 0 }));
}

export type PrometheusConfig = NonNullable<CoordinatorConfig['prometheus']>;

/**
 * Parses YAML text into a validated config. `overrides` (top-level keys, e.g. the CLI's `--insecure-dev`) are
 * applied over the document before validation.
 */
export function parseConfigYaml(
  text: string,
  source = 'config',
  overrides: Readonly<Partial<CoordinatorConfigInput>> = {},
): CoordinatorConfig {
  const doc = parseYamlDocument(text, source);
  const isObject = doc !== null && typeof doc === 'object' && !Array.isArray(doc);
  return parseConfig(isObject && Object.keys(overrides).length > 0 ? { ...doc, ...overrides } : doc, source);
}

/**
 * Reads, parses and validates a YAML config file — the one loader the CLI (start, `--check`, SIGHUP) and
 * applications use. Relative `tokenFile`s are read relative to the file. Throws `ConfigError` naming the file.
 */
export async function loadConfigFile(
  path: string,
  overrides: Readonly<Partial<CoordinatorConfigInput>> = {},
): Promise<CoordinatorConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parseConfigYaml(text, path, overrides);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
