/**
 * The real Prometheus (Debian's `prometheus` package, installed by .ci/run) scraping a running coordinator and
 * service through examples/monitoring/prometheus.yml's HTTP service discovery: every replica is discovered and
 * scraped, and a replica added by a scale-up appears. Also: promtool accepts the shipped config, and every query
 * of the Grafana dashboard is valid PromQL that Prometheus evaluates.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { dashboardExpressions } from './promql-names.js';
import { findPrometheus, startPrometheus, type RunningPrometheus } from './prometheus-process.js';
import { root, startRunningStack, type RunningStack } from './running-stack.js';
import { freePort, waitFor } from '../kit/index.js';

const MONITORING = join(root, 'examples', 'monitoring');
const prometheusBinary = findPrometheus();

function requirePrometheus(ctx: Mocha.Context): string {
  if (prometheusBinary) return prometheusBinary;
  const why = 'the `prometheus` binary is not on PATH (Debian: apt-get install prometheus; .ci/run installs it)';
  if (process.env.CI) assert.fail(`cannot run the Prometheus test in CI: ${why}`);
  // Mocha prints no reason for a skip; put it in the title so the report says why.
  if (ctx.test) ctx.test.title += ` (skipped: ${why})`;
  ctx.skip();
  return '';
}

/** examples/monitoring/prometheus.yml pointed at this coordinator, with test-speed intervals. */
function testConfig(coordinatorUrl: string): string {
  const config = parse(readFileSync(join(MONITORING, 'prometheus.yml'), 'utf8')) as {
    global: Record<string, unknown>;
    scrape_configs: Array<{
      job_name: string;
      http_sd_configs?: Array<{ url: string; refresh_interval?: string; authorization?: unknown }>;
    }>;
  };
  config.global.scrape_interval = '1s';
  config.global.evaluation_interval = '1s';
  const jobs = config.scrape_configs.filter((j) => j.http_sd_configs);
  assert.deepEqual(
    jobs.map((j) => j.job_name),
    ['shoal', 'shoal-coordinator'],
    'prometheus.yml discovers replicas and coordinators through /v1/sd',
  );
  for (const job of jobs) {
    const sd = job.http_sd_configs![0]!;
    assert.match(sd.url, /\/v1\/sd$/);
    // The shipped read-token setting is what the test runs with.
    assert.deepEqual(sd.authorization, { type: 'Bearer', credentials_file: 'shoal-read.token' });
    sd.url = `${coordinatorUrl}/v1/sd`;
    sd.refresh_interval = '1s';
  }
  return stringify(config);
}

describe('monitoring: the real Prometheus discovers and scrapes every replica', function () {
  this.timeout(120_000);
  let stack: RunningStack | undefined;
  let prometheus: RunningPrometheus | undefined;

  afterEach(async () => {
    await prometheus?.close();
    prometheus = undefined;
    await stack?.close();
    stack = undefined;
  });

  it('promtool accepts examples/monitoring/prometheus.yml (with its token file beside it)', async function () {
    requirePrometheus(this);
    const promtool = join(prometheusBinary!, '..', 'promtool');
    // promtool checks that credentials_file exists; the example's is created by the operator (gitignored).
    const dir = await mkdtemp(join(tmpdir(), 'shoal-promtool-'));
    try {
      await copyFile(join(MONITORING, 'prometheus.yml'), join(dir, 'prometheus.yml'));
      await writeFile(join(dir, 'shoal-read.token'), 'x'.repeat(32));
      const { stdout } = await promisify(execFile)(promtool, ['check', 'config', join(dir, 'prometheus.yml')]);
      assert.match(stdout, /SUCCESS/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('finds the coordinator and each replica through /v1/sd with the read token only, scrapes them, and picks up a scale-up', async function () {
    const binary = requirePrometheus(this);
    // The coordinator has both tokens; Prometheus is given only the read token.
    const readToken = randomBytes(24).toString('hex');
    stack = await startRunningStack(1, { api: { readToken, token: randomBytes(24).toString('hex') } });
    for (const path of ['/v1/sd', '/metrics']) {
      const res = await fetch(`${stack.coordinatorUrl}${path}`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      assert.equal(res.status, 401, `${path} without the read token`);
    }
    const [first] = await stack.waitForReplicas(1, 30_000);
    prometheus = await startPrometheus(binary, testConfig(stack.coordinatorUrl), { 'shoal-read.token': readToken });
    const p = prometheus;

    const describeTargets = async (): Promise<string> =>
      `Prometheus targets: ${JSON.stringify(
        (await p.activeTargets()).map((t) => ({ labels: t.labels, health: t.health, error: t.lastError })),
      )}\nlog tail:\n${p.log().slice(-2000)}`;

    /** Every target group the coordinator lists is an active Prometheus target, scraped successfully. */
    const allScraped = async (expected: number) => {
      const groups = await stack!.sd();
      const orders = groups.filter((g) => g.labels.service === 'orders');
      if (orders.length !== expected) return undefined;
      const targets = await p.activeTargets();
      for (const group of groups) {
        const match = targets.find(
          (t) => t.discoveredLabels.__address__ === group.targets[0] && t.labels.instance === group.labels.instance,
        );
        if (!match || match.health !== 'up') return undefined;
        assert.equal(match.labels.service, group.labels.service);
        assert.equal(match.labels.job, group.labels.service === 'shoal-coordinator' ? 'shoal-coordinator' : 'shoal');
      }
      return { groups, targets };
    };

    const before = await waitFor(() => allScraped(1), {
      timeoutMs: 60_000,
      what: describeTargets,
      intervalMs: 250,
      retryErrors: true,
    });
    assert.equal(before.groups.length, 2, 'the coordinator and one replica');
    assert.ok(before.groups.some((g) => g.labels.service === 'shoal-coordinator'));
    assert.equal(first!.labels.service, 'orders');

    // The replica's own metrics are in Prometheus under its instance id (not only `up`).
    const query = async (expr: string) =>
      (
        await p.api<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(
          `/api/v1/query?query=${encodeURIComponent(expr)}`,
        )
      ).result;
    await waitFor(
      async () =>
        (await query(`shoal_agent_ready{instance="${first!.labels.instance}"}`)).length === 1 ? true : undefined,
      { timeoutMs: 30_000, what: describeTargets, intervalMs: 250, retryErrors: true },
    );
    // honor_labels keeps the coordinator's own `service` label on its series (no exported_service).
    await waitFor(
      async () =>
        (await query('shoal_coordinator_desired_replicas{service="orders"}')).length === 1 ? true : undefined,
      { timeoutMs: 30_000, what: describeTargets, intervalMs: 250, retryErrors: true },
    );

    // Scale up: the coordinator adds a replica (min replicas raised, as an operator would), which registers,
    // reports, appears in /v1/sd and is scraped.
    await stack.coordinator.reload(stack.config(2));
    const after = await waitFor(() => allScraped(2), {
      timeoutMs: 60_000,
      what: describeTargets,
      intervalMs: 250,
      retryErrors: true,
    });
    const added = after.groups.find(
      (g) => g.labels.service === 'orders' && g.labels.instance !== first!.labels.instance,
    );
    assert.ok(added, 'a second replica');
    await waitFor(
      async () =>
        (await query(`shoal_agent_ready{instance="${added.labels.instance}"}`)).length === 1 ? true : undefined,
      { timeoutMs: 30_000, what: describeTargets, intervalMs: 250, retryErrors: true },
    );
    const up = await query('sum(up{job="shoal", service="orders"})');
    assert.equal(up[0]?.value[1], '2');
  });

  it('evaluates every query of the Grafana dashboard as valid PromQL', async function () {
    const binary = requirePrometheus(this);
    prometheus = await startPrometheus(binary, stringify({ global: { scrape_interval: '1s' }, scrape_configs: [] }));
    const dashboard = JSON.parse(readFileSync(join(MONITORING, 'grafana', 'shoal-dashboard.json'), 'utf8')) as unknown;
    const exprs = dashboardExpressions(dashboard).filter((e) => !e.startsWith('label_values('));
    assert.ok(exprs.length >= 8, `only ${exprs.length} queries found`);
    for (const expr of exprs) {
      // Grafana's variables, as Grafana would substitute them.
      const promql = expr
        .replace(/\$__rate_interval/g, '1m')
        .replace(/\$__range/g, '1h')
        .replace(/\$service/g, '.*');
      await prometheus.api(`/api/v1/query?query=${encodeURIComponent(promql)}`).catch((err: Error) => {
        assert.fail(`dashboard query ${JSON.stringify(expr)} is not valid PromQL: ${err.message}`);
      });
    }
  });
});

/**
 * Debian's Prometheus has no Consul discovery, so this feeds the relabelling of prometheus-consul.yml with the
 * labels Consul discovery would produce (its documented `__meta_consul_*` set, built from the real catalog of a
 * consul-dev holding a real agent registration) through HTTP SD. A gRPC replica of the demo service runs its
 * agent's /metrics on a port of its own, so the scrape only succeeds when the relabelling picks the Meta's
 * metrics port and path.
 */
describe('monitoring: the relabelling of prometheus-consul.yml, on what Consul discovery produces', function () {
  this.timeout(90_000);
  let prometheus: RunningPrometheus | undefined;
  let cleanup: Array<() => Promise<void>> = [];

  afterEach(async () => {
    await prometheus?.close();
    prometheus = undefined;
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  it('scrapes a gRPC replica on its metrics port and labels it service, instance, zone and version', async function () {
    const binary = requirePrometheus(this);
    const { startConsulDev } = await import('@shoal/consul-dev');
    const consul = await startConsulDev({ host: '127.0.0.1', port: 0 });
    cleanup.push(() => consul.close());
    const port = await freePort();
    const replica = spawn(
      process.execPath,
      [join(root, 'examples', 'demo', 'dist', 'service.js'), '--consul', consul.url],
      { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: 'ignore' },
    );
    const replicaExit = once(replica, 'exit');
    cleanup.push(async () => {
      if (replica.exitCode === null && replica.signalCode === null) {
        replica.kill('SIGKILL');
        await replicaExit;
      }
    });

    type Entry = {
      Node: { Node: string; Address: string; Datacenter: string };
      Service: {
        ID: string;
        Service: string;
        Address: string;
        Port: number;
        Tags: string[];
        Meta: Record<string, string>;
      };
      Checks: Array<{ Status: string }>;
    };
    const entries = await waitFor(
      async () => {
        const res = await fetch(`${consul.url}/v1/health/service/greeter`);
        const list = (await res.json()) as Entry[];
        return list.length > 0 && list[0]!.Checks.every((c) => c.Status === 'passing') ? list : undefined;
      },
      {
        timeoutMs: 30_000,
        what: () => 'the demo replica did not register as passing',
        intervalMs: 250,
        retryErrors: true,
      },
    );
    const entry = entries[0]!;
    assert.notEqual(entry.Service.Meta.shoal_metrics_port, String(port), 'metrics are on a port of their own');

    // Prometheus's consul_sd_configs target for this entry (labels as documented for consul_sd_config).
    const sdServer = createServer((_req, res) => {
      const e = entry;
      const health = e.Checks.some((c) => c.Status === 'critical')
        ? 'critical'
        : e.Checks.some((c) => c.Status === 'warning')
          ? 'warning'
          : 'passing';
      const labels: Record<string, string> = {
        __meta_consul_address: e.Node.Address,
        __meta_consul_dc: e.Node.Datacenter,
        __meta_consul_health: health,
        __meta_consul_node: e.Node.Node,
        __meta_consul_service: e.Service.Service,
        __meta_consul_service_address: e.Service.Address || e.Node.Address,
        __meta_consul_service_id: e.Service.ID,
        __meta_consul_service_port: String(e.Service.Port),
        __meta_consul_tags: `,${e.Service.Tags.join(',')},`,
      };
      for (const [k, v] of Object.entries(e.Service.Meta)) {
        labels[`__meta_consul_service_metadata_${k.replace(/[^A-Za-z0-9_]/g, '_')}`] = v;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify([{ targets: [`${labels.__meta_consul_service_address}:${e.Service.Port}`], labels }]));
    });
    sdServer.listen(0, '127.0.0.1');
    await once(sdServer, 'listening');
    cleanup.push(() => new Promise<void>((resolve) => sdServer.close(() => resolve())));
    const sdPort = (sdServer.address() as { port: number }).port;

    const shipped = parse(readFileSync(join(MONITORING, 'prometheus-consul.yml'), 'utf8')) as {
      global: Record<string, unknown>;
      scrape_configs: Array<Record<string, unknown> & { job_name: string }>;
    };
    const job = shipped.scrape_configs.find((j) => j.job_name === 'shoal-services')!;
    assert.ok(job.consul_sd_configs, 'the shipped job discovers through Consul');
    delete job.consul_sd_configs;
    job.http_sd_configs = [{ url: `http://127.0.0.1:${sdPort}/`, refresh_interval: '1s' }];
    shipped.global.scrape_interval = '1s';
    shipped.scrape_configs = [job];
    prometheus = await startPrometheus(binary, stringify(shipped));
    const p = prometheus;

    const target = await waitFor(async () => (await p.activeTargets()).find((t) => t.health === 'up'), {
      timeoutMs: 30_000,
      what: async () => `no healthy target: ${JSON.stringify(await p.activeTargets())}\n${p.log().slice(-1500)}`,
      intervalMs: 250,
      retryErrors: true,
    });
    assert.equal(
      target.scrapeUrl,
      `http://${entry.Service.Address}:${entry.Service.Meta.shoal_metrics_port}${entry.Service.Meta.shoal_metrics_path}`,
    );
    assert.equal(target.labels.service, 'greeter');
    assert.equal(target.labels.instance, entry.Service.ID);
    assert.equal(target.labels.zone, 'local');
    assert.equal(target.labels.version, '1.0.0');
  });
});
