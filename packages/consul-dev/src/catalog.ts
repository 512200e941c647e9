import type { Clock, Logger, TimerHandle } from '@shoal/core';
import { CheckRunner } from './check-runner.js';
import type { CheckStatus, Probe, ProbeResult } from './check-runner.js';
import type { Store } from './store.js';

/** The kinds of check the double knows. `maintenance` is the critical check that maintenance mode adds. */
export type CheckKind = 'ttl' | 'http' | 'tcp' | 'grpc' | 'udp' | 'h2ping' | 'script' | 'alias' | 'maintenance' | '';

/** A check as given in a registration, after decoding and validation. */
export interface CheckDefinition {
  checkId?: string;
  name?: string;
  notes: string;
  status?: CheckStatus;
  kind: CheckKind;
  ttlMs?: number;
  intervalMs?: number;
  timeoutMs?: number;
  deregisterCriticalServiceAfterMs?: number;
  outputMaxSize: number;
  failuresBeforeWarning?: number;
  failuresBeforeCritical?: number;
  successBeforePassing?: number;
  http?: string;
  method?: string;
  header?: Record<string, string[]>;
  body?: string;
  tlsSkipVerify?: boolean;
  tlsServerName?: string;
  disableRedirects?: boolean;
  tcp?: string;
  grpc?: string;
  grpcUseTls?: boolean;
  aliasService?: string;
  aliasNode?: string;
}

export interface ServiceDefinition {
  id: string;
  name: string;
  tags: string[];
  address: string;
  port: number;
  meta: Record<string, string>;
  taggedAddresses: Record<string, { Address: string; Port: number }>;
  weights: { Passing: number; Warning: number };
  enableTagOverride: boolean;
  kind: string;
  connectNative: boolean;
  checks: CheckDefinition[];
}

export interface ServiceRecord extends Omit<ServiceDefinition, 'checks'> {
  createIndex: number;
  modifyIndex: number;
  /** Catalog-only services (the built-in `consul` service) are not in the agent's local state. */
  internal: boolean;
}

export interface CheckRecord {
  id: string;
  name: string;
  notes: string;
  status: CheckStatus;
  /** What the agent endpoints show (updated at once). */
  output: string;
  /** What health/catalog show: Consul syncs output-only changes to the catalog lazily, on the next status change. */
  catalogOutput: string;
  serviceId: string;
  serviceName: string;
  definition: CheckDefinition;
  criticalSinceMs: number | undefined;
  createIndex: number;
  modifyIndex: number;
  ttlTimer?: TimerHandle;
  runner?: CheckRunner;
  /** Consecutive probe results, for SuccessBeforePassing / FailuresBeforeWarning / FailuresBeforeCritical. */
  successes: number;
  failures: number;
  /** A check from the node itself (`serfHealth`), not registered through the agent. */
  internal: boolean;
}

export interface NodeRecord {
  id: string;
  name: string;
  address: string;
  datacenter: string;
  meta: Record<string, string>;
  createIndex: number;
  modifyIndex: number;
}

/** Consul's `CheckDeregisterIntervalMin`: shorter DeregisterCriticalServiceAfter values are raised to it. */
export const MIN_DEREGISTER_AFTER_MS = 60_000;
/** Consul's `CheckReapInterval`. */
export const REAP_INTERVAL_MS = 30_000;
/** Consul's `checks.MinInterval`: shorter intervals are raised to it. */
export const MIN_CHECK_INTERVAL_MS = 1_000;
/** Consul's default timeout for HTTP/TCP/gRPC checks. */
export const DEFAULT_CHECK_TIMEOUT_MS = 10_000;

export type ProbeFactory = (def: CheckDefinition) => Probe | undefined;

export interface CatalogOptions {
  store: Store;
  clock: Clock;
  random: () => number;
  logger: Logger;
  node: { id: string; name: string; address: string; datacenter: string; meta: Record<string, string> };
  probeFor: ProbeFactory;
  /** Called after a service is removed (sessions watch their checks). */
  onChecksRemoved?: (checkIds: string[]) => void;
  /** Called after a check turns critical. */
  onCheckCritical?: (checkId: string) => void;
}

/** Truncates check output the way Consul does when it exceeds OutputMaxSize. */
export function truncateOutput(output: string, max: number): string {
  const bytes = Buffer.byteLength(output);
  if (max <= 0 || bytes <= max) return output;
  const head = Buffer.from(output).subarray(0, max).toString('utf8');
  return `${head} ... (captured ${max} of ${bytes} bytes)`;
}

/**
 * The catalog of the single dev node: services, checks, their indexes, TTL timers, check runners and the reaper of
 * services critical for longer than their DeregisterCriticalServiceAfter.
 */
export class Catalog {
  readonly node: NodeRecord;
  readonly services = new Map<string, ServiceRecord>();
  readonly checks = new Map<string, CheckRecord>();
  /** `service.<name>` indexes; deleted when a service name loses its last instance. */
  private readonly serviceIndexes = new Map<string, number>();
  private extinctionIndex = 0;
  private nodesTableIndex = 0;
  private servicesTableIndex = 0;
  private checksTableIndex = 0;
  private reapTimer: TimerHandle | undefined;
  private closed = false;

  constructor(private readonly opts: CatalogOptions) {
    const idx = opts.store.bump();
    this.node = { ...opts.node, meta: { ...opts.node.meta }, createIndex: idx, modifyIndex: idx };
    this.nodesTableIndex = idx;
    // The node's serf check and the `consul` service a dev agent always has.
    const serfIdx = opts.store.bump();
    this.checks.set('serfHealth', {
      id: 'serfHealth',
      name: 'Serf Health Status',
      notes: '',
      status: 'passing',
      output: 'Agent alive and reachable',
      catalogOutput: 'Agent alive and reachable',
      serviceId: '',
      serviceName: '',
      definition: { notes: '', kind: '', outputMaxSize: 4096 },
      criticalSinceMs: undefined,
      createIndex: serfIdx,
      modifyIndex: serfIdx,
      internal: true,
      successes: 0,
      failures: 0,
    });
    this.checksTableIndex = serfIdx;
    const consulIdx = opts.store.bump();
    this.services.set('consul', {
      id: 'consul',
      name: 'consul',
      tags: [],
      address: '',
      port: 8300,
      meta: {
        raft_version: '3',
        serf_protocol_current: '2',
        serf_protocol_max: '5',
        serf_protocol_min: '1',
        version: '1.20.0',
      },
      taggedAddresses: {},
      weights: { Passing: 1, Warning: 1 },
      enableTagOverride: false,
      kind: '',
      connectNative: false,
      createIndex: consulIdx,
      modifyIndex: consulIdx,
      internal: true,
    });
    this.serviceIndexes.set('consul', consulIdx);
    this.servicesTableIndex = consulIdx;
    this.scheduleReap();
  }

  // ---- indexes -----------------------------------------------------------------------------------------------

  private tablesMaxIndex(): number {
    return Math.max(this.nodesTableIndex, this.servicesTableIndex, this.checksTableIndex);
  }

  /** The X-Consul-Index of health/catalog service queries (`maxIndexAndWatchChForService`). */
  serviceQueryIndex(name: string, withChecks = true): number {
    const idx = this.serviceIndexes.get(name);
    if (idx !== undefined) return idx;
    if (this.extinctionIndex > 0) return this.extinctionIndex;
    return withChecks ? this.tablesMaxIndex() : Math.max(this.nodesTableIndex, this.servicesTableIndex);
  }

  /** Index of `/v1/catalog/services`. */
  servicesIndex(): number {
    return this.servicesTableIndex;
  }

  /** Index of the checks table (health/state, health/checks for a missing service). */
  checksIndex(): number {
    return this.checksTableIndex;
  }

  /** Index of node-level queries (health/node, catalog/nodes). */
  nodeIndex(): number {
    return Math.max(this.nodesTableIndex, this.checksTableIndex);
  }

  nodesIndex(): number {
    return this.nodesTableIndex;
  }

  private touchService(name: string, idx: number): void {
    this.serviceIndexes.set(name, idx);
  }

  private touchNodeServices(idx: number): void {
    for (const svc of this.services.values()) this.touchService(svc.name, idx);
  }

  instancesOf(name: string): ServiceRecord[] {
    const out: ServiceRecord[] = [];
    for (const svc of this.services.values()) if (svc.name === name) out.push(svc);
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  checksOfService(serviceId: string): CheckRecord[] {
    const out: CheckRecord[] = [];
    for (const c of this.checks.values()) if (c.serviceId === serviceId) out.push(c);
    return out;
  }

  nodeChecks(): CheckRecord[] {
    const out: CheckRecord[] = [];
    for (const c of this.checks.values()) if (c.serviceId === '') out.push(c);
    return out;
  }

  // ---- writes ------------------------------------------------------------------------------------------------

  /**
   * Adds or replaces a service and its checks in one write, as the agent's register + sync does. Existing checks
   * keep their status and output; with `replaceExistingChecks` checks no longer in the definition are removed.
   */
  registerService(def: ServiceDefinition, replaceExistingChecks: boolean): void {
    const idx = this.opts.store.bump();
    const previous = this.services.get(def.id);
    if (previous && previous.name !== def.name) this.removeServiceRecord(previous, idx);
    const { checks: checkDefs, ...rest } = def;
    const record: ServiceRecord = {
      ...rest,
      createIndex: previous && previous.name === def.name ? previous.createIndex : idx,
      modifyIndex: idx,
      internal: false,
    };
    this.services.set(def.id, record);
    this.servicesTableIndex = idx;
    this.touchService(def.name, idx);

    const keep = new Set<string>();
    checkDefs.forEach((c, i) => {
      const id = c.checkId || (checkDefs.length > 1 ? `service:${def.id}:${i + 1}` : `service:${def.id}`);
      keep.add(id);
      this.upsertCheck(id, c, record, idx);
    });
    if (replaceExistingChecks) {
      const removed: string[] = [];
      for (const c of this.checksOfService(def.id)) {
        if (!keep.has(c.id) && !c.id.startsWith('_service_maintenance:')) {
          this.dropCheck(c);
          removed.push(c.id);
        }
      }
      if (removed.length > 0) this.opts.onChecksRemoved?.(removed);
    }
  }

  /** Adds a check (agent/check/register) to a service, or to the node when `serviceId` is empty. */
  registerCheck(def: CheckDefinition & { checkId: string }, serviceId: string): void {
    const idx = this.opts.store.bump();
    const svc = serviceId ? this.services.get(serviceId) : undefined;
    this.upsertCheck(def.checkId, def, svc, idx);
    if (svc) this.touchService(svc.name, idx);
    else this.touchNodeServices(idx);
  }

  private upsertCheck(id: string, def: CheckDefinition, svc: ServiceRecord | undefined, idx: number): void {
    const existing = this.checks.get(id);
    if (existing) this.stopCheck(existing);
    const status: CheckStatus = existing ? existing.status : (def.status ?? 'critical');
    const output = existing ? existing.output : '';
    const check: CheckRecord = {
      id,
      name: def.name || (svc ? `Service '${svc.name}' check` : id),
      notes: def.notes,
      status,
      output,
      catalogOutput: output,
      serviceId: svc?.id ?? '',
      serviceName: svc?.name ?? '',
      definition: def,
      criticalSinceMs: existing?.criticalSinceMs ?? (status === 'critical' ? this.opts.clock.now() : undefined),
      createIndex: existing?.createIndex ?? idx,
      modifyIndex: idx,
      internal: false,
      successes: 0,
      failures: 0,
    };
    this.checks.set(id, check);
    this.checksTableIndex = idx;
    this.startCheck(check);
  }

  deregisterService(id: string): void {
    const svc = this.services.get(id);
    if (!svc) return;
    const idx = this.opts.store.bump();
    this.removeServiceRecord(svc, idx);
  }

  private removeServiceRecord(svc: ServiceRecord, idx: number): void {
    this.services.delete(svc.id);
    this.servicesTableIndex = idx;
    const removed: string[] = [];
    for (const c of this.checksOfService(svc.id)) {
      this.dropCheck(c);
      removed.push(c.id);
    }
    if (removed.length > 0) this.checksTableIndex = idx;
    if (this.instancesOf(svc.name).length === 0) {
      this.serviceIndexes.delete(svc.name);
      this.extinctionIndex = idx;
    } else {
      this.touchService(svc.name, idx);
    }
    if (removed.length > 0) this.opts.onChecksRemoved?.(removed);
  }

  deregisterCheck(id: string): void {
    const check = this.checks.get(id);
    if (!check) return;
    const idx = this.opts.store.bump();
    this.dropCheck(check);
    this.checksTableIndex = idx;
    if (check.serviceName) this.touchService(check.serviceName, idx);
    else this.touchNodeServices(idx);
    this.opts.onChecksRemoved?.([id]);
  }

  private dropCheck(check: CheckRecord): void {
    this.stopCheck(check);
    this.checks.delete(check.id);
  }

  /**
   * Sets a check's status and output. A status change is written to the catalog at once (new index, watchers
   * wake); an output-only change shows on the agent endpoints only, as Consul defers it (check_update_interval).
   */
  updateCheck(check: CheckRecord, status: CheckStatus, output: string): void {
    const out = truncateOutput(output, check.definition.outputMaxSize);
    check.output = out;
    if (status === check.status) return;
    const idx = this.opts.store.bump();
    const wasCritical = check.status === 'critical';
    check.status = status;
    check.catalogOutput = out;
    check.modifyIndex = idx;
    this.checksTableIndex = idx;
    if (status === 'critical') {
      if (!wasCritical) check.criticalSinceMs = this.opts.clock.now();
    } else {
      check.criticalSinceMs = undefined;
    }
    if (check.serviceName) this.touchService(check.serviceName, idx);
    else this.touchNodeServices(idx);
    if (status === 'critical') this.opts.onCheckCritical?.(check.id);
  }

  /** pass/warn/fail/update on a TTL check: new status and output, TTL timer restarted. */
  updateTtlCheck(check: CheckRecord, status: CheckStatus, output: string): void {
    this.updateCheck(check, status, output);
    this.armTtl(check);
  }

  /** Maintenance mode for a service: adds or removes the critical `_service_maintenance:<id>` check. */
  setServiceMaintenance(svc: ServiceRecord, enable: boolean, reason: string): void {
    const id = `_service_maintenance:${svc.id}`;
    if (!enable) {
      this.deregisterCheck(id);
      return;
    }
    if (this.checks.has(id)) return;
    this.registerCheck(
      {
        checkId: id,
        name: 'Service Maintenance Mode',
        notes:
          reason ||
          'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.',
        status: 'critical',
        kind: 'maintenance',
        outputMaxSize: 4096,
      },
      svc.id,
    );
  }

  // ---- timers ------------------------------------------------------------------------------------------------

  private startCheck(check: CheckRecord): void {
    const def = check.definition;
    if (def.kind === 'ttl') {
      this.armTtl(check);
      return;
    }
    if (def.intervalMs === undefined) return;
    const probe = this.opts.probeFor(def);
    if (!probe) return;
    const runner = new CheckRunner({
      clock: this.opts.clock,
      intervalMs: Math.max(def.intervalMs, MIN_CHECK_INTERVAL_MS),
      timeoutMs: def.timeoutMs && def.timeoutMs > 0 ? def.timeoutMs : DEFAULT_CHECK_TIMEOUT_MS,
      random: this.opts.random,
      probe,
      onResult: (result: ProbeResult) => {
        if (this.checks.get(check.id) === check) this.applyProbeResult(check, result);
      },
    });
    check.runner = runner;
    runner.start();
  }

  /** Consul's StatusHandler: thresholds of consecutive successes/failures before a status change is written. */
  private applyProbeResult(check: CheckRecord, result: ProbeResult): void {
    const def = check.definition;
    if (result.status === 'passing' || result.status === 'warning') {
      check.successes += 1;
      check.failures = 0;
      if (check.successes >= (def.successBeforePassing ?? 0)) this.updateCheck(check, result.status, result.output);
      return;
    }
    check.failures += 1;
    check.successes = 0;
    const beforeCritical = def.failuresBeforeCritical ?? 0;
    if (check.failures >= beforeCritical) {
      this.updateCheck(check, 'critical', result.output);
    } else if (check.failures >= (def.failuresBeforeWarning ?? beforeCritical)) {
      this.updateCheck(check, 'warning', result.output);
    }
  }

  private stopCheck(check: CheckRecord): void {
    this.opts.clock.clearTimeout(check.ttlTimer);
    check.ttlTimer = undefined;
    check.runner?.stop();
    check.runner = undefined;
  }

  private armTtl(check: CheckRecord): void {
    const ttl = check.definition.ttlMs;
    if (ttl === undefined) return;
    this.opts.clock.clearTimeout(check.ttlTimer);
    check.ttlTimer = this.opts.clock.setTimeout(() => {
      check.ttlTimer = undefined;
      if (this.closed || this.checks.get(check.id) !== check) return;
      const last = check.output;
      const output = last ? `TTL expired (last output before timeout follows): ${last}` : 'TTL expired';
      this.opts.logger.debug({ checkId: check.id }, 'check TTL expired');
      this.updateCheck(check, 'critical', output);
    }, ttl);
    check.ttlTimer.unref();
  }

  private scheduleReap(): void {
    if (this.closed) return;
    this.reapTimer = this.opts.clock.setTimeout(() => {
      this.reapTimer = undefined;
      this.reap();
      this.scheduleReap();
    }, REAP_INTERVAL_MS);
    this.reapTimer.unref();
  }

  /** Removes every service with a check critical for longer than its DeregisterCriticalServiceAfter. */
  reap(): void {
    const now = this.opts.clock.now();
    const doomed = new Set<string>();
    for (const c of this.checks.values()) {
      const after = c.definition.deregisterCriticalServiceAfterMs;
      if (after === undefined || c.status !== 'critical' || c.criticalSinceMs === undefined || !c.serviceId) continue;
      if (now - c.criticalSinceMs > Math.max(after, MIN_DEREGISTER_AFTER_MS)) doomed.add(c.serviceId);
    }
    for (const id of doomed) {
      this.opts.logger.info({ serviceId: id }, 'deregistering service critical for too long');
      this.deregisterService(id);
    }
  }

  close(): void {
    this.closed = true;
    this.opts.clock.clearTimeout(this.reapTimer);
    for (const c of this.checks.values()) this.stopCheck(c);
  }
}
