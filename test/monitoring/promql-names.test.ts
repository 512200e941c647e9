import assert from 'node:assert/strict';
import { dashboardExpressions, exportedNames, metricNamesInExpr } from './promql-names.js';

describe('monitoring: reading metric names out of PromQL', () => {
  it('finds metric names and skips functions, labels, variables and durations', () => {
    assert.deepEqual(
      metricNamesInExpr(
        'histogram_quantile(0.99, sum by (service, le) (rate(shoal_x_seconds_bucket{service=~"$service"}[$__rate_interval])))',
      ),
      ['shoal_x_seconds_bucket'],
    );
    assert.deepEqual(metricNamesInExpr('sum without (instance) (a_total) / on(service) group_left b offset 5m'), [
      'a_total',
      'b',
    ]);
    assert.deepEqual(metricNamesInExpr('label_values(shoal_desired, service)'), ['shoal_desired']);
    assert.deepEqual(metricNamesInExpr('up{job="shoal"} == 1 and bool x'), ['up', 'x']);
  });

  it('collects every expression of a dashboard but not a datasource variable', () => {
    const exprs = dashboardExpressions({
      panels: [{ targets: [{ expr: 'a' }, { expr: 'b' }] }, { panels: [{ targets: [{ expr: 'c' }] }] }],
      templating: {
        list: [
          { type: 'datasource', query: 'prometheus' },
          { type: 'query', query: { query: 'label_values(d, service)' }, definition: 'label_values(d, service)' },
        ],
      },
      annotations: { list: [{ expr: 'e' }] },
    });
    assert.deepEqual(exprs.sort(), ['a', 'b', 'c', 'e', 'label_values(d, service)']);
  });

  it('expands histogram and summary names from an exposition', () => {
    const names = exportedNames(
      '# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 0\n# TYPE c counter\n# TYPE s summary\n# TYPE g gauge\n',
    );
    assert.deepEqual([...names].sort(), ['c', 'g', 'h', 'h_bucket', 'h_count', 'h_sum', 's', 's_count', 's_sum']);
  });
});
