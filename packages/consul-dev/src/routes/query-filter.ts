import type { CheckRecord, ServiceRecord } from '../catalog.js';
import type { Context } from '../context.js';
import { compileFilter, FilterError } from '../filter.js';
import { internalError } from '../http-error.js';

/** Records used to build sample result shapes, against which `?filter=` selectors are checked. */
export const SAMPLE_SERVICE: ServiceRecord = {
  id: '',
  name: '',
  tags: [],
  address: '',
  port: 0,
  meta: {},
  taggedAddresses: { lan_ipv4: { Address: '', Port: 0 } },
  weights: { Passing: 1, Warning: 1 },
  enableTagOverride: false,
  kind: '',
  connectNative: false,
  createIndex: 0,
  modifyIndex: 0,
  internal: false,
};

export const SAMPLE_CHECK: CheckRecord = {
  id: '',
  name: '',
  notes: '',
  status: 'passing',
  output: '',
  catalogOutput: '',
  serviceId: '',
  serviceName: '',
  definition: { notes: '', kind: '', outputMaxSize: 0 },
  criticalSinceMs: undefined,
  createIndex: 0,
  modifyIndex: 0,
  internal: false,
  successes: 0,
  failures: 0,
};

/** Compiles `?filter=`; an invalid expression is Consul's 500. */
export function filterFromQuery(ctx: Context, sample: () => unknown): ((item: unknown) => boolean) | undefined {
  const expr = ctx.query.get('filter');
  if (expr === null || expr === '') return undefined;
  try {
    return compileFilter(expr, sample());
  } catch (err) {
    if (err instanceof FilterError)
      throw internalError(`Failed to create boolean expression evaluator: ${err.message}`);
    throw err;
  }
}
