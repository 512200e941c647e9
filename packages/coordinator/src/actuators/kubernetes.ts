// Types only: `@kubernetes/client-node` (1.3 s to load) is imported when a Kubernetes actuator is created, so a
// coordinator with only local or command actuators never loads it.
import type { AppsV1Api, CoreV1Api, KubeConfig, V1Scale } from '@kubernetes/client-node';
import type * as ClientNode from '@kubernetes/client-node';
import {
  ActuatorError,
  EventEmitter,
  InvalidArgumentError,
  assertOneOf,
  assertPositiveInteger,
  assertString,
  componentLogger,
  errorFields,
  realClock,
  retry,
  withTimeout,
  type Clock,
  type Disposable,
  type Logger,
  type TimerHandle,
} from '@shoal/core';
import type { Actuator, ReplicaInfo, ScaleOptions, SelectedVictims } from './actuator.js';
import {
  isLabelSelector,
  isPodName,
  matchesSelector,
  selectorString,
  type LabelSelectorLike,
} from './kubernetes-selector.js';

/** The annotation the ReplicaSet controller reads to pick which pod to delete first (lower cost goes first). */
export const POD_DELETION_COST_ANNOTATION = 'controller.kubernetes.io/pod-deletion-cost';
/** The cost set on a chosen victim: the lowest int32, so it is deleted before any other pod. */
export const VICTIM_DELETION_COST = '-2147483648';

/** Exactly the RBAC rules the actuator needs (examples/kubernetes/rbac.yaml grants these and nothing more). */
export const KUBERNETES_RBAC_RULES: ReadonlyArray<{ apiGroup: string; resource: string; verbs: readonly string[] }> =
  Object.freeze([
    { apiGroup: 'apps', resource: 'deployments/scale', verbs: ['get', 'update'] },
    { apiGroup: 'apps', resource: 'statefulsets/scale', verbs: ['get', 'update'] },
    { apiGroup: 'apps', resource: 'deployments', verbs: ['get'] },
    { apiGroup: '', resource: 'pods', verbs: ['list', 'patch'] },
  ]);

export interface KubernetesActuatorOptions {
  kind?: 'Deployment' | 'StatefulSet';
  name: string;
  namespace?: string;
  /** A loaded KubeConfig; default: the in-cluster service account (`kubeconfig` path when given). */
  kubeConfig?: KubeConfig;
  kubeconfigPath?: string;
  /**
   * Label selector of the workload's pods (`app=web,tier in (api)`): scale-down victims are only pods listed under it
   * (and matched by the Deployment's own selector). Default: the Deployment's `spec.selector`.
   */
  podSelector?: string;
  /** Per request. Default 10000. */
  requestTimeoutMs?: number;
  /** How often `watch` re-reads the scale. Default 10000. */
  pollIntervalMs?: number;
  /** Attempts on 409 Conflict (re-read, then write again). Default 5. */
  maxConflictRetries?: number;
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
}

interface ApiErrorLike {
  code?: number;
  body?: unknown;
}

function statusOf(error: unknown): number | undefined {
  const code = (error as ApiErrorLike | undefined)?.code;
  return typeof code === 'number' && code >= 100 && code < 600 ? code : undefined;
}

function statusMessage(error: unknown): string {
  let body = (error as ApiErrorLike | undefined)?.body;
  if (typeof body === 'string') {
    const text = body;
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      return text.slice(0, 300);
    }
  }
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : error instanceof Error ? error.message : String(error);
}

/** The parts of an apps/v1 Deployment the actuator reads. */
interface DeploymentLike {
  metadata?: { generation?: number };
  spec?: { replicas?: number; selector?: LabelSelectorLike };
  status?: { replicas?: number; updatedReplicas?: number; observedGeneration?: number };
}

interface PodLike {
  metadata?: { name?: string; labels?: Record<string, string>; deletionTimestamp?: unknown };
}

function listIds(ids: readonly string[]): string {
  const shown = ids.slice(0, 5).map((id) => (isPodName(id) ? id : JSON.stringify(id.slice(0, 64))));
  return ids.length > 5 ? `${shown.join(', ')} and ${ids.length - 5} more` : shown.join(', ');
}

/**
 * The `kubernetes` actuator: reads and writes the `scale` subresource of a Deployment or StatefulSet, and marks the
 * chosen victim pod with the lowest `controller.kubernetes.io/pod-deletion-cost` before scaling down (Deployments;
 * a StatefulSet always removes its highest ordinal). Conflicts (409) are re-read and retried; 403 becomes an
 * `ActuatorError` naming the missing RBAC permission.
 */
export class KubernetesActuator implements Actuator {
  readonly type = 'kubernetes';
  readonly kind: 'Deployment' | 'StatefulSet';
  readonly name: string;
  readonly namespace: string;
  /** Set once `loaded` resolves; every API call awaits it first (`call`). */
  private k8s!: typeof ClientNode;
  private apps!: AppsV1Api;
  private core!: CoreV1Api;
  private readonly loaded: Promise<void>;
  private readonly timeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly maxConflictRetries: number;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly changes = new EventEmitter<number>();
  private readonly podSelector: string | undefined;
  private pollTimer: TimerHandle | undefined;
  private lastSeen: number | undefined;
  private closed = false;

  constructor(options: KubernetesActuatorOptions) {
    assertString('name', options.name);
    this.kind = options.kind ?? 'Deployment';
    assertOneOf('kind', this.kind, ['Deployment', 'StatefulSet']);
    this.name = options.name;
    this.namespace = options.namespace ?? 'default';
    assertString('namespace', this.namespace);
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    assertPositiveInteger('requestTimeoutMs', this.timeoutMs);
    this.pollIntervalMs = options.pollIntervalMs ?? 10_000;
    assertPositiveInteger('pollIntervalMs', this.pollIntervalMs);
    this.maxConflictRetries = options.maxConflictRetries ?? 5;
    assertPositiveInteger('maxConflictRetries', this.maxConflictRetries);
    this.loaded = this.loadClient(options.kubeConfig, options.kubeconfigPath);
    this.loaded.catch(() => {}); // surfaced by the first API call, never as an unhandled rejection
    this.log = componentLogger(options.logger, 'kubernetes-actuator', {
      workload: `${this.namespace}/${this.kind}/${this.name}`,
    });
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    this.podSelector = options.podSelector;
    if (this.podSelector !== undefined) {
      assertString('podSelector', this.podSelector);
      if (!isLabelSelector(this.podSelector)) {
        throw new InvalidArgumentError(
          `podSelector must be a label selector such as "app=web,tier in (api)", got ${JSON.stringify(this.podSelector.slice(0, 200))}`,
        );
      }
    }
  }

  /** The scale subresource as the API server has it. */
  async readScale(): Promise<V1Scale> {
    return this.call('get', `${this.resource()}/scale`, () =>
      this.kind === 'Deployment'
        ? this.apps.readNamespacedDeploymentScale({ name: this.name, namespace: this.namespace })
        : this.apps.readNamespacedStatefulSetScale({ name: this.name, namespace: this.namespace }),
    );
  }

  /** `spec.replicas`, the count the HPA works with (`status.replicas` includes surge pods during a rollout). */
  async getReplicas(): Promise<number> {
    const scale = await this.readScale();
    return scale.spec?.replicas ?? 0;
  }

  /**
   * Why the Deployment is rolling out, or undefined when it is not: `status.replicas` ≠ `spec.replicas` (surge or
   * missing pods), `status.updatedReplicas` < `status.replicas` or < `spec.replicas` (old pods left), or
   * `status.observedGeneration` behind `metadata.generation` (a change the controller has not acted on yet).
   */
  rolloutReason(deployment: DeploymentLike): string | undefined {
    const spec = deployment.spec?.replicas ?? 1;
    const status = deployment.status ?? {};
    const replicas = status.replicas ?? 0;
    const updated = status.updatedReplicas ?? 0;
    const observed = status.observedGeneration ?? 0;
    const generation = deployment.metadata?.generation ?? 0;
    const why: string[] = [];
    if (observed < generation) why.push(`observedGeneration ${observed} < generation ${generation}`);
    if (replicas !== spec) why.push(`status.replicas ${replicas} ≠ spec.replicas ${spec}`);
    if (updated < Math.max(replicas, spec)) why.push(`updatedReplicas ${updated} < ${Math.max(replicas, spec)}`);
    return why.length > 0 ? why.join(', ') : undefined;
  }

  /**
   * Of the policy's victims, the pods this actuator removes first, and why the others are held. A victim is a pod
   * name (RFC 1123) listed under the target's selector (`podSelector`, else the Deployment's `spec.selector`), also
   * matched by the Deployment's selector, and not terminating. None while the Deployment rolls out (its own pods
   * come and go; the controller picks which go, and each drains on SIGTERM), none for a StatefulSet (it removes its
   * highest ordinals), and none when the API cannot say (the scale still happens; only the preference is lost).
   */
  async selectVictims(ids: readonly string[]): Promise<SelectedVictims> {
    if (ids.length === 0) return { victims: [], reasons: [] };
    const workload = `${this.kind} ${this.namespace}/${this.name}`;
    const held = (why: string, which: readonly string[] = ids): SelectedVictims => {
      const reason = `victims held (${listIds(which)}): ${why}`;
      this.log.info({ held: which.slice(0, 10), reason }, 'scale-down victims held');
      return { victims: [], reasons: [reason] };
    };
    if (this.kind !== 'Deployment') {
      return held(`a ${workload} removes its highest ordinals; those pods drain on SIGTERM`);
    }
    let deployment: DeploymentLike;
    let pods: PodLike[];
    let selector: string;
    try {
      deployment = await this.call('get', 'deployments', () =>
        this.apps.readNamespacedDeployment({ name: this.name, namespace: this.namespace }),
      );
      const rolling = this.rolloutReason(deployment);
      if (rolling !== undefined) {
        return held(
          `${workload} is rolling out (${rolling}); the Deployment controller picks the pods to remove and each drains on SIGTERM`,
        );
      }
      selector = this.podSelector ?? selectorString(deployment.spec?.selector);
      if (selector === '') return held(`${workload} has no pod selector`);
      const list = await this.call('list', 'pods', () =>
        this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: selector }),
      );
      pods = list.items ?? [];
    } catch (error) {
      this.log.warn(errorFields(error), 'cannot check the scale-down victims');
      return held(`cannot check them against the API server (${(error as Error).message})`);
    }
    const own = deployment.spec?.selector;
    const names = new Set(
      pods
        .filter((p) => !p.metadata?.deletionTimestamp && matchesSelector(p.metadata?.labels ?? {}, own))
        .map((p) => p.metadata?.name ?? ''),
    );
    const victims = ids.filter((id) => isPodName(id) && names.has(id));
    const others = ids.filter((id) => !victims.includes(id));
    if (others.length === 0) return { victims, reasons: [] };
    const { reasons } = held(`not running pods of ${workload} (listed under "${selector}")`, others);
    return { victims, reasons };
  }

  replicas(): readonly ReplicaInfo[] {
    return [];
  }

  async scaleTo(replicas: number, options: ScaleOptions = {}): Promise<void> {
    if (!Number.isInteger(replicas) || replicas < 0) {
      throw new InvalidArgumentError(`replicas must be an integer >= 0, got ${replicas}`);
    }
    let scale = await this.readScale();
    const current = scale.spec?.replicas ?? 0;
    if (replicas < current && this.kind === 'Deployment' && (options.victims ?? []).length > 0) {
      // Only pods of this target, and none during a rollout: checked here too (a rollout may have started while the
      // control loop drained them, and scaleTo is public).
      const { victims } = await this.selectVictims(options.victims ?? []);
      for (const victim of victims.slice(0, current - replicas)) await this.markVictim(victim);
    }
    for (let attempt = 1; ; attempt++) {
      if ((scale.spec?.replicas ?? 0) === replicas) return;
      const body: V1Scale = {
        apiVersion: 'autoscaling/v1',
        kind: 'Scale',
        metadata: {
          name: this.name,
          namespace: this.namespace,
          ...(scale.metadata?.resourceVersion ? { resourceVersion: scale.metadata.resourceVersion } : {}),
        },
        spec: { replicas },
      };
      try {
        await this.call('update', `${this.resource()}/scale`, () =>
          this.kind === 'Deployment'
            ? this.apps.replaceNamespacedDeploymentScale({ name: this.name, namespace: this.namespace, body })
            : this.apps.replaceNamespacedStatefulSetScale({ name: this.name, namespace: this.namespace, body }),
        );
        this.log.info({ from: scale.spec?.replicas, to: replicas }, 'scaled');
        this.noteReplicas(replicas);
        return;
      } catch (error) {
        if (statusOf((error as ActuatorError).cause) !== 409 || attempt >= this.maxConflictRetries) throw error;
        this.log.info({ attempt }, 'scale conflict (409): re-reading');
        scale = await this.readScale();
      }
    }
  }

  watch(listener: (replicas: number) => void): Disposable {
    const dispose = this.changes.event(listener);
    if (!this.pollTimer && !this.closed) this.schedulePoll();
    return () => {
      dispose();
      if (this.changes.size === 0) {
        this.clock.clearTimeout(this.pollTimer);
        this.pollTimer = undefined;
      }
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clock.clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.changes.clear();
  }

  private schedulePoll(): void {
    this.pollTimer = this.clock.setTimeout(() => {
      this.getReplicas()
        .then((n) => this.noteReplicas(n))
        .catch((error: unknown) => this.log.warn(errorFields(error), 'cannot read the scale'))
        .finally(() => {
          if (!this.closed && this.changes.size > 0) this.schedulePoll();
        });
    }, this.pollIntervalMs);
    this.pollTimer.unref();
  }

  private noteReplicas(n: number): void {
    if (n !== this.lastSeen) {
      this.lastSeen = n;
      this.changes.emit(n);
    }
  }

  private async markVictim(pod: string): Promise<void> {
    try {
      await this.call(
        'patch',
        'pods',
        () =>
          this.core.patchNamespacedPod(
            {
              name: pod,
              namespace: this.namespace,
              body: { metadata: { annotations: { [POD_DELETION_COST_ANNOTATION]: VICTIM_DELETION_COST } } },
            },
            this.k8s.setHeaderOptions('Content-Type', this.k8s.PatchStrategy.MergePatch),
          ),
        false,
      );
    } catch (error) {
      // A victim that is already gone is not a reason to stop scaling; a permission problem is.
      if (statusOf((error as ActuatorError).cause) === 404) {
        this.log.info({ pod }, 'victim pod not found; scaling down without a deletion cost');
        return;
      }
      throw error;
    }
  }

  /** Imports `@kubernetes/client-node` and builds the API clients (the kubeconfig is read here). */
  private async loadClient(kubeConfig: KubeConfig | undefined, kubeconfigPath: string | undefined): Promise<void> {
    let k8s: typeof ClientNode;
    try {
      k8s = await import('@kubernetes/client-node');
    } catch (error) {
      throw new ActuatorError(`cannot load @kubernetes/client-node: ${(error as Error).message}`, {
        cause: error,
        retryable: false,
      });
    }
    let kc = kubeConfig;
    if (!kc) {
      try {
        kc = new k8s.KubeConfig();
        if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
        else kc.loadFromCluster();
      } catch (error) {
        const source = kubeconfigPath ? `kubeconfig "${kubeconfigPath}"` : 'the in-cluster service account';
        throw new ActuatorError(
          `cannot load the Kubernetes configuration from ${source}: ${(error as Error).message}`,
          {
            cause: error,
            retryable: false,
          },
        );
      }
    }
    this.k8s = k8s;
    this.apps = kc.makeApiClient(k8s.AppsV1Api);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  private resource(): string {
    return this.kind === 'Deployment' ? 'deployments' : 'statefulsets';
  }

  /** One API call with a timeout, bounded retries on 5xx/429/network errors, and readable errors. */
  private async call<T>(verb: string, resource: string, fn: () => Promise<T>, retryServerErrors = true): Promise<T> {
    await this.loaded;
    try {
      return await retry(
        () => withTimeout(fn(), this.timeoutMs, `kubernetes ${verb} ${resource}`, { clock: this.clock }),
        {
          maxAttempts: retryServerErrors ? 3 : 1,
          baseMs: 200,
          capMs: 2000,
          clock: this.clock,
          random: this.random,
          shouldRetry: (error) => {
            const status = statusOf(error);
            return status === undefined || status === 429 || status >= 500;
          },
        },
      );
    } catch (error) {
      const status = statusOf(error);
      const group = resource === 'pods' ? '""' : '"apps"';
      if (status === 403) {
        throw new ActuatorError(
          `Kubernetes RBAC: the coordinator's service account may not "${verb}" ${resource} (API group ${group}) in ` +
            `namespace "${this.namespace}". Grant it with a Role/RoleBinding (see examples/kubernetes/rbac.yaml). ` +
            `API server said: ${statusMessage(error)}`,
          { cause: error, retryable: false },
        );
      }
      if (status === 401) {
        throw new ActuatorError(`Kubernetes API refused the credentials (401): ${statusMessage(error)}`, {
          cause: error,
          retryable: false,
        });
      }
      if (status === 404) {
        throw new ActuatorError(
          `Kubernetes ${resource === 'pods' ? 'pod' : `${this.kind} "${this.name}"`} not found in namespace "${this.namespace}": ${statusMessage(error)}`,
          { cause: error, retryable: false },
        );
      }
      const what =
        status === undefined
          ? error instanceof Error
            ? error.message
            : String(error)
          : `${status}: ${statusMessage(error)}`;
      this.log.debug({ verb, resource, ...errorFields(error) }, 'kubernetes call failed');
      throw new ActuatorError(`Kubernetes ${verb} ${resource} failed (${what})`, {
        cause: error,
        retryable: status === undefined || status === 409 || status === 429 || status >= 500,
      });
    }
  }
}
