import type { ServiceRecord } from '../catalog.js';
import type { Context, Dev, Route } from '../context.js';
import { badRequest } from '../http-error.js';
import { parseBoolFlag } from '../query.js';
import { json } from '../reply.js';
import type { Reply } from '../reply.js';
import { catalogServiceView, healthCheckView, healthServiceView, nodeView } from '../views.js';
import { filterFromQuery, SAMPLE_CHECK, SAMPLE_SERVICE } from './query-filter.js';

/** `?tag=` (repeatable, AND, case-insensitive) and `?node-meta=k:v` (repeatable, AND). */
export function tagAndNodeMetaMatcher(ctx: Context, dev: Dev): (svc: ServiceRecord) => boolean {
  const tags = ctx.query.getAll('tag').map((t) => t.toLowerCase());
  const nodeMeta = ctx.query.getAll('node-meta').map((kv) => {
    const i = kv.indexOf(':');
    return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
  });
  const nodeOk = nodeMeta.every(([k, v]) => dev.catalog.node.meta[k!] === v);
  return (svc) => {
    if (!nodeOk) return false;
    const lower = svc.tags.map((t) => t.toLowerCase());
    return tags.every((t) => lower.includes(t));
  };
}

function serviceName(ctx: Context): string {
  if (!ctx.param) throw badRequest('Missing service name');
  return ctx.param;
}

async function healthService(ctx: Context, dev: Dev): Promise<Reply> {
  // Validation (400/500) happens before blocking, as in Consul.
  const name = serviceName(ctx);
  const passing = parseBoolFlag(ctx.query, 'passing', 'Invalid value for ?passing');
  const cat = dev.catalog;
  const filter = filterFromQuery(ctx, () => ({
    Node: nodeView(cat.node),
    Service: healthServiceView(SAMPLE_SERVICE),
    Checks: [healthCheckView(SAMPLE_CHECK, cat.node, undefined)],
  }));
  const matches = tagAndNodeMetaMatcher(ctx, dev);
  await ctx.block(() => cat.serviceQueryIndex(name));
  return ctx.shared(() => {
    const index = cat.serviceQueryIndex(name);
    const node = nodeView(cat.node);
    const nodeChecks = cat.nodeChecks();
    let entries: Array<{ Node: unknown; Service: unknown; Checks: Array<{ Status: string }> }> = [];
    if (ctx.authorized) {
      for (const svc of cat.instancesOf(name)) {
        if (!matches(svc)) continue;
        const checks = [...nodeChecks, ...cat.checksOfService(svc.id)].map((c) => healthCheckView(c, cat.node, svc));
        const entry = { Node: node, Service: healthServiceView(svc), Checks: checks };
        if (filter && !filter(entry)) continue;
        entries.push(entry);
      }
    }
    // ?passing runs after the query, in the HTTP layer: the index is the service's, whatever was dropped.
    if (passing) entries = entries.filter((e) => e.Checks.every((c) => c.Status === 'passing'));
    return json(entries, ctx.meta(index));
  });
}

async function healthChecks(ctx: Context, dev: Dev): Promise<Reply> {
  const name = serviceName(ctx);
  const cat = dev.catalog;
  const filter = filterFromQuery(ctx, () => healthCheckView(SAMPLE_CHECK, cat.node, undefined));
  await ctx.block(() => cat.serviceQueryIndex(name));
  const index = cat.serviceQueryIndex(name);
  const out: unknown[] = [];
  if (ctx.authorized) {
    for (const svc of cat.instancesOf(name)) {
      for (const c of cat.checksOfService(svc.id)) {
        const view = healthCheckView(c, cat.node, svc);
        if (!filter || filter(view)) out.push(view);
      }
    }
  }
  return json(out, ctx.meta(index));
}

async function healthNode(ctx: Context, dev: Dev): Promise<Reply> {
  if (!ctx.param) throw badRequest('Missing node name');
  const cat = dev.catalog;
  const filter = filterFromQuery(ctx, () => healthCheckView(SAMPLE_CHECK, cat.node, undefined));
  await ctx.block(() => cat.checksIndex());
  const out: unknown[] = [];
  if (ctx.authorized && ctx.param === cat.node.name) {
    for (const c of cat.checks.values()) {
      const view = healthCheckView(c, cat.node, cat.services.get(c.serviceId));
      if (!filter || filter(view)) out.push(view);
    }
  }
  return json(out, ctx.meta(cat.checksIndex()));
}

async function healthState(ctx: Context, dev: Dev): Promise<Reply> {
  const state = ctx.param;
  if (!['any', 'passing', 'warning', 'critical'].includes(state)) throw badRequest('Invalid check state');
  const cat = dev.catalog;
  const filter = filterFromQuery(ctx, () => healthCheckView(SAMPLE_CHECK, cat.node, undefined));
  await ctx.block(() => cat.checksIndex());
  const out: unknown[] = [];
  if (ctx.authorized) {
    for (const c of cat.checks.values()) {
      if (state !== 'any' && c.status !== state) continue;
      const view = healthCheckView(c, cat.node, cat.services.get(c.serviceId));
      if (!filter || filter(view)) out.push(view);
    }
  }
  return json(out, ctx.meta(cat.checksIndex()));
}

async function catalogServices(ctx: Context, dev: Dev): Promise<Reply> {
  const cat = dev.catalog;
  const matches = tagAndNodeMetaMatcher(ctx, dev);
  await ctx.block(() => cat.servicesIndex());
  return ctx.shared(() => {
    const out: Record<string, string[]> = {};
    if (ctx.authorized) {
      for (const svc of cat.services.values()) {
        if (!matches(svc)) continue;
        const tags = (out[svc.name] ??= []);
        for (const t of svc.tags) if (!tags.includes(t)) tags.push(t);
      }
    }
    return json(out, ctx.meta(cat.servicesIndex()));
  });
}

async function catalogService(ctx: Context, dev: Dev): Promise<Reply> {
  const name = serviceName(ctx);
  const cat = dev.catalog;
  const filter = filterFromQuery(ctx, () => catalogServiceView(SAMPLE_SERVICE, cat.node));
  const matches = tagAndNodeMetaMatcher(ctx, dev);
  await ctx.block(() => cat.serviceQueryIndex(name, false));
  return ctx.shared(() => {
    const out: unknown[] = [];
    if (ctx.authorized) {
      for (const svc of cat.instancesOf(name)) {
        if (!matches(svc)) continue;
        const view = catalogServiceView(svc, cat.node);
        if (!filter || filter(view)) out.push(view);
      }
    }
    return json(out, ctx.meta(cat.serviceQueryIndex(name, false)));
  });
}

async function catalogNodes(ctx: Context, dev: Dev): Promise<Reply> {
  const cat = dev.catalog;
  await ctx.block(() => cat.nodesIndex());
  return json(ctx.authorized ? [nodeView(cat.node)] : [], ctx.meta(cat.nodesIndex()));
}

export const healthRoutes: Route[] = [
  { path: '/v1/health/service/', prefix: true, methods: ['GET'], handle: healthService },
  { path: '/v1/health/checks/', prefix: true, methods: ['GET'], handle: healthChecks },
  { path: '/v1/health/node/', prefix: true, methods: ['GET'], handle: healthNode },
  { path: '/v1/health/state/', prefix: true, methods: ['GET'], handle: healthState },
  { path: '/v1/catalog/services', methods: ['GET'], handle: catalogServices },
  { path: '/v1/catalog/service/', prefix: true, methods: ['GET'], handle: catalogService },
  { path: '/v1/catalog/nodes', methods: ['GET'], handle: catalogNodes },
  {
    path: '/v1/catalog/datacenters',
    methods: ['GET'],
    handle: (_ctx, dev) => json([dev.catalog.node.datacenter]),
  },
  {
    path: '/v1/status/leader',
    methods: ['GET'],
    public: true,
    handle: (_ctx, dev) => json(dev.serverAddress),
  },
  {
    path: '/v1/status/peers',
    methods: ['GET'],
    public: true,
    handle: (_ctx, dev) => json([dev.serverAddress]),
  },
];
