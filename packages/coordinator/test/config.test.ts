import { DEFAULT_CONSUL_URL } from '@shoal/consul';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasErrorCode } from '@shoal/core';
import { loadConfigFile, parseConfig, parseConfigYaml } from '@shoal/coordinator';
import { servicePolicy } from '@shoal/coordinator/internal';
import { isResolvedPolicy } from '@shoal/policy';
import { METRIC_NAME, SERVICE_NAME, validateHello } from '@shoal/protocol';
import { YAML_ALIAS_BOMB } from '../../../test/kit/index.js';

const service = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  token: 'a-very-long-token-0123456789',
  policy: { targets: [{ metric: 'eventLoopUtilization', value: 0.6 }] },
  actuator: { type: 'local', command: 'node', args: ['server.js'] },
  ...extra,
});

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(hasErrorCode(error, 'SHOAL_ERR_CONFIG'), `expected a ConfigError, got ${String(error)}`);
    return (error as unknown as { problems: string[] }).problems;
  }
  assert.fail('expected the config to be refused');
}

describe('config', () => {
  it('applies defaults and freezes the result', () => {
    const config = parseConfig({ services: [service('orders')] });
    assert.equal(config.syncPeriodMs, 5000);
    assert.equal(config.listen.http, '127.0.0.1:8080');
    assert.equal(config.services[0]?.minReplicas, 1);
    assert.equal(config.services[0]?.actuator.type, 'local');
    assert.ok(Object.isFrozen(config.services[0]));
  });

  it('resolves each service policy once, when the config is parsed', () => {
    const config = parseConfig({ services: [service('orders', { minReplicas: 2, maxReplicas: 7 })] });
    const s = config.services[0]!;
    const policy = servicePolicy(s);
    assert.ok(isResolvedPolicy(policy));
    assert.equal(servicePolicy(s), policy); // the same object every time: not resolved again
    assert.deepEqual([policy.minReplicas, policy.maxReplicas], [2, 7]);
  });

  it('names the path and the value of a bad number', () => {
    const bad = service('c', { policy: { targets: [{ metric: 'cpu', value: -1 }] } });
    const lines = problems(() => parseConfig({ services: [service('a'), service('b'), bad] }));
    assert.deepEqual(lines, ['services[2].policy.targets[0].value: must be > 0, got -1']);
  });

  it("defaults consul.url to @shoal/consul's default, and takes a caFile only with an https url", () => {
    const config = parseConfig({ consul: {}, services: [service('a')] });
    assert.equal(config.consul?.url, DEFAULT_CONSUL_URL);
    const lines = problems(() => parseConfig({ consul: { caFile: 'ca.pem' }, services: [service('a')] }));
    assert.deepEqual(lines, ['consul.caFile: caFile needs an https url']);
    const https = parseConfig({ consul: { url: 'https://consul:8501', caFile: 'ca.pem' }, services: [service('a')] });
    assert.equal(https.consul?.caFile, 'ca.pem');
  });

  it('names a bad token or webhook secret without showing its value', () => {
    const lines = problems(() =>
      parseConfig({
        consul: { url: 'http://127.0.0.1:8500', token: 5 },
        services: [
          service('a', {
            token: 's3cr3t-short',
            actuator: { type: 'command', webhook: { url: 'https://hooks.example/x', secret: 'tiny-secret' } },
          }),
        ],
      }),
    );
    assert.deepEqual(lines, [
      'consul.token: must be a string, got 5',
      'services[0].token: needs at least 16 character(s), got a string of length 12 (not shown)',
      'services[0].actuator.webhook.secret: needs at least 16 character(s), got a string of length 11 (not shown)',
    ]);
  });

  it('takes a PromQL query target with a prometheus section, and checks both', () => {
    const q = (target: Record<string, unknown>) =>
      service('a', { policy: { targets: [{ metric: 'queue_depth', value: 10, ...target }] } });
    const config = parseConfig({
      prometheus: { url: 'http://prom:9090', authorization: 'Bearer not-in-errors' },
      services: [q({ query: 'sum(kafka_lag)', activationValue: 5 })],
    });
    assert.deepEqual(config.prometheus, {
      url: 'http://prom:9090',
      authorization: 'Bearer not-in-errors',
      timeoutMs: 5000,
      maxAttempts: 3,
      backoff: { baseMs: 200, capMs: 2000 },
    });
    const target = servicePolicy(config.services[0]!).targets[0]!;
    assert.deepEqual(
      { ...target },
      { metric: 'queue_depth', type: 'total', value: 10 },
      'the policy sees a total target',
    );
    assert.deepEqual(
      problems(() => parseConfig({ services: [q({ query: 'sum(x)' })] })),
      ['services[0].policy.targets[0].query: a query target needs the "prometheus" section (its url)'],
    );
    const lines = problems(() =>
      parseConfig({
        prometheus: { url: 'ftp://prom', authorization: '', caFile: 'ca.pem' },
        services: [
          q({ query: 'sum(x)', type: 'average' }),
          service('b', { policy: { targets: [{ metric: 'cpu', value: 1, activationValue: 1 }] } }),
        ],
      }),
    );
    assert.ok(lines.includes('prometheus.url: must be a valid url, got "ftp://prom"'), lines.join('\n'));
    assert.ok(
      lines.includes('prometheus.authorization: needs at least 1 character(s), got a string of length 0 (not shown)'),
      lines.join('\n'),
    );
    assert.ok(
      lines.includes(
        'services[0].policy.targets[0].type: a target with a query is a "total" target (its value per replica)',
      ),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) =>
        l.startsWith('services[1].policy.targets[0].activationValue: activationValue applies to a "total"'),
      ),
      lines.join('\n'),
    );
  });

  it('rejects unknown keys at every level', () => {
    const lines = problems(() =>
      parseConfig({
        sevrices: [],
        services: [service('a', { actuator: { type: 'local', command: 'x', comand: 'y' } })],
      }),
    );
    assert.ok(lines.includes('sevrices: unknown key'), lines.join('\n'));
    assert.ok(lines.includes('services[0].actuator.comand: unknown key'), lines.join('\n'));
  });

  it('takes minReplicas 0 only with something that can wake it (wake section or external metric), and says why', () => {
    const lines = problems(() => parseConfig({ services: [service('a', { minReplicas: 0 })] }));
    assert.ok(
      lines.some(
        (l) =>
          l.startsWith('services[0].minReplicas: minReplicas 0 needs something that can wake the service') &&
          l.includes('a "wake" section') &&
          l.includes('an external-metric target'),
      ),
      lines.join('\n'),
    );
    const woken = parseConfig({
      services: [
        service('a', {
          minReplicas: 0,
          wake: { token: 'wake-token-0123456789' },
          policy: { targets: [{ metric: 'inFlight', value: 8 }] },
        }),
      ],
    });
    assert.equal(woken.services[0]!.wake!.demandTtlMs, 10_000);
    const unsized = problems(() =>
      parseConfig({
        services: [
          service('a', {
            minReplicas: 0,
            wake: { token: 'wake-token-0123456789' },
            policy: { targets: [{ metric: 'rps', value: 8 }] },
          }),
        ],
      }),
    );
    assert.ok(
      unsized.some((l) => l.startsWith('services[0].wake.callsPerReplica: wake needs callsPerReplica')),
      unsized.join('\n'),
    );
    const anonymous = problems(() =>
      parseConfig({
        services: [service('a', { minReplicas: 0, wake: { callsPerReplica: 4 } })],
      }),
    );
    assert.ok(
      anonymous.some((l) => l.includes('services[0].wake') && l.includes('anonymous demand is refused')),
      anonymous.join('\n'),
    );
    const config = parseConfig({
      prometheus: { url: 'http://prom:9090' },
      services: [
        service('a', {
          minReplicas: 0,
          policy: { targets: [{ metric: 'backlog', query: 'sum(backlog)', value: 10, activationValue: 2 }] },
        }),
      ],
    });
    assert.equal(config.services[0]!.minReplicas, 0);
    assert.equal(config.services[0]!.idleCooldownMs, 300_000);
  });

  it('reports every problem at once, with types and enums', () => {
    const lines = problems(() =>
      parseConfig({
        syncPeriodMs: 'fast',
        services: [
          service('a', { minReplicas: 5, maxReplicas: 2 }),
          service('a', { actuator: { type: 'nomad' } }),
          service('b', { actuator: { type: 'kubernetes', name: 'web', kind: 'ReplicaSet' } }),
        ],
      }),
    );
    assert.ok(lines.includes('syncPeriodMs: must be a number, got "fast"'), lines.join('\n'));
    assert.ok(lines.includes('services[0].maxReplicas: maxReplicas must be >= minReplicas'), lines.join('\n'));
    assert.ok(
      lines.includes('services[1].actuator.type: must be one of "local", "kubernetes", "command", got "nomad"'),
      lines.join('\n'),
    );
    assert.ok(
      lines.includes('services[2].actuator.kind: must be one of "Deployment", "StatefulSet", got "ReplicaSet"'),
      lines.join('\n'),
    );
  });

  it('refuses duplicate service names and a command actuator with both or neither mode', () => {
    const lines = problems(() =>
      parseConfig({
        services: [service('a'), service('a', { actuator: { type: 'command' } })],
      }),
    );
    assert.ok(
      lines.some((l) => l.startsWith('services[1].name: duplicate service name')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.includes('needs exactly one of "command" or "webhook"')),
      lines.join('\n'),
    );
  });

  it('reports what @shoal/policy refuses under the service policy path', () => {
    const lines = problems(() =>
      parseConfig({ services: [service('a', { policy: { targets: [{ metric: 'cpu', value: 1 }], presett: 'hpa' } })] }),
    );
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^services\[0\]\.policy: policy has an unknown option "presett"/);
  });

  it('names follow the protocol grammar: a service an agent cannot report for is refused in the config', () => {
    // One grammar (@shoal/protocol): `Orders` is refused by both the agent-side validation and the config, with the
    // same words, so no agent can validate, report and then be refused for a name.
    const lines = problems(() =>
      parseConfig({
        services: [service('Orders'), service('b', { policy: { targets: [{ metric: 'queue-depth', value: 1 }] } })],
      }),
    );
    assert.deepEqual(lines, [
      `services[0].name: must be ${SERVICE_NAME.description}, got "Orders"`,
      `services[1].policy.targets[0].metric: must be ${METRIC_NAME.description}, got "queue-depth"`,
    ]);
    assert.throws(() => validateHello({ service: 'Orders', instanceId: 'o-1', address: '127.0.0.1', port: 1 }), {
      message: `hello.service must be ${SERVICE_NAME.description}, got "Orders"`,
    });
    assert.equal(parseConfig({ services: [service('x'.repeat(63))] }).services[0]?.name.length, 63);
  });

  it('requires a consul section for high availability', () => {
    const lines = problems(() => parseConfig({ ha: {}, services: [service('a')] }));
    assert.deepEqual(lines, ['ha: high availability needs a "consul" section']);
  });

  it('takes a stable ha.id (the identity a restarted coordinator takes its lock back with) and checks its grammar', () => {
    const config = parseConfig({ consul: {}, ha: { id: 'coord-1.eu' }, services: [service('a')] });
    assert.equal(config.ha?.id, 'coord-1.eu');
    const lines = problems(() => parseConfig({ consul: {}, ha: { id: 'a b' }, services: [service('a')] }));
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^ha\.id: must be letters, digits/);
  });

  it('parses YAML and reports YAML syntax errors with the file name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-config-'));
    try {
      const file = join(dir, 'shoal.yaml');
      await writeFile(
        file,
        [
          'syncPeriodMs: 2000',
          'services:',
          '  - name: orders',
          '    token: a-very-long-token-0123456789',
          '    maxReplicas: 4',
          '    policy: { targets: [{ metric: inFlight, value: 10 }] }',
          '    actuator: { type: local, command: node, args: [server.js] }',
        ].join('\n'),
      );
      const config = await loadConfigFile(file);
      assert.equal(config.syncPeriodMs, 2000);
      assert.equal(config.services[0]?.maxReplicas, 4);
      assert.equal(config.dryRun, false);
      // The CLI's flags (--dry-run, --insecure-dev) go over the document before validation.
      const overridden = await loadConfigFile(file, { dryRun: true, insecureDev: true });
      assert.equal(overridden.dryRun, true);
      assert.equal(overridden.insecureDev, true);
      assert.equal(overridden.syncPeriodMs, 2000);
      await writeFile(file, 'services: [\n');
      await assert.rejects(
        loadConfigFile(file),
        (e: Error) => hasErrorCode(e, 'SHOAL_ERR_CONFIG') && e.message.includes(file),
      );
      await assert.rejects(loadConfigFile(join(dir, 'missing.yaml')), /cannot read config file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a YAML alias bomb (the loader the policy CLI shares), naming the source', () => {
    assert.throws(
      () => parseConfigYaml(YAML_ALIAS_BOMB, 'bomb.yaml'),
      (e: Error) =>
        hasErrorCode(e, 'SHOAL_ERR_CONFIG') && /^bomb\.yaml is not valid YAML: Excessive alias count/.test(e.message),
    );
  });

  it('refuses a YAML document that is not an object', () => {
    const lines = problems(() => parseConfigYaml('just a string'));
    assert.deepEqual(lines, ['(root): must be an object, got "just a string"']);
  });

  describe('advertiseHost (HA behind every interface)', () => {
    const ha = (extra: Record<string, unknown>) => ({
      listen: { http: '0.0.0.0:8080', grpc: '[::]:9090' },
      consul: { url: 'http://127.0.0.1:8500' },
      ha: { enabled: true },
      services: [service('a')],
      ...extra,
    });

    it('is required with ha when listen binds every interface, naming the option and the listen address', () => {
      assert.deepEqual(
        problems(() => parseConfig(ha({}))),
        [
          'advertiseHost: is required with ha when listen binds every interface (0.0.0.0:8080): followers would dial themselves',
        ],
      );
      // Without ha, or listening on a dialable host, nobody needs it.
      assert.equal(parseConfig({ ...ha({}), ha: undefined }).advertiseHost, undefined);
      assert.equal(parseConfig(ha({ listen: { http: '10.0.0.1:8080', grpc: '10.0.0.1:9090' } })).ha?.enabled, true);
    });

    it('refuses unspecified addresses in any spelling and anything that is not a host', () => {
      for (const host of ['0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0', '[0::0]']) {
        const lines = problems(() => parseConfig(ha({ advertiseHost: host })));
        assert.equal(lines.length, 1, host);
        assert.match(lines[0]!, /^advertiseHost: must be an address others can dial/, host);
      }
      for (const host of ['bad host', 'http://x', 'a/b', '', '10.0.0.1:9090']) {
        const lines = problems(() => parseConfig(ha({ advertiseHost: host })));
        assert.match(lines.join('\n'), /^advertiseHost: must be a host name or an IP address/m, host);
      }
    });

    it('takes names, IPv4 and IPv6 with or without brackets', () => {
      for (const host of ['coordinator-0.shoal.svc', '10.42.0.17', 'fd00::17', '[fd00::17]']) {
        assert.equal(parseConfig(ha({ advertiseHost: host })).advertiseHost, host);
      }
    });

    it('checks tls.serverName is a DNS name', () => {
      const tls = { certFile: 'c.pem', keyFile: 'k.pem' };
      assert.equal(
        parseConfig(ha({ advertiseHost: '10.0.0.1', tls: { ...tls, serverName: 'shoal.svc' } })).tls?.serverName,
        'shoal.svc',
      );
      assert.deepEqual(
        problems(() => parseConfig(ha({ advertiseHost: '10.0.0.1', tls: { ...tls, serverName: 'x y' } }))),
        ['tls.serverName: must be a DNS name, got "x y"'],
      );
    });
  });

  describe('ha.relay (mutual TLS between coordinators)', () => {
    const mtls = { certFile: 'c.pem', keyFile: 'k.pem', caFile: 'ca.pem', requireClientCert: true };
    const ha = (relay: unknown, tls: Record<string, unknown> = mtls) => ({
      listen: { http: '10.0.0.1:8080', grpc: '10.0.0.1:9090' },
      consul: { url: 'http://127.0.0.1:8500' },
      ha: { enabled: true, ...(relay === undefined ? {} : { relay }) },
      tls,
      services: [service('orders')],
    });

    it('is required with tls.requireClientCert, and then names the relay and its certificate', () => {
      assert.deepEqual(
        problems(() => parseConfig(ha(undefined))),
        [
          'ha.relay: is required with tls.requireClientCert: the name (and certificate) followers relay agents to the leader with',
        ],
      );
      assert.deepEqual(parseConfig(ha({ name: 'shoal-relay' })).ha?.relay, { name: 'shoal-relay' });
      assert.deepEqual(parseConfig(ha({ name: 'shoal-relay', certFile: 'r.pem', keyFile: 'r.key' })).ha?.relay, {
        name: 'shoal-relay',
        certFile: 'r.pem',
        keyFile: 'r.key',
      });
    });

    it('refuses a name an agent or KEDA could carry, a half-given certificate, and a relay without mutual TLS', () => {
      assert.match(
        problems(() => parseConfig(ha({ name: 'orders' }))).join('\n'),
        /^ha\.relay\.name: must differ from every service name and keda\.clientName .*got "orders"$/m,
      );
      assert.match(
        problems(() => parseConfig({ ...ha({ name: 'keda' }), keda: { clientName: 'keda' } })).join('\n'),
        /^ha\.relay\.name: must differ/m,
      );
      assert.deepEqual(
        problems(() => parseConfig(ha({ name: 'x y' }))),
        ['ha.relay.name: must be a DNS name, got "x y"'],
      );
      assert.deepEqual(
        problems(() => parseConfig(ha({ name: 'shoal-relay', certFile: 'r.pem' }))),
        ['ha.relay: give both "certFile" and "keyFile", or neither (then tls.certFile and tls.keyFile)'],
      );
      assert.deepEqual(
        problems(() => parseConfig(ha({ name: 'shoal-relay' }, { certFile: 'c.pem', keyFile: 'k.pem' }))),
        ['ha.relay: needs tls.requireClientCert (without mutual TLS followers relay without a client certificate)'],
      );
    });
  });
});
