import { Fields, parseJsonObject } from '../body.js';
import type { CheckDefinition } from '../catalog.js';
import type { CheckStatus } from '../check-runner.js';
import type { Context, Dev, Route } from '../context.js';
import { filterFromQuery, SAMPLE_CHECK, SAMPLE_SERVICE } from './query-filter.js';
import { badRequest, internalError, notFound, permissionDenied } from '../http-error.js';
import { hasFlag } from '../query.js';
import { empty, json } from '../reply.js';
import type { Reply } from '../reply.js';
import { CHECK_STATUSES, decodeCheck, decodeService, validateCheck } from '../service-definition.js';
import { agentServiceView, healthCheckView } from '../views.js';

const unknownService = (id: string) =>
  notFound(`Unknown service ID ${JSON.stringify(id)}. Ensure that the service ID is passed, not the service name.`);
const unknownCheck = (id: string) =>
  notFound(`Unknown check ID ${JSON.stringify(id)}. Ensure that the check ID is passed, not the check name.`);

async function register(ctx: Context, dev: Dev): Promise<Reply> {
  const body = parseJsonObject(await ctx.body());
  const { def, lateError } = decodeService(new Fields(body));
  ctx.requireWrite('service:write', def.name);
  if (lateError) throw lateError;
  for (const c of def.checks) {
    if (c.kind === 'script')
      throw internalError(
        "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true",
      );
  }
  const existing = dev.catalog.services.get(def.id);
  if (existing && !existing.internal && existing.name !== def.name) ctx.requireWrite('service:write', existing.name);
  dev.catalog.registerService(def, hasFlag(ctx.query, 'replace-existing-checks'));
  return empty();
}

function deregister(ctx: Context, dev: Dev): Reply {
  const id = ctx.param;
  const svc = dev.catalog.services.get(id);
  if (!svc || svc.internal) {
    ctx.requireWrite('service:write', id);
    throw unknownService(id);
  }
  ctx.requireWrite('service:write', svc.name);
  dev.catalog.deregisterService(id);
  return empty();
}

function maintenance(ctx: Context, dev: Dev): Reply {
  const id = ctx.param;
  if (!id) throw badRequest('Missing service ID');
  const enable = ctx.query.get('enable');
  if (enable === null || enable === '') throw badRequest('Missing value for enable');
  if (!['true', 'false'].includes(enable)) throw badRequest(`Invalid value for enable: ${JSON.stringify(enable)}`);
  const svc = dev.catalog.services.get(id);
  ctx.requireWrite('service:write', svc?.name ?? id);
  if (!svc || svc.internal) throw notFound(`Unknown service ID ${JSON.stringify(id)}`);
  dev.catalog.setServiceMaintenance(svc, enable === 'true', ctx.query.get('reason') ?? '');
  return empty();
}

function listServices(ctx: Context, dev: Dev): Reply {
  const filter = filterFromQuery(ctx, () => agentServiceView(SAMPLE_SERVICE, 'dc1'));
  const out: Record<string, unknown> = {};
  if (ctx.authorized) {
    for (const svc of dev.catalog.services.values()) {
      if (svc.internal) continue;
      const view = agentServiceView(svc, dev.catalog.node.datacenter);
      if (!filter || filter(view)) out[svc.id] = view;
    }
  }
  return json(out);
}

function getService(ctx: Context, dev: Dev): Reply {
  const id = ctx.param;
  const svc = dev.catalog.services.get(id);
  if (!svc || svc.internal) throw notFound(`unknown service ID: ${id}`);
  if (!ctx.authorized) throw permissionDenied('service:read', svc.name);
  return json(agentServiceView(svc, dev.catalog.node.datacenter));
}

function listChecks(ctx: Context, dev: Dev): Reply {
  const node = dev.catalog.node;
  const out: Record<string, unknown> = {};
  const filter = filterFromQuery(ctx, () => healthCheckView(SAMPLE_CHECK, node, undefined));
  if (ctx.authorized) {
    for (const c of dev.catalog.checks.values()) {
      if (c.internal) continue;
      const view = healthCheckView(c, node, dev.catalog.services.get(c.serviceId), true);
      if (!filter || filter(view)) out[c.id] = view;
    }
  }
  return json(out);
}

function ttlUpdate(status: CheckStatus) {
  return (ctx: Context, dev: Dev): Reply => {
    const check = dev.catalog.checks.get(ctx.param);
    ctx.requireWrite(check?.serviceName ? 'service:write' : 'node:write', check?.serviceName || dev.catalog.node.name);
    if (!check || check.internal) throw unknownCheck(ctx.param);
    if (check.definition.kind !== 'ttl')
      throw internalError(`CheckID ${JSON.stringify(check.id)} does not have associated TTL`);
    dev.catalog.updateTtlCheck(check, status, ctx.query.get('note') ?? '');
    return empty();
  };
}

async function checkUpdate(ctx: Context, dev: Dev): Promise<Reply> {
  const f = new Fields(parseJsonObject(await ctx.body()));
  const status = f.string('Status');
  const output = f.string('Output');
  if (!CHECK_STATUSES.includes(status as CheckStatus)) throw badRequest(`Invalid check status: '${status}'`);
  const check = dev.catalog.checks.get(ctx.param);
  ctx.requireWrite(check?.serviceName ? 'service:write' : 'node:write', check?.serviceName || dev.catalog.node.name);
  if (!check || check.internal) throw unknownCheck(ctx.param);
  if (check.definition.kind !== 'ttl')
    throw internalError(`CheckID ${JSON.stringify(check.id)} does not have associated TTL`);
  dev.catalog.updateTtlCheck(check, status as CheckStatus, output);
  return empty();
}

async function checkRegister(ctx: Context, dev: Dev): Promise<Reply> {
  const f = new Fields(parseJsonObject(await ctx.body()));
  const name = f.string('Name');
  const serviceId = f.string('ServiceID');
  const decoded = decodeCheck(f);
  if (!name) throw badRequest('Missing check name');
  const def: CheckDefinition & { checkId: string } = {
    ...(decoded ?? { notes: '', kind: 'ttl', outputMaxSize: 4096 }),
    checkId: decoded?.checkId || name,
    name,
  };
  if (def.status !== undefined && !CHECK_STATUSES.includes(def.status)) throw badRequest('Bad check status');
  const msg = validateCheck(def);
  if (msg) throw badRequest(`Invalid check: ${msg}`);
  const svc = serviceId ? dev.catalog.services.get(serviceId) : undefined;
  ctx.requireWrite(serviceId ? 'service:write' : 'node:write', svc?.name ?? (serviceId || dev.catalog.node.name));
  if (serviceId && (!svc || svc.internal)) throw badRequest(`ServiceID ${JSON.stringify(serviceId)} does not exist`);
  if (def.kind === 'script')
    throw internalError(
      "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true",
    );
  dev.catalog.registerCheck(def, serviceId);
  return empty();
}

function checkDeregister(ctx: Context, dev: Dev): Reply {
  const check = dev.catalog.checks.get(ctx.param);
  ctx.requireWrite(check?.serviceName ? 'service:write' : 'node:write', check?.serviceName || dev.catalog.node.name);
  if (!check || check.internal) throw unknownCheck(ctx.param);
  dev.catalog.deregisterCheck(check.id);
  return empty();
}

function member(dev: Dev) {
  const node = dev.catalog.node;
  return {
    Name: node.name,
    Addr: node.address,
    Port: 8301,
    Tags: {
      build: `${dev.version}:shoal-dev`,
      dc: node.datacenter,
      id: node.id,
      role: 'consul',
      vsn: '2',
      vsn_max: '3',
      vsn_min: '2',
      port: '8300',
      raft_vsn: '3',
      bootstrap: '1',
    },
    Status: 1,
    ProtocolMin: 1,
    ProtocolMax: 5,
    ProtocolCur: 2,
    DelegateMin: 2,
    DelegateMax: 5,
    DelegateCur: 4,
  };
}

function self(ctx: Context, dev: Dev): Reply {
  const node = dev.catalog.node;
  if (!ctx.authorized) throw permissionDenied('agent:read', node.name);
  return json({
    Config: {
      Datacenter: node.datacenter,
      PrimaryDatacenter: node.datacenter,
      NodeName: node.name,
      NodeID: node.id,
      Revision: 'shoal-dev',
      Server: true,
      Version: dev.version,
      BuildDate: '2024-10-14T00:00:00Z',
    },
    DebugConfig: {},
    Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 0.00001 },
    Member: member(dev),
    Stats: { agent: { check_monitors: '0', check_ttls: '0', checks: '0', services: '0' } },
    Meta: { 'consul-network-segment': '', 'consul-version': dev.version },
    xDS: { SupportedProxies: {}, Port: -1, Ports: { Plaintext: -1, TLS: -1 } },
  });
}

function members(ctx: Context, dev: Dev): Reply {
  return json(ctx.authorized ? [member(dev)] : []);
}

export const agentRoutes: Route[] = [
  { path: '/v1/agent/service/register', methods: ['PUT'], handle: register },
  { path: '/v1/agent/service/deregister/', prefix: true, methods: ['PUT'], handle: deregister },
  { path: '/v1/agent/service/maintenance/', prefix: true, methods: ['PUT'], handle: maintenance },
  { path: '/v1/agent/service/', prefix: true, methods: ['GET'], handle: getService },
  { path: '/v1/agent/services', methods: ['GET'], handle: listServices },
  { path: '/v1/agent/checks', methods: ['GET'], handle: listChecks },
  { path: '/v1/agent/check/register', methods: ['PUT'], handle: checkRegister },
  { path: '/v1/agent/check/deregister/', prefix: true, methods: ['PUT'], handle: checkDeregister },
  { path: '/v1/agent/check/pass/', prefix: true, methods: ['PUT'], handle: ttlUpdate('passing') },
  { path: '/v1/agent/check/warn/', prefix: true, methods: ['PUT'], handle: ttlUpdate('warning') },
  { path: '/v1/agent/check/fail/', prefix: true, methods: ['PUT'], handle: ttlUpdate('critical') },
  { path: '/v1/agent/check/update/', prefix: true, methods: ['PUT'], handle: checkUpdate },
  { path: '/v1/agent/self', methods: ['GET'], handle: self },
  { path: '/v1/agent/members', methods: ['GET'], handle: members },
];
