import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { hasErrorCode } from '@shoal/core';
import {
  KUBERNETES_RBAC_RULES,
  KubernetesActuator,
  POD_DELETION_COST_ANNOTATION,
  VICTIM_DELETION_COST,
} from '@shoal/coordinator';

/**
 * A stand-in for the parts of the Kubernetes API server the actuator uses, reproducing its documented requests and
 * responses: the autoscaling/v1 Scale subresource (GET/PUT with optimistic concurrency on resourceVersion), pod
 * merge-patches, and `Status` error bodies for 401/403/404/409/415.
 */
class FakeApiServer {
  readonly requests: Array<{ method: string; path: string; contentType?: string; body?: unknown }> = [];
  replicas = new Map<string, number>([
    ['deployments/web', 3],
    ['statefulsets/db', 2],
  ]);
  resourceVersion = 100;
  pods = new Map<string, Record<string, string>>([
    ['web-a', {}],
    ['web-b', {}],
    ['web-c', {}],
  ]);
  forbidden = false;
  conflictsToInject = 0;
  hang = false;
  server: Server;

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

  private scaleBody(kind: string, name: string, ns: string) {
    const replicas = this.replicas.get(`${kind}/${name}`)!;
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name, namespace: ns, resourceVersion: String(this.resourceVersion), uid: 'u-1' },
      spec: { replicas },
      status: { replicas, selector: `app=${name}` },
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's free-form JSON
    const body = text ? (JSON.parse(text) as Record<string, any>) : undefined;
    const path = new URL(req.url!, 'http://x').pathname;
    this.requests.push({ method: req.method!, path, contentType: req.headers['content-type'], body });
    if (this.hang) return;
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return this.status(res, 401, 'Unauthorized', 'Unauthorized');
    }
    const scale = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/(deployments|statefulsets)\/([^/]+)\/scale$/.exec(path);
    if (scale) {
      const [, ns, kind, name] = scale as unknown as [string, string, string, string];
      const verb = req.method === 'GET' ? 'get' : 'update';
      if (this.forbidden) {
        return this.status(
          res,
          403,
          'Forbidden',
          `${kind}.apps "${name}" is forbidden: User "system:serviceaccount:shoal:shoal-coordinator" cannot ${verb} resource "${kind}/scale" in API group "apps" in the namespace "${ns}"`,
          { name, group: 'apps', kind },
        );
      }
      if (!this.replicas.has(`${kind}/${name}`)) {
        return this.status(res, 404, 'NotFound', `${kind}.apps "${name}" not found`, { name, group: 'apps', kind });
      }
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify(this.scaleBody(kind, name, ns)));
      }
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
        this.replicas.set(`${kind}/${name}`, body?.spec?.replicas as number);
        this.resourceVersion++;
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify(this.scaleBody(kind, name, ns)));
      }
    }
    const pod = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path);
    if (pod && req.method === 'PATCH') {
      const name = pod[2]!;
      if (req.headers['content-type'] !== 'application/merge-patch+json') {
        return this.status(res, 415, 'UnsupportedMediaType', `the body of the request was in an unknown format`);
      }
      if (!this.pods.has(name))
        return this.status(res, 404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' });
      Object.assign(this.pods.get(name)!, body?.metadata?.annotations ?? {});
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(
        JSON.stringify({ kind: 'Pod', apiVersion: 'v1', metadata: { name, annotations: this.pods.get(name) } }),
      );
    }
    this.status(res, 404, 'NotFound', 'the server could not find the requested resource');
  }
}

function kubeConfig(server: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server, skipTLSVerify: true }],
    users: [{ name: 'sa', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'sa', namespace: 'prod' }],
    currentContext: 'test',
  });
  return kc;
}

describe('KubernetesActuator', () => {
  let api: FakeApiServer;
  let url: string;
  let actuator: KubernetesActuator | undefined;

  beforeEach(async () => {
    api = new FakeApiServer();
    url = await api.listen();
  });
  afterEach(async () => {
    await actuator?.close();
    actuator = undefined;
    await api.close();
  });

  const make = (extra: Partial<ConstructorParameters<typeof KubernetesActuator>[0]> = {}) =>
    (actuator = new KubernetesActuator({
      name: 'web',
      namespace: 'prod',
      kubeConfig: kubeConfig(url, 'sa-token'),
      random: () => 0,
      ...extra,
    }));

  it('reads the scale subresource', async () => {
    assert.equal(await make().getReplicas(), 3);
    assert.deepEqual(
      api.requests.map((r) => `${r.method} ${r.path}`),
      ['GET /apis/apps/v1/namespaces/prod/deployments/web/scale'],
    );
  });

  it('marks the victim with the lowest pod-deletion-cost, then writes the scale with its resourceVersion', async () => {
    await make().scaleTo(2, { victims: ['web-b'] });
    assert.equal(api.replicas.get('deployments/web'), 2);
    assert.equal(api.pods.get('web-b')![POD_DELETION_COST_ANNOTATION], VICTIM_DELETION_COST);
    assert.deepEqual(api.pods.get('web-a'), {});
    assert.deepEqual(
      api.requests.map((r) => `${r.method} ${r.path}`),
      [
        'GET /apis/apps/v1/namespaces/prod/deployments/web/scale',
        'PATCH /api/v1/namespaces/prod/pods/web-b',
        'PUT /apis/apps/v1/namespaces/prod/deployments/web/scale',
      ],
    );
    const put = api.requests[2]!.body as { metadata: { resourceVersion: string }; spec: { replicas: number } };
    assert.equal(put.metadata.resourceVersion, '100');
    assert.equal(put.spec.replicas, 2);
  });

  it('uses only the verbs KUBERNETES_RBAC_RULES lists (the Role in examples/kubernetes grants those)', async () => {
    await make().scaleTo(2, { victims: ['web-a'] });
    await make({ name: 'db', kind: 'StatefulSet' }).scaleTo(3);
    const verbs: Record<string, string> = { GET: 'get', PUT: 'update', PATCH: 'patch' };
    for (const r of api.requests) {
      const m = /^\/apis?\/(?:(apps)\/)?v1\/namespaces\/[^/]+\/([^/]+)\/[^/]+(\/scale)?$/.exec(r.path)!;
      const group = m[1] ?? '';
      const resource = `${m[2]}${m[3] ?? ''}`;
      const rule = KUBERNETES_RBAC_RULES.find((x) => x.apiGroup === group && x.resource === resource);
      assert.ok(rule?.verbs.includes(verbs[r.method]!), `${r.method} ${r.path} is covered by the RBAC rules`);
    }
  });

  it('re-reads and writes again on 409 Conflict', async () => {
    api.conflictsToInject = 2;
    await make().scaleTo(5);
    assert.equal(api.replicas.get('deployments/web'), 5);
    assert.deepEqual(
      api.requests.map((r) => r.method),
      ['GET', 'PUT', 'GET', 'PUT', 'GET', 'PUT'],
    );
  });

  it('gives up after maxConflictRetries conflicts', async () => {
    api.conflictsToInject = 10;
    await assert.rejects(make({ maxConflictRetries: 2 }).scaleTo(5), /409: Operation cannot be fulfilled/);
  });

  it('turns 403 into an RBAC message naming the verb, resource and namespace', async () => {
    api.forbidden = true;
    await assert.rejects(make().scaleTo(1), (error: Error) => {
      assert.ok(hasErrorCode(error, 'SHOAL_ERR_ACTUATOR'));
      assert.match(
        error.message,
        /Kubernetes RBAC: the coordinator's service account may not "get" deployments\/scale/,
      );
      assert.match(error.message, /namespace "prod"/);
      assert.match(error.message, /cannot get resource "deployments\/scale"/);
      return true;
    });
    assert.equal(api.requests.length, 1, '403 is not retried');
  });

  it('reports a missing workload and bad credentials clearly', async () => {
    await assert.rejects(make({ name: 'nope' }).getReplicas(), /Deployment "nope" not found in namespace "prod"/);
    actuator = new KubernetesActuator({ name: 'web', namespace: 'prod', kubeConfig: kubeConfig(url, 'wrong') });
    await assert.rejects(actuator.getReplicas(), /refused the credentials \(401\)/);
  });

  it('scales a StatefulSet without touching pods', async () => {
    const sts = make({ name: 'db', kind: 'StatefulSet' });
    await sts.scaleTo(1, { victims: ['db-1'] });
    assert.equal(api.replicas.get('statefulsets/db'), 1);
    assert.ok(!api.requests.some((r) => r.method === 'PATCH'));
  });

  it('scales down even when the victim pod is already gone', async () => {
    await make().scaleTo(2, { victims: ['web-zzz'] });
    assert.equal(api.replicas.get('deployments/web'), 2);
  });

  it('times out a request the API server never answers, after bounded retries', async () => {
    api.hang = true;
    await assert.rejects(make({ requestTimeoutMs: 100 }).getReplicas(), /timed out after 100 ms/);
    assert.equal(api.requests.length, 3);
  });

  it('watch reports changes made by someone else', async () => {
    const a = make({ pollIntervalMs: 20 });
    const seen: number[] = [];
    const got = new Promise<void>((resolve) => {
      const off = a.watch((n) => {
        seen.push(n);
        if (n === 3) api.replicas.set('deployments/web', 7);
        if (n === 7) {
          off();
          resolve();
        }
      });
    });
    await got;
    assert.deepEqual(seen, [3, 7]);
  });
});
