import assert from 'node:assert/strict';
import { hasErrorCode } from '@shoal/core';
import {
  KUBERNETES_RBAC_RULES,
  KubernetesActuator,
  POD_DELETION_COST_ANNOTATION,
  VICTIM_DELETION_COST,
  parseConfig,
} from '@shoal/coordinator';
import { FakeKubernetes, addStrayPod } from '../support/fake-kubernetes.js';
import { recordingLogger } from '../support/recording-logger.js';

describe('KubernetesActuator', () => {
  let k8s: FakeKubernetes;
  let url: string;
  let actuator: KubernetesActuator | undefined;

  beforeEach(async () => {
    k8s = new FakeKubernetes();
    url = await k8s.listen();
    k8s.addDeployment('web', 3);
  });
  afterEach(async () => {
    await actuator?.close();
    actuator = undefined;
    await k8s.close();
  });

  const make = (extra: Partial<ConstructorParameters<typeof KubernetesActuator>[0]> = {}) =>
    (actuator = new KubernetesActuator({
      name: 'web',
      namespace: 'prod',
      kubeConfig: k8s.kubeConfig(url),
      random: () => 0,
      ...extra,
    }));
  const calls = () => k8s.requests.map((r) => `${r.method} ${r.path}`);
  const pod = (i: number) => k8s.activePods('web')[i]!.name;

  it('reads spec.replicas from the scale subresource', async () => {
    assert.equal(await make().getReplicas(), 3);
    assert.deepEqual(calls(), ['GET /apis/apps/v1/namespaces/prod/deployments/web/scale']);
  });

  it('counts spec.replicas, not the surge pods in status.replicas, while a Deployment rolls out', async () => {
    k8s.addDeployment('web', 8, { maxSurge: '25%', maxUnavailable: 0 });
    k8s.rolloutRestart('web');
    k8s.reconcile('web');
    const d = k8s.deployments.get('web')!;
    assert.deepEqual([d.replicas, d.status.replicas, d.status.updatedReplicas], [8, 10, 2], 'a surge of 2');
    assert.equal(await make().getReplicas(), 8);
  });

  it('marks a victim listed under the Deployment selector with the lowest pod-deletion-cost, then writes the scale', async () => {
    const victim = pod(1);
    await make().scaleTo(2, { victims: [victim] });
    assert.equal(k8s.deployments.get('web')!.replicas, 2);
    assert.equal(k8s.pods.get(victim)!.annotations[POD_DELETION_COST_ANNOTATION], VICTIM_DELETION_COST);
    assert.deepEqual(calls(), [
      'GET /apis/apps/v1/namespaces/prod/deployments/web/scale',
      'GET /apis/apps/v1/namespaces/prod/deployments/web',
      'GET /api/v1/namespaces/prod/pods',
      `PATCH /api/v1/namespaces/prod/pods/${victim}`,
      'PUT /apis/apps/v1/namespaces/prod/deployments/web/scale',
    ]);
    assert.equal(k8s.requests[2]!.query.get('labelSelector'), 'app=web');
    const put = k8s.requests[4]!.body as { metadata: { resourceVersion: string }; spec: { replicas: number } };
    assert.equal(put.spec.replicas, 2);
    // The ReplicaSet controller then deletes exactly that pod.
    k8s.reconcile('web');
    assert.ok(k8s.pods.get(victim)!.deletionTimestamp, 'the victim is the pod deleted');
    assert.equal(k8s.activePods('web').length, 2);
  });

  it('chooses no victim (no drain, no pod-deletion-cost patch) while the Deployment rolls out, and says why', async () => {
    k8s.addDeployment('web', 8, { maxSurge: 2, maxUnavailable: 0 });
    const before = k8s.activePods('web').map((p) => p.name);
    k8s.rolloutRestart('web');
    const logger = recordingLogger();
    const a = make({ logger });

    // Generation bumped, the controller has not observed it yet.
    let selection = await a.selectVictims(before.slice(0, 2));
    assert.deepEqual(selection.victims, []);
    assert.match(selection.reasons[0]!, /rolling out \(observedGeneration 1 < generation 2/);

    // Surge: status.replicas 10, updatedReplicas 2.
    k8s.reconcile('web');
    selection = await a.selectVictims(before.slice(0, 2));
    assert.deepEqual(selection.victims, []);
    assert.match(selection.reasons[0]!, /^victims held \(.+\): Deployment prod\/web is rolling out/);
    assert.match(selection.reasons[0]!, /status\.replicas 10 ≠ spec\.replicas 8, updatedReplicas 2 < 10/);
    assert.ok(
      logger.records.some(
        (r) => r.msg === 'scale-down victims held' && String(r.fields.reason).includes('rolling out'),
      ),
    );

    // Midway: the surge pods are ready, two old ones went; status.replicas is back at spec, old pods are left.
    k8s.markReady();
    k8s.reconcile('web');
    const mid = k8s.deployments.get('web')!.status;
    assert.deepEqual([mid.replicas, mid.updatedReplicas], [8, 2]);
    selection = await a.selectVictims([k8s.updatedPods('web')[0]!.name]);
    assert.deepEqual(selection.victims, []);

    // A scale-down during the rollout: the spec goes down, no pod is patched.
    await a.scaleTo(6, { victims: before.slice(0, 2) });
    assert.equal(k8s.deployments.get('web')!.replicas, 6);
    assert.ok(!k8s.requests.some((r) => r.method === 'PATCH'), 'no pod-deletion-cost patch during a rollout');
    for (const p of k8s.pods.values()) assert.equal(p.annotations[POD_DELETION_COST_ANNOTATION], undefined);

    // Once complete, victims are chosen again.
    k8s.completeRollout('web');
    const now = k8s.activePods('web').map((p) => p.name);
    selection = await a.selectVictims([now[0]!]);
    assert.deepEqual(selection, { victims: [now[0]], reasons: [] });
  });

  it('holds victims that are not running pods of the target: other workloads, terminating, unknown, not pod names', async () => {
    addStrayPod(k8s, 'api-7d9f-x2x2x', { app: 'api' });
    addStrayPod(k8s, 'web-lookalike', { app: 'web-canary' });
    const terminating = pod(2);
    k8s.pods.get(terminating)!.deletionTimestamp = new Date().toISOString();
    const good = pod(0);
    const ids = [
      good,
      'api-7d9f-x2x2x',
      'web-lookalike',
      terminating,
      'web-gone',
      '../../secrets',
      'Web_1',
      'a'.repeat(300),
    ];
    const selection = await make().selectVictims(ids);
    assert.deepEqual(selection.victims, [good]);
    assert.match(
      selection.reasons[0]!,
      /^victims held \(api-7d9f-x2x2x, web-lookalike, .+ and 2 more\): not running pods of Deployment prod\/web \(listed under "app=web"\)$/,
    );
    await make().scaleTo(2, { victims: ids });
    const patched = k8s.requests.filter((r) => r.method === 'PATCH').map((r) => r.path);
    assert.deepEqual(patched, [`/api/v1/namespaces/prod/pods/${good}`], 'only the pod of the target is patched');
  });

  it('lists pods under podSelector and still requires the Deployment selector to match', async () => {
    for (const p of k8s.activePods('web')) p.labels.tier = 'api';
    addStrayPod(k8s, 'other-tier-api', { tier: 'api', app: 'other' });
    const a = make({ podSelector: 'tier in (api),app' });
    const selection = await a.selectVictims([pod(0), 'other-tier-api']);
    assert.equal(k8s.requests.at(-1)!.query.get('labelSelector'), 'tier in (api),app');
    assert.deepEqual(selection.victims, [pod(0)]);
    assert.match(selection.reasons[0]!, /other-tier-api/);
  });

  it('refuses a podSelector that is not a label selector, naming the option', () => {
    for (const bad of ['app=web;rm -rf', 'app=(web', 'a b', '']) {
      assert.throws(() => make({ podSelector: bad }), /podSelector must/, bad);
    }
    make({ podSelector: 'app=web,tier!=db,!legacy,env notin (dev, test)' });
    const config = (podSelector: string) =>
      parseConfig({
        insecureDev: true,
        services: [{ name: 'web', policy: {}, actuator: { type: 'kubernetes', name: 'web', podSelector } }],
      });
    assert.throws(
      () => config('app=web;rm -rf'),
      /services\[0\]\.actuator\.podSelector: must be a label selector such as "app=web,tier in \(api\)"/,
    );
    assert.equal(config('app=web').services[0]!.actuator.type, 'kubernetes');
  });

  it('holds victims but still scales when the Role lacks the new verbs (403 on get deployments / list pods)', async () => {
    k8s.forbidden.add('get deployments');
    const victim = pod(0);
    await make().scaleTo(2, { victims: [victim] });
    assert.equal(k8s.deployments.get('web')!.replicas, 2, 'the scale is written');
    assert.ok(!k8s.requests.some((r) => r.method === 'PATCH'));
    const selection = await make().selectVictims([victim]);
    assert.match(
      selection.reasons[0]!,
      /cannot check them against the API server \(Kubernetes RBAC: the coordinator's service account may not "get" deployments/,
    );
    assert.equal(k8s.requests.filter((r) => r.path.endsWith('/deployments/web')).length, 2, '403 is not retried');
    k8s.forbidden.clear();
    k8s.forbidden.add('list pods');
    k8s.reconcile('web'); // the controller acts on the new spec (until then the Deployment counts as rolling out)
    const listed = await make().selectVictims([victim]);
    assert.match(listed.reasons[0]!, /may not "list" pods \(API group ""\).*cannot list resource "pods"/);
  });

  it('scales down even when the victim pod vanished between the list and the patch (404)', async () => {
    const victim = pod(0);
    k8s.afterList = () => k8s.pods.delete(victim);
    await make().scaleTo(2, { victims: [victim] });
    assert.equal(k8s.deployments.get('web')!.replicas, 2);
    assert.ok(k8s.requests.some((r) => r.method === 'PATCH' && r.path.endsWith(victim)));
  });

  it('uses only the verbs KUBERNETES_RBAC_RULES lists (the Role in examples/kubernetes grants those)', async () => {
    await make().scaleTo(2, { victims: [pod(0)] });
    await make({ name: 'db', kind: 'StatefulSet' }).scaleTo(3);
    const verbs: Record<string, string> = { GET: 'get', PUT: 'update', PATCH: 'patch' };
    for (const r of k8s.requests) {
      const m = /^\/apis?\/(?:(apps)\/)?v1\/namespaces\/[^/]+\/([^/]+)(?:\/([^/]+)(\/scale)?)?$/.exec(r.path)!;
      const group = m[1] ?? '';
      const resource = `${m[2]}${m[4] ?? ''}`;
      const verb = r.method === 'GET' && m[3] === undefined ? 'list' : verbs[r.method]!;
      const rule = KUBERNETES_RBAC_RULES.find((x) => x.apiGroup === group && x.resource === resource);
      assert.ok(rule?.verbs.includes(verb), `${r.method} ${r.path} (${verb}) is covered by the RBAC rules`);
    }
  });

  it('re-reads and writes again on 409 Conflict', async () => {
    k8s.conflictsToInject = 2;
    await make().scaleTo(5);
    assert.equal(k8s.deployments.get('web')!.replicas, 5);
    assert.deepEqual(
      k8s.requests.map((r) => r.method),
      ['GET', 'PUT', 'GET', 'PUT', 'GET', 'PUT'],
    );
  });

  it('gives up after maxConflictRetries conflicts', async () => {
    k8s.conflictsToInject = 10;
    await assert.rejects(make({ maxConflictRetries: 2 }).scaleTo(5), /409: Operation cannot be fulfilled/);
  });

  it('reports a 422 from an admission policy with its message, without retrying', async () => {
    k8s.maxReplicasPolicy = 4;
    await assert.rejects(make().scaleTo(5), (error: Error) => {
      assert.ok(hasErrorCode(error, 'SHOAL_ERR_ACTUATOR'));
      assert.match(
        error.message,
        /update deployments\/scale failed \(422: .*ValidatingAdmissionPolicy 'replica-limit'.*<= 4\)/,
      );
      return true;
    });
    assert.equal(k8s.requests.filter((r) => r.method === 'PUT').length, 1);
  });

  it('turns 403 into an RBAC message naming the verb, resource and namespace', async () => {
    k8s.forbidden.add('get deployments/scale');
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
    assert.equal(k8s.requests.length, 1, '403 is not retried');
  });

  it('reports a missing workload and bad credentials clearly', async () => {
    await assert.rejects(make({ name: 'nope' }).getReplicas(), /Deployment "nope" not found in namespace "prod"/);
    actuator = new KubernetesActuator({ name: 'web', namespace: 'prod', kubeConfig: k8s.kubeConfig(url, 'wrong') });
    await assert.rejects(actuator.getReplicas(), /refused the credentials \(401\)/);
  });

  it('scales a StatefulSet without touching pods, and holds its victims (it removes its highest ordinals)', async () => {
    const sts = make({ name: 'db', kind: 'StatefulSet' });
    const selection = await sts.selectVictims(['db-0']);
    assert.deepEqual(selection.victims, []);
    assert.match(selection.reasons[0]!, /StatefulSet prod\/db removes its highest ordinals/);
    await sts.scaleTo(1, { victims: ['db-0'] });
    assert.equal(k8s.statefulSets.get('db'), 1);
    assert.ok(!k8s.requests.some((r) => r.path.includes('/pods')));
  });

  it('scales a Deployment to 0 and back through the scale subresource (issue #20)', async () => {
    const a = make();
    const victims = k8s.activePods('web').map((p) => p.name);
    await a.scaleTo(0, { victims });
    assert.equal(k8s.deployments.get('web')!.replicas, 0);
    const put = k8s.requests.find((r) => r.method === 'PUT')!.body as { spec: { replicas: number } };
    assert.equal(put.spec.replicas, 0, 'spec.replicas 0 written to the scale subresource');
    for (const v of victims)
      assert.equal(k8s.pods.get(v)!.annotations[POD_DELETION_COST_ANNOTATION], VICTIM_DELETION_COST);
    k8s.reconcile('web');
    k8s.finishTerminations();
    assert.equal(k8s.activePods('web').length, 0, 'no pod left');
    assert.equal(await a.getReplicas(), 0, 'the Deployment still exists, at 0');
    // Back from zero: no victim, a plain scale-up.
    k8s.requests.length = 0;
    await a.scaleTo(4);
    assert.deepEqual(calls(), [
      'GET /apis/apps/v1/namespaces/prod/deployments/web/scale',
      'PUT /apis/apps/v1/namespaces/prod/deployments/web/scale',
    ]);
    k8s.reconcile('web');
    assert.equal(k8s.activePods('web').length, 4);
    assert.equal(await a.getReplicas(), 4);
    // A StatefulSet the same way.
    const sts = make({ name: 'db', kind: 'StatefulSet' });
    await sts.scaleTo(0);
    assert.equal(k8s.statefulSets.get('db'), 0);
    await sts.scaleTo(2);
    assert.equal(k8s.statefulSets.get('db'), 2);
  });

  it('the API server refuses a negative scale (422); the actuator refuses it before sending', async () => {
    const res = await fetch(`${url}/apis/apps/v1/namespaces/prod/deployments/web/scale`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${k8s.token}` },
      body: JSON.stringify({ apiVersion: 'autoscaling/v1', kind: 'Scale', spec: { replicas: -1 } }),
    });
    assert.equal(res.status, 422);
    assert.match(((await res.json()) as { message: string }).message, /must be greater than or equal to 0/);
    await assert.rejects(make().scaleTo(-1), (e: unknown) => hasErrorCode(e, 'SHOAL_ERR_INVALID_ARGUMENT'));
  });

  it('times out a request the API server never answers, after bounded retries', async () => {
    k8s.hang = true;
    await assert.rejects(make({ requestTimeoutMs: 100 }).getReplicas(), /timed out after 100 ms/);
    assert.equal(k8s.requests.length, 3);
  });

  it('watch reports changes made by someone else', async () => {
    const a = make({ pollIntervalMs: 20 });
    const seen: number[] = [];
    const got = new Promise<void>((resolve) => {
      const off = a.watch((n) => {
        seen.push(n);
        if (n === 3) k8s.deployments.get('web')!.replicas = 7;
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
