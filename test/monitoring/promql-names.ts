/**
 * Metric names referenced by a PromQL expression (or a Grafana `label_values(metric, label)` query). Not a full
 * PromQL parser: it removes what cannot be a metric name (strings, label matchers, grouping label lists, range and
 * offset durations, Grafana variables, numbers) and keeps each remaining identifier that is not a function,
 * keyword or aggregation.
 */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'and',
  'or',
  'unless',
  'atan2',
  'inf',
  'nan',
]);

export function metricNamesInExpr(expr: string): string[] {
  let s = expr;
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' '); // strings
  s = s.replace(/\$\{[^}]*\}|\$\w+/g, ' '); // Grafana variables ($service, ${__range}, $__rate_interval)
  s = s.replace(/\{[^}]*\}/g, ' '); // label matchers
  s = s.replace(/\[[^\]]*\]/g, ' '); // ranges and subqueries
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // grouping label lists
  s = s.replace(/label_values\s*\(\s*([A-Za-z_:][\w:]*)\s*,\s*[A-Za-z_]\w*\s*\)/g, ' $1 '); // Grafana helper
  s = s.replace(/\b\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\b/g, ' '); // durations (offset 5m)
  s = s.replace(/\b\d+(\.\d+)?([eE][+-]?\d+)?\b/g, ' '); // numbers
  const names = new Set<string>();
  const re = /[A-Za-z_:][\w:]*/g;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const word = m[0];
    const rest = s.slice(m.index + word.length);
    if (/^\s*\(/.test(rest)) continue; // a function or aggregation call
    if (KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names].sort();
}

interface DashboardNode {
  [key: string]: unknown;
}

/** Every PromQL expression in a Grafana dashboard: panel targets, template queries and annotations. */
export function dashboardExpressions(dashboard: unknown): string[] {
  const found: string[] = [];
  const visit = (node: unknown, key: string | undefined): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, key);
      return;
    }
    if (node === null || typeof node !== 'object') {
      if (typeof node === 'string' && (key === 'expr' || key === 'definition' || key === 'query') && node.trim()) {
        found.push(node);
      }
      return;
    }
    for (const [k, v] of Object.entries(node as DashboardNode)) {
      // A datasource variable's `query` is a plugin id, not PromQL.
      if (k === 'query' && (node as DashboardNode).type === 'datasource') continue;
      visit(v, k);
    }
  };
  visit(dashboard, undefined);
  return [...new Set(found)];
}

/**
 * Every sample name a Prometheus text exposition can contain, from its `# TYPE` lines: a histogram `x` exports
 * `x_bucket`, `x_sum` and `x_count`; a summary `x`, `x_sum` and `x_count`; a counter or gauge its own name.
 */
export function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const m = /^# TYPE ([A-Za-z_:][\w:]*) (\w+)/.exec(line);
    if (!m) continue;
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}
