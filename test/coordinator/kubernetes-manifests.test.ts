import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { KUBERNETES_RBAC_RULES, parseConfigYaml } from '@shoal/coordinator';
import { ConfigError } from '@shoal/core';

const DIR = fileURLToPath(new URL('../../examples/kubernetes/', import.meta.url));

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form YAML

function load(): Doc[] {
  const docs: Doc[] = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(`${DIR}${file}`, 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file} parses`);
      docs.push(doc.toJSON() as Doc);
    }
  }
  return docs;
}

describe('examples/kubernetes manifests', () => {
  const docs = load();
  const one = (kind: string) => {
    const found = docs.filter((d) => d.kind === kind);
    assert.equal(found.length, 1, `one ${kind}`);
    return found[0]!;
  };

  it('holds a Deployment, Service, ServiceAccount, Role, RoleBinding and ConfigMap in one namespace', () => {
    for (const kind of ['Deployment', 'Service', 'ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap']) one(kind);
    const namespaces = new Set(docs.filter((d) => d.kind !== 'Namespace').map((d) => d.metadata.namespace));
    assert.deepEqual([...namespaces], ['shoal-demo']);
    for (const d of docs)
      assert.ok(typeof d.apiVersion === 'string' && d.metadata?.name, `${d.kind} has apiVersion and name`);
  });

  it('grants the coordinator exactly the verbs the kubernetes actuator uses, nothing more', () => {
    const role = one('Role');
    const granted = role.rules.flatMap((r: Doc) =>
      r.apiGroups.flatMap((g: string) =>
        r.resources.map((res: string) => ({ apiGroup: g, resource: res, verbs: [...r.verbs].sort() })),
      ),
    );
    const needed = KUBERNETES_RBAC_RULES.map((r) => ({ ...r, verbs: [...r.verbs].sort() }));
    assert.deepEqual(granted, needed);
    assert.ok(!JSON.stringify(role.rules).includes('*'), 'no wildcards');
  });

  it('binds the Role to the ServiceAccount the Deployment runs as', () => {
    const sa = one('ServiceAccount');
    const binding = one('RoleBinding');
    assert.deepEqual(binding.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: one('Role').metadata.name,
    });
    assert.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace },
    ]);
    assert.equal(one('Deployment').spec.template.spec.serviceAccountName, sa.metadata.name);
  });

  it('runs the coordinator non-root with probes on /healthz and /readyz and the config from the ConfigMap', () => {
    const dep = one('Deployment');
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.deepEqual(c.args, ['--config', '/etc/shoal/shoal.yaml']);
    const mount = c.volumeMounts.find((m: Doc) => m.mountPath === '/etc/shoal');
    const volume = pod.volumes.find((v: Doc) => v.name === mount.name);
    assert.equal(volume.configMap.name, one('ConfigMap').metadata.name);
    assert.deepEqual(dep.spec.selector.matchLabels, dep.spec.template.metadata.labels);
    assert.ok(pod.terminationGracePeriodSeconds > 30, 'time for the graceful SIGTERM shutdown');
  });

  it('exposes the container ports through the Service, selecting the Deployment pods', () => {
    const dep = one('Deployment');
    const svc = one('Service');
    assert.deepEqual(svc.spec.selector, dep.spec.template.metadata.labels);
    const names = dep.spec.template.spec.containers[0].ports.map((p: Doc) => p.name);
    for (const p of svc.spec.ports) assert.ok(names.includes(p.targetPort), `${p.targetPort} is a container port`);
  });

  it('ships a shoal.yaml the coordinator accepts, listening on the ports the probes and Service use', () => {
    const cm = one('ConfigMap');
    const config = parseConfigYaml(cm.data['shoal.yaml'], 'configmap.yaml');
    assert.equal(config.listen.http, '0.0.0.0:8080');
    assert.equal(config.listen.grpc, '0.0.0.0:9090');
    const k8s = config.services.map((s) => s.actuator).filter((a) => a.type === 'kubernetes');
    assert.equal(k8s.length, 1);
    const ports = one('Deployment').spec.template.spec.containers[0].ports.map((p: Doc) => p.containerPort);
    assert.deepEqual(ports, [8080, 9090]);
  });

  it('advertises the pod IP (downward API), which the commented HA block needs because it listens on 0.0.0.0', () => {
    const c = one('Deployment').spec.template.spec.containers[0];
    const advertise = c.env.find((e: Doc) => e.name === 'SHOAL_ADVERTISE_HOST');
    assert.deepEqual(advertise?.valueFrom, { fieldRef: { fieldPath: 'status.podIP' } });
    // The HA lines of the ConfigMap, uncommented as an operator would.
    const text = (one('ConfigMap').data['shoal.yaml'] as string).replace(/^( *)# (consul|ha): /gm, '$1$2: ');
    assert.match(text, /^ {0}ha: \{ enabled: true/m, 'the HA block is there to uncomment');
    assert.throws(
      () => parseConfigYaml(text, 'configmap.yaml'),
      (e: unknown) => e instanceof ConfigError && /advertiseHost/.test(e.message) && /0\.0\.0\.0:8080/.test(e.message),
    );
    // The CLI passes SHOAL_ADVERTISE_HOST as the advertiseHost override: the pod IP is accepted, 0.0.0.0 is not.
    const config = parseConfigYaml(text, 'configmap.yaml', { advertiseHost: '10.42.0.17' });
    assert.equal(config.ha?.enabled, true);
    assert.equal(config.advertiseHost, '10.42.0.17');
    assert.throws(
      () => parseConfigYaml(text, 'configmap.yaml', { advertiseHost: '0.0.0.0' }),
      (e: unknown) => e instanceof ConfigError && /advertiseHost/.test(e.message) && /unspecified/.test(e.message),
    );
  });
});
