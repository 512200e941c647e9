/**
 * Every metric the Grafana dashboard queries is really exported, and docs/metrics-reference.md lists exactly what
 * the components export. The names come from the running components: the coordinator's and a replica's /metrics
 * over HTTP (what Prometheus scrapes), and the registries of a live client (watcher + HTTP dispatcher after a
 * request) and a gRPC load reporter. Nothing here is a hand-written list.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ServiceWatcher } from '@shoal/consul';
import { createLoadReporter } from '@shoal/grpc';
import { createDispatcher } from '@shoal/http';
import { dashboardExpressions, exportedNames, metricNamesInExpr } from './promql-names.js';
import { root, startRunningStack, type RunningStack } from './running-stack.js';

async function scrape(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200, `GET ${url}`);
  return res.text();
}

describe('monitoring: the dashboard and the metrics reference match what the components export', function () {
  this.timeout(60_000);
  let stack: RunningStack;
  let scraped: Set<string>;
  let everything: Set<string>;

  before(async () => {
    stack = await startRunningStack(1);
    const [replica] = await stack.waitForReplicas(1, 30_000);
    const coordinatorText = await scrape(`${stack.coordinatorUrl}/metrics`);
    const replicaText = await scrape(`http://${replica!.targets[0]}/metrics`);
    const consulDevText = await scrape(`${stack.consul.url}/metrics`);
    scraped = new Set([
      ...exportedNames(coordinatorText),
      ...exportedNames(replicaText),
      ...exportedNames(consulDevText),
    ]);

    const client = new Registry();
    const watcher = new ServiceWatcher({ consul: { url: stack.consul.url }, registry: client });
    const dispatcher = createDispatcher({ watcher, registry: client });
    const reporter = createLoadReporter({ registry: client });
    try {
      const res = await fetch('http://orders.service.consul/healthz', { dispatcher } as unknown as RequestInit);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      everything = new Set([...scraped, ...exportedNames(await client.metrics())]);
    } finally {
      reporter.close();
      await dispatcher.close();
      await watcher.close();
    }
  });

  after(async () => {
    await stack?.close();
  });

  it('names only exported metrics in every dashboard query', () => {
    const dashboard = JSON.parse(
      readFileSync(join(root, 'examples', 'monitoring', 'grafana', 'shoal-dashboard.json'), 'utf8'),
    ) as unknown;
    const exprs = dashboardExpressions(dashboard);
    assert.ok(exprs.length >= 8, `only ${exprs.length} expressions found`);
    const used = new Set(exprs.flatMap((e) => metricNamesInExpr(e)));
    assert.ok(used.size >= 6, `only ${used.size} metric names found in the dashboard`);
    for (const expr of exprs) assert.ok(metricNamesInExpr(expr).length > 0, `no metric in ${JSON.stringify(expr)}`);
    const unknown = [...used].filter((name) => !scraped.has(name)).sort();
    assert.deepEqual(unknown, [], 'dashboard metrics that neither the coordinator nor an agent exports');
  });

  it('is a well-formed Grafana dashboard: unique panel ids, a refId per target, data sources from variables', () => {
    const dashboard = JSON.parse(
      readFileSync(join(root, 'examples', 'monitoring', 'grafana', 'shoal-dashboard.json'), 'utf8'),
    ) as {
      uid: string;
      title: string;
      templating: { list: Array<{ name: string }> };
      panels: Array<{ id: number; title: string; datasource: { uid: string }; targets: Array<{ refId: string }> }>;
    };
    assert.ok(dashboard.uid && dashboard.title);
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    const variables = new Set(dashboard.templating.list.map((v) => v.name));
    for (const panel of dashboard.panels) {
      const uid = /^\$\{(\w+)\}$/.exec(panel.datasource.uid)?.[1];
      assert.ok(uid && variables.has(uid), `${panel.title}: data source comes from a dashboard variable`);
      const refIds = panel.targets.map((t) => t.refId);
      assert.ok(refIds.length > 0 && new Set(refIds).size === refIds.length, `${panel.title}: refIds`);
    }
    for (const wanted of [/replicas/i, /decisions/i, /request rate/i, /latency/i, /event-loop/i, /reasons/i]) {
      assert.ok(
        dashboard.panels.some((p) => wanted.test(p.title)),
        `a panel about ${wanted}`,
      );
    }
  });

  it("reads the decision log panel's fields from the coordinator's real decisions endpoint", async () => {
    const dashboard = JSON.parse(
      readFileSync(join(root, 'examples', 'monitoring', 'grafana', 'shoal-dashboard.json'), 'utf8'),
    ) as {
      panels: Array<{
        title: string;
        targets: Array<{ url?: string; root_selector?: string; columns?: Array<{ selector: string }> }>;
      }>;
    };
    const panel = dashboard.panels.find((p) => p.targets.some((t) => t.url?.includes('/decisions')));
    assert.ok(panel, 'a decision-log panel');
    const target = panel.targets[0]!;
    const res = await fetch(stack.coordinatorUrl + target.url!.replace('${service}', 'orders'));
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, Array<Record<string, unknown>>>;
    const rows = body[target.root_selector!]!;
    assert.ok(Array.isArray(rows) && rows.length > 0, 'the start-up decision is logged');
    for (const column of target.columns!) {
      assert.ok(column.selector in rows[0]!, `decision records have "${column.selector}"`);
    }
  });

  it('lists every exported shoal_ metric in docs/metrics-reference.md, and nothing else', () => {
    const page = readFileSync(join(root, 'docs', 'metrics-reference.md'), 'utf8');
    const documented = new Set([...page.matchAll(/^\| `(shoal_[a-z0-9_]+)`/gm)].map((m) => m[1]!));
    // Base names only: a histogram's _bucket/_sum/_count are implied by its row.
    const isSeriesOfHistogram = (n: string) =>
      /_(bucket|sum|count)$/.test(n) && everything.has(n.replace(/_(bucket|sum|count)$/, ''));
    const exported = [...everything].filter((n) => n.startsWith('shoal_') && !isSeriesOfHistogram(n));
    const missing = exported.filter((n) => !documented.has(n)).sort();
    assert.deepEqual(missing, [], 'exported but not in docs/metrics-reference.md');
    const stale = [...documented].filter((n) => !everything.has(n)).sort();
    assert.deepEqual(stale, [], 'documented but not exported by any running component');
  });
});
