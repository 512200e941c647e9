/**
 * The real Prometheus (Debian's `prometheus` package, installed by .ci/run) scraping a running coordinator and
 * service through examples/monitoring/prometheus.yml's HTTP service discovery: every replica is discovered and
 * scraped, and a replica added by a scale-up appears. Also: promtool accepts the shipped config, and every query
 * of the Grafana dashboard is valid PromQL that Prometheus evaluates.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { dashboardExpressions } from './promql-names.js';
import { findPrometheus, startPrometheus, waitFor, type RunningPrometheus } from './prometheus-process.js';
import { root, startRunningStack, type RunningStack } from './running-stack.js';

const MONITORING = join(root, 'examples', 'monitoring');
const prometheusBinary = findPrometheus();

function requirePrometheus(ctx: Mocha.Context): string {
  if (prometheusBinary) return prometheusBinary;
  const why = 'the `prometheus` binary is not on PATH (Debian: apt-get install prometheus; .ci/run installs it)';
  if (process.env.CI) assert.fail(`cannot run the Prometheus test in CI: ${why}`);
  ctx.skip();
  return '';
}

/** examples/monitoring/prometheus.yml pointed at this coordinator, with test-speed intervals. */
function testConfig(coordinatorUrl: string): string {
  const config = parse(readFileSync(join(MONITORING, 'prometheus.yml'), 'utf8')) as {
    global: Record<string, unknown>;
    scrape_configs: Array<{ job_name: string; http_sd_configs: Array<{ url: string; refresh_interval?: string }> }>;
  };
  config.global.scrape_interval = '1s';
  config.global.evaluation_interval = '1s';
  const job = config.scrape_configs.find((j) => j.http_sd_configs);
  assert.ok(job, 'prometheus.yml has a job with http_sd_configs');
  assert.match(job.http_sd_configs[0]!.url, /\/v1\/sd$/);
  job.http_sd_configs[0]!.url = `${coordinatorUrl}/v1/sd`;
  job.http_sd_configs[0]!.refresh_interval = '1s';
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

  it('promtool accepts examples/monitoring/prometheus.yml', async function () {
    requirePrometheus(this);
    const promtool = join(prometheusBinary!, '..', 'promtool');
    const { stdout } = await promisify(execFile)(promtool, ['check', 'config', join(MONITORING, 'prometheus.yml')]);
    assert.match(stdout, /SUCCESS/);
  });

  it('finds the coordinator and each replica through /v1/sd, scrapes them, and picks up a scale-up', async function () {
    const binary = requirePrometheus(this);
    stack = await startRunningStack(1);
    const [first] = await stack.waitForReplicas(1, 30_000);
    prometheus = await startPrometheus(binary, testConfig(stack.coordinatorUrl));
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
        assert.equal(match.labels.job, 'shoal');
      }
      return { groups, targets };
    };

    const before = await waitFor(() => allScraped(1), 60_000, describeTargets);
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
      30_000,
      describeTargets,
    );
    // honor_labels keeps the coordinator's own `service` label on its series (no exported_service).
    await waitFor(
      async () =>
        (await query('shoal_coordinator_desired_replicas{service="orders"}')).length === 1 ? true : undefined,
      30_000,
      describeTargets,
    );

    // Scale up: the coordinator adds a replica (min replicas raised, as an operator would), which registers,
    // reports, appears in /v1/sd and is scraped.
    await stack.coordinator.reload(stack.config(2));
    const after = await waitFor(() => allScraped(2), 60_000, describeTargets);
    const added = after.groups.find(
      (g) => g.labels.service === 'orders' && g.labels.instance !== first!.labels.instance,
    );
    assert.ok(added, 'a second replica');
    await waitFor(
      async () =>
        (await query(`shoal_agent_ready{instance="${added.labels.instance}"}`)).length === 1 ? true : undefined,
      30_000,
      describeTargets,
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
