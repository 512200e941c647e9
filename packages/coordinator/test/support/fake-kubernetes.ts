import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/**
 * A stand-in for the parts of the Kubernetes API server (and the Deployment and ReplicaSet controllers behind it)
 * that the kubernetes actuator uses, over real HTTP, reproducing their documented behaviour:
 *
 * - `GET /apis/apps/v1/namespaces/:ns/deployments/:name` — the Deployment with `metadata.generation` and the
 *   status the controller last wrote (`observedGeneration`, `replicas`, `updatedReplicas`, `readyReplicas`,
 *   `availableReplicas`, `unavailableReplicas`);
 * - `GET`/`PUT .../{deployments,statefulsets}/:name/scale` — autoscaling/v1 Scale with optimistic concurrency on
 *   `resourceVersion` (409 Conflict); a PUT changes the spec, so it bumps `generation`;
 * - `GET /api/v1/namespaces/:ns/pods?labelSelector=` — equality- and set-based selectors (400 on a bad one);
 *   terminating pods are listed with `deletionTimestamp`;
 * - `PATCH /api/v1/namespaces/:ns/pods/:name` — merge-patch only (415 otherwise), 404 for an unknown pod, 422 when
 *   `controller.kubernetes.io/pod-deletion-cost` is not a 32-bit integer (the API server validates it);
 * - `Status` bodies for every error: 401, 403 (RBAC wording), 404, 409, 415, 422 (a ValidatingAdmissionPolicy).
 *
 * `reconcile()` is one sync of the Deployment controller's rolling update (maxSurge rounded up, maxUnavailable
 * rounded down, new ReplicaSet scaled up within the surge, old ones scaled down while enough pods are available)
 * and of the ReplicaSet controller (creates pods not ready; deletes not-ready pods first, then the lowest
 * pod-deletion-cost, then the newest). `markReady()` is the kubelet's probes passing; `finishTerminations()` the
 * kubelet removing terminated pods.
 */
export interface FakePod {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  ready: boolean;
  deletionTimestamp?: string;
  seq: number;
  owner: string;
}

interface FakeReplicaSet {
  name: string;
  hash: string;
  replicas: number;
  seq: number;
}

export interface FakeDeployment {
  name: string;
  labels: Record<string, string>;
  generation: number;
  replicas: number;
  template: string;
  maxSurge: number | string;
  maxUnavailable: number | string;
  replicaSets: FakeReplicaSet[];
  status: {
    observedGeneration: number;
    replicas: number;
    updatedReplicas: number;
    readyReplicas: number;
    availableReplicas: number;
    unavailableReplicas: number;
  };
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  contentType?: string;
  body?: unknown;
}

const SA = 'system:serviceaccount:shoal:shoal-coordinator';

export class FakeKubernetes {
  readonly requests: RecordedRequest[] = [];
  readonly namespace = 'prod';
  readonly deployments = new Map<string, FakeDeployment>();
  readonly statefulSets = new Map<string, number>([['db', 2]]);
  readonly pods = new Map<string, FakePod>();
  /** The workloads' resourceVersion (one counter: enough for the optimistic concurrency the actuator sees). */
  resourceVersion = 100;
  /** `"<verb> <resource>"` pairs the service account may not do (`"get deployments"`, `"list pods"`). */
  readonly forbidden = new Set<string>();
  conflictsToInject = 0;
  /** A ValidatingAdmissionPolicy refusing scales above this (422 Invalid). */
  maxReplicasPolicy: number | undefined;
  hang = false;
  /** Runs after a pod list was answered (to make a pod vanish before the patch, say). */
  afterList: (() => void) | undefined;
  private seq = 0;
  private readonly server: Server;

  constructor(readonly token = 'sa-token') {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  kubeConfig(url: string, token = this.token): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: url, skipTLSVerify: true }],
      users: [{ name: 'sa', token }],
      contexts: [{ name: 'test', cluster: 'test', user: 'sa', namespace: this.namespace }],
      currentContext: 'test',
    });
    return kc;
  }

  /** A Deployment with `replicas` ready pods of its first template, fully rolled out. */
  addDeployment(
    name: string,
    replicas: number,
    strategy: { maxSurge?: number | string; maxUnavailable?: number | string } = {},
  ): FakeDeployment {
    const previous = new Set(this.deployments.get(name)?.replicaSets.map((rs) => rs.name));
    for (const p of [...this.pods.values()]) if (previous.has(p.owner)) this.pods.delete(p.name);
    const d: FakeDeployment = {
      name,
      labels: { app: name },
      generation: 1,
      replicas,
      template: 'v1',
      maxSurge: strategy.maxSurge ?? '25%',
      maxUnavailable: strategy.maxUnavailable ?? '25%',
      replicaSets: [],
      status: {
        observedGeneration: 0,
        replicas: 0,
        updatedReplicas: 0,
        readyReplicas: 0,
        availableReplicas: 0,
        unavailableReplicas: 0,
      },
    };
    this.deployments.set(name, d);
    this.reconcile(name);
    this.markReady();
    this.reconcile(name);
    return d;
  }

  /** `kubectl rollout restart`: the pod template changes (restartedAt annotation), so does the generation. */
  rolloutRestart(name: string): void {
    const d = this.deployments.get(name)!;
    d.template = `${d.template}+restart`;
    d.generation++;
    this.resourceVersion++;
  }

  /** Active (not terminating) pods of a Deployment. */
  activePods(name: string): FakePod[] {
    const d = this.deployments.get(name)!;
    const owners = new Set(d.replicaSets.map((rs) => rs.name));
    return [...this.pods.values()].filter((p) => owners.has(p.owner) && !p.deletionTimestamp);
  }

  /** Pods of the Deployment's current template (its new ReplicaSet), active. */
  updatedPods(name: string): FakePod[] {
    const d = this.deployments.get(name)!;
    const hash = templateHash(d.template);
    return this.activePods(name).filter((p) => p.labels['pod-template-hash'] === hash);
  }

  /** The kubelet's readiness probes pass on every running pod. */
  markReady(): void {
    for (const p of this.pods.values()) if (!p.deletionTimestamp) p.ready = true;
  }

  /** The kubelet is done with terminating pods: they leave the API. */
  finishTerminations(): string[] {
    const gone = [...this.pods.values()].filter((p) => p.deletionTimestamp).map((p) => p.name);
    for (const name of gone) this.pods.delete(name);
    return gone;
  }

  /** A rolling update driven to the end: reconcile, pods become ready, terminated pods leave; until complete. */
  completeRollout(name: string): void {
    for (let i = 0; i < 100; i++) {
      this.reconcile(name);
      this.markReady();
      this.finishTerminations();
      this.reconcile(name);
      const d = this.deployments.get(name)!;
      const s = d.status;
      if (
        s.observedGeneration === d.generation &&
        s.updatedReplicas === d.replicas &&
        s.replicas === d.replicas &&
        s.availableReplicas === d.replicas
      ) {
        return;
      }
    }
    throw new Error(`rollout of ${name} did not complete`);
  }

  /** One sync of the Deployment controller, then of the ReplicaSet controller; the status is written last. */
  reconcile(name: string): void {
    const d = this.deployments.get(name)!;
    const hash = templateHash(d.template);
    let newRs = d.replicaSets.find((rs) => rs.hash === hash);
    if (!newRs) {
      newRs = { name: `${d.name}-${hash}`, hash, replicas: 0, seq: this.seq++ };
      d.replicaSets.push(newRs);
    }
    const old = d.replicaSets.filter((rs) => rs !== newRs);
    const spec = d.replicas;
    const surge = resolveIntOrPercent(d.maxSurge, spec, true);
    let unavailable = resolveIntOrPercent(d.maxUnavailable, spec, false);
    if (surge === 0 && unavailable === 0) unavailable = 1;
    if (old.every((rs) => rs.replicas === 0)) {
      newRs.replicas = spec; // not rolling: a scale
    } else {
      const total = () => d.replicaSets.reduce((n, rs) => n + rs.replicas, 0);
      if (newRs.replicas > spec) newRs.replicas = spec;
      if (newRs.replicas < spec && total() < spec + surge) {
        newRs.replicas += Math.min(spec + surge - total(), spec - newRs.replicas);
      }
      const readyOf = (rs: FakeReplicaSet) =>
        [...this.pods.values()].filter((p) => p.owner === rs.name && !p.deletionTimestamp && p.ready).length;
      const available = d.replicaSets.reduce((n, rs) => n + readyOf(rs), 0);
      const minAvailable = spec - unavailable;
      const newUnavailable = newRs.replicas - readyOf(newRs);
      let down = Math.min(total() - minAvailable - newUnavailable, available - minAvailable);
      for (const rs of old.sort((a, b) => a.seq - b.seq)) {
        if (down <= 0) break;
        const n = Math.min(down, rs.replicas);
        rs.replicas -= n;
        down -= n;
      }
      // The scale went down below what the old ReplicaSets hold (proportional scaling, simplified).
      let excess = total() - (spec + surge);
      for (const rs of old) {
        if (excess <= 0) break;
        const n = Math.min(excess, rs.replicas);
        rs.replicas -= n;
        excess -= n;
      }
    }
    for (const rs of d.replicaSets) this.syncReplicaSet(d, rs);
    const active = this.activePods(name);
    const ready = active.filter((p) => p.ready).length;
    const before = JSON.stringify(d.status);
    d.status = {
      observedGeneration: d.generation,
      replicas: active.length,
      updatedReplicas: active.filter((p) => p.labels['pod-template-hash'] === hash).length,
      readyReplicas: ready,
      availableReplicas: ready,
      unavailableReplicas: Math.max(0, spec - ready),
    };
    if (JSON.stringify(d.status) !== before) this.resourceVersion++; // a status write changes the object too
  }

  private syncReplicaSet(d: FakeDeployment, rs: FakeReplicaSet): void {
    const pods = [...this.pods.values()].filter((p) => p.owner === rs.name && !p.deletionTimestamp);
    for (let i = pods.length; i < rs.replicas; i++) {
      const name = `${rs.name}-${suffix(this.seq)}`;
      this.pods.set(name, {
        name,
        labels: { ...d.labels, 'pod-template-hash': rs.hash },
        annotations: {},
        ready: false,
        seq: this.seq++,
        owner: rs.name,
      });
    }
    if (pods.length > rs.replicas) {
      const ranked = pods.sort(
        (a, b) => Number(a.ready) - Number(b.ready) || deletionCost(a) - deletionCost(b) || b.seq - a.seq, // newest first
      );
      for (const p of ranked.slice(0, pods.length - rs.replicas)) p.deletionTimestamp = new Date().toISOString();
    }
  }

  private deploymentBody(d: FakeDeployment) {
    return {
      kind: 'Deployment',
      apiVersion: 'apps/v1',
      metadata: {
        name: d.name,
        namespace: this.namespace,
        generation: d.generation,
        resourceVersion: String(this.resourceVersion),
        uid: `uid-${d.name}`,
      },
      spec: {
        replicas: d.replicas,
        selector: { matchLabels: d.labels },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: d.maxSurge, maxUnavailable: d.maxUnavailable } },
        template: {
          metadata: { labels: d.labels, annotations: { 'kubectl.kubernetes.io/restartedAt': d.template } },
          spec: { containers: [{ name: 'app', image: 'web:1' }] },
        },
      },
      status: { ...d.status },
    };
  }

  private scaleBody(kind: string, name: string) {
    const d = this.deployments.get(name);
    const spec = kind === 'deployments' ? d!.replicas : this.statefulSets.get(name)!;
    const status = kind === 'deployments' ? d!.status.replicas : spec;
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name, namespace: this.namespace, resourceVersion: String(this.resourceVersion), uid: `u-${name}` },
      spec: { replicas: spec },
      status: { replicas: status, selector: `app=${name}` },
    };
  }

  private podBody(p: FakePod) {
    return {
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: {
        name: p.name,
        namespace: this.namespace,
        labels: p.labels,
        annotations: p.annotations,
        ...(p.deletionTimestamp ? { deletionTimestamp: p.deletionTimestamp, deletionGracePeriodSeconds: 30 } : {}),
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: p.owner, controller: true }],
      },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: p.ready ? 'True' : 'False' }],
      },
    };
  }

  private status(res: ServerResponse, code: number, reason: string, message: string, details: object = {}): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message,
        reason,
        details,
        code,
      }),
    );
  }

  private ok(res: ServerResponse, body: unknown): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private forbid(res: ServerResponse, verb: string, resource: string, group: string, name?: string): boolean {
    if (!this.forbidden.has(`${verb} ${resource}`)) return false;
    const [base] = resource.split('/');
    const subject = name ? `${base}${group ? `.${group}` : ''} "${name}"` : `${base}${group ? `.${group}` : ''}`;
    this.status(
      res,
      403,
      'Forbidden',
      `${subject} is forbidden: User "${SA}" cannot ${verb} resource "${resource}" in API group "${group}" in the namespace "${this.namespace}"`,
      { ...(name ? { name } : {}), group, kind: base },
    );
    return true;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's free-form JSON
    const body = text ? (JSON.parse(text) as Record<string, any>) : undefined;
    const url = new URL(req.url!, 'http://x');
    const path = url.pathname;
    this.requests.push({
      method: req.method!,
      path,
      query: url.searchParams,
      ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}),
      ...(body ? { body } : {}),
    });
    if (this.hang) return;
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return this.status(res, 401, 'Unauthorized', 'Unauthorized');
    }
    const ns = this.namespace;
    const scale = new RegExp(`^/apis/apps/v1/namespaces/${ns}/(deployments|statefulsets)/([^/]+)/scale$`).exec(path);
    if (scale) {
      const [, kind, name] = scale as unknown as [string, string, string];
      if (this.forbid(res, req.method === 'GET' ? 'get' : 'update', `${kind}/scale`, 'apps', name)) return;
      const exists = kind === 'deployments' ? this.deployments.has(name) : this.statefulSets.has(name);
      if (!exists)
        return this.status(res, 404, 'NotFound', `${kind}.apps "${name}" not found`, { name, group: 'apps', kind });
      if (req.method === 'GET') return this.ok(res, this.scaleBody(kind, name));
      if (req.method === 'PUT') {
        if (this.conflictsToInject > 0) {
          this.conflictsToInject--;
          this.resourceVersion++; // someone else wrote in between
        }
        if (body?.metadata?.resourceVersion && body.metadata.resourceVersion !== String(this.resourceVersion)) {
          return this.status(
            res,
            409,
            'Conflict',
            `Operation cannot be fulfilled on ${kind}.apps "${name}": the object has been modified; please apply your changes to the latest version and try again`,
            { name, group: 'apps', kind },
          );
        }
        const replicas = body?.spec?.replicas as number;
        // The API server's validation of autoscaling/v1 Scale: spec.replicas is an int32 >= 0 (0 is valid: scale to
        // zero; the Deployment keeps existing with no pod).
        if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
          return this.status(
            res,
            422,
            'Invalid',
            `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
            { name, group: 'autoscaling', kind: 'Scale' },
          );
        }
        if (this.maxReplicasPolicy !== undefined && replicas > this.maxReplicasPolicy) {
          return this.status(
            res,
            422,
            'Invalid',
            `${kind}.apps "${name}" is forbidden: ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-binding' denied request: failed expression: object.spec.replicas <= ${this.maxReplicasPolicy}`,
            { name, group: 'apps', kind },
          );
        }
        if (kind === 'deployments') {
          const d = this.deployments.get(name)!;
          if (d.replicas !== replicas) d.generation++;
          d.replicas = replicas;
        } else {
          this.statefulSets.set(name, replicas);
        }
        this.resourceVersion++;
        return this.ok(res, this.scaleBody(kind, name));
      }
    }
    const deployment = new RegExp(`^/apis/apps/v1/namespaces/${ns}/deployments/([^/]+)$`).exec(path);
    if (deployment && req.method === 'GET') {
      const name = deployment[1]!;
      if (this.forbid(res, 'get', 'deployments', 'apps', name)) return;
      const d = this.deployments.get(name);
      if (!d)
        return this.status(res, 404, 'NotFound', `deployments.apps "${name}" not found`, {
          name,
          group: 'apps',
          kind: 'deployments',
        });
      return this.ok(res, this.deploymentBody(d));
    }
    if (path === `/api/v1/namespaces/${ns}/pods` && req.method === 'GET') {
      if (this.forbid(res, 'list', 'pods', '')) return;
      const selector = parseSelector(url.searchParams.get('labelSelector') ?? '');
      if (!selector) {
        return this.status(
          res,
          400,
          'BadRequest',
          `unable to parse requirement: ${url.searchParams.get('labelSelector')}`,
        );
      }
      const items = [...this.pods.values()].filter((p) => selector(p.labels)).map((p) => this.podBody(p));
      this.ok(res, {
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(this.resourceVersion) },
        items,
      });
      this.afterList?.();
      return;
    }
    const pod = new RegExp(`^/api/v1/namespaces/${ns}/pods/([^/]+)$`).exec(path);
    if (pod && req.method === 'PATCH') {
      const name = decodeURIComponent(pod[1]!);
      if (this.forbid(res, 'patch', 'pods', '', name)) return;
      if (req.headers['content-type'] !== 'application/merge-patch+json') {
        return this.status(res, 415, 'UnsupportedMediaType', 'the body of the request was in an unknown format');
      }
      const p = this.pods.get(name);
      if (!p) return this.status(res, 404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' });
      const annotations = { ...p.annotations };
      for (const [k, v] of Object.entries((body?.metadata?.annotations ?? {}) as Record<string, string | null>)) {
        if (v === null) delete annotations[k];
        else annotations[k] = v;
      }
      const cost = annotations['controller.kubernetes.io/pod-deletion-cost'];
      if (cost !== undefined && !isInt32(cost)) {
        return this.status(
          res,
          422,
          'Invalid',
          `Pod "${name}" is invalid: metadata.annotations[controller.kubernetes.io/pod-deletion-cost]: Invalid value: "${cost}": must be a 32bit integer`,
          {
            name,
            kind: 'Pod',
            causes: [
              {
                reason: 'FieldValueInvalid',
                field: 'metadata.annotations[controller.kubernetes.io/pod-deletion-cost]',
              },
            ],
          },
        );
      }
      p.annotations = annotations; // the pod's own resourceVersion changes, not the Deployment's
      return this.ok(res, this.podBody(p));
    }
    this.status(res, 404, 'NotFound', 'the server could not find the requested resource');
  }
}

/** A pod of another workload in the same namespace (its labels do not match `app=web`). */
export function addStrayPod(k: FakeKubernetes, name: string, labels: Record<string, string>): void {
  k.pods.set(name, { name, labels, annotations: {}, ready: true, seq: -1, owner: 'elsewhere' });
}

function templateHash(template: string): string {
  return createHash('sha256')
    .update(template)
    .digest('hex')
    .slice(0, 10)
    .replace(/[^a-z0-9]/g, 'x');
}

function suffix(n: number): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let s = '';
  let x = n * 7919 + 12345;
  for (let i = 0; i < 5; i++) {
    s += alphabet[x % alphabet.length];
    x = Math.floor(x / alphabet.length) + i * 31;
  }
  return s;
}

function deletionCost(p: FakePod): number {
  const v = p.annotations['controller.kubernetes.io/pod-deletion-cost'];
  return v !== undefined && isInt32(v) ? Number(v) : 0;
}

function isInt32(v: string): boolean {
  return /^(0|-?[1-9][0-9]*)$/.test(v) && Number(v) >= -2147483648 && Number(v) <= 2147483647;
}

function resolveIntOrPercent(v: number | string, total: number, roundUp: boolean): number {
  if (typeof v === 'number') return v;
  const pct = (Number(v.replace('%', '')) * total) / 100;
  return roundUp ? Math.ceil(pct) : Math.floor(pct);
}

/** Parses a label selector (what the API server accepts in `labelSelector`), or undefined when it is malformed. */
function parseSelector(s: string): ((labels: Record<string, string>) => boolean) | undefined {
  const tests: Array<(l: Record<string, string>) => boolean> = [];
  for (const raw of s.split(/,(?![^(]*\))/)) {
    const r = raw.trim();
    if (r === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(r))) {
      const [, k, op, v] = m as unknown as [string, string, string, string];
      tests.push((l) => (op === '!=' ? l[k] !== v : l[k] === v));
    } else if ((m = /^([\w./-]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(r))) {
      const [, k, op, vs] = m as unknown as [string, string, string, string];
      const values = vs.split(',').map((v) => v.trim());
      tests.push((l) => (op === 'in' ? k in l && values.includes(l[k]!) : !(k in l) || !values.includes(l[k]!)));
    } else if ((m = /^(!?)([\w./-]+)$/.exec(r))) {
      const [, not, k] = m as unknown as [string, string, string];
      tests.push((l) => (not ? !(k in l) : k in l));
    } else {
      return undefined;
    }
  }
  return (labels) => tests.every((t) => t(labels));
}
