import { randomUUID } from 'node:crypto';
import { Fields, parseJsonObject } from '../body.js';
import type { Context, Dev, Route } from '../context.js';
import { parseGoDurationNs } from '../duration.js';
import { badRequest, internalError, notFound } from '../http-error.js';
import type { SessionBehavior } from '../kv-store.js';
import { json } from '../reply.js';
import type { Reply } from '../reply.js';
import { DEFAULT_LOCK_DELAY_MS, SESSION_TTL_MAX_MS, SESSION_TTL_MIN_MS } from '../session-store.js';
import type { SessionRecord } from '../session-store.js';

function sessionView(s: SessionRecord) {
  return {
    ID: s.id,
    Name: s.name,
    Node: s.node,
    LockDelay: Math.round(s.lockDelayMs * 1e6),
    Behavior: s.behavior,
    TTL: s.ttl,
    NodeChecks: s.nodeChecks.length > 0 ? [...s.nodeChecks] : null,
    ServiceChecks: s.serviceChecks.length > 0 ? s.serviceChecks.map((id) => ({ ID: id, Namespace: '' })) : null,
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}

/** `FixupLockDelay`: a duration string, or a number read as seconds below 1000 and as nanoseconds above. */
function lockDelayMs(value: unknown): number {
  if (value === undefined || value === null) return DEFAULT_LOCK_DELAY_MS;
  if (typeof value === 'number' && Number.isFinite(value)) return value < 1000 ? value * 1000 : value / 1e6;
  if (typeof value === 'string') {
    const ns = parseGoDurationNs(value);
    if (ns === undefined) throw badRequest(`Request decode failed: time: invalid duration ${JSON.stringify(value)}`);
    return ns / 1e6;
  }
  throw badRequest('Request decode failed: json: cannot unmarshal LockDelay');
}

async function create(ctx: Context, dev: Dev): Promise<Reply> {
  const raw = parseJsonObject(await ctx.body(), true);
  const f = new Fields(raw);
  ctx.requireWrite('session:write', dev.catalog.node.name);
  const node = f.string('Node') || dev.catalog.node.name;
  const behavior = (f.string('Behavior') || 'release') as SessionBehavior;
  const ttl = f.string('TTL');
  const delay = lockDelayMs(f.get('LockDelay'));
  // An explicit Checks/NodeChecks list (even empty) replaces the default serfHealth check.
  const explicit = f.get('NodeChecks') !== undefined || f.get('Checks') !== undefined;
  const listed = [...f.strings('Checks'), ...f.strings('NodeChecks')];
  const serviceChecks = f.objects('ServiceChecks').map((c) => c.string('ID'));
  const nodeChecks: string[] = [];
  for (const id of explicit ? listed : ['serfHealth']) {
    const check = dev.catalog.checks.get(id);
    if (check?.serviceId) serviceChecks.push(id);
    else nodeChecks.push(id);
  }
  if (node !== dev.catalog.node.name) throw internalError('Missing node registration');
  if (behavior !== 'release' && behavior !== 'delete') throw internalError(`Invalid Behavior setting '${behavior}'`);
  let ttlMs = 0;
  if (ttl !== '') {
    const ns = parseGoDurationNs(ttl);
    if (ns === undefined)
      throw internalError(`Session TTL '${ttl}' invalid: time: invalid duration ${JSON.stringify(ttl)}`);
    ttlMs = ns / 1e6;
    if (ttlMs !== 0 && (ttlMs < SESSION_TTL_MIN_MS || ttlMs > SESSION_TTL_MAX_MS))
      throw internalError(`Invalid Session TTL '${ns}', must be between [10s=24h0m0s]`);
  }
  for (const id of [...nodeChecks, ...serviceChecks]) {
    const check = dev.catalog.checks.get(id);
    if (!check) throw internalError(`Missing check '${id}' registration`);
    if (check.status === 'critical') throw internalError(`Check '${id}' is in critical state`);
  }
  const record = dev.sessions.create({
    id: randomUUID(),
    name: f.string('Name'),
    node,
    lockDelayMs: delay,
    behavior,
    ttl,
    ttlMs,
    nodeChecks,
    serviceChecks,
  });
  return json({ ID: record.id });
}

function sessionId(ctx: Context): string {
  if (!ctx.param) throw badRequest('Missing session');
  return ctx.param;
}

function destroy(ctx: Context, dev: Dev): Reply {
  const id = sessionId(ctx);
  ctx.requireWrite('session:write', dev.catalog.node.name);
  dev.sessions.destroy(id);
  return json(true);
}

function renew(ctx: Context, dev: Dev): Reply {
  const id = sessionId(ctx);
  ctx.requireWrite('session:write', dev.catalog.node.name);
  const record = dev.sessions.renew(id);
  if (!record) throw notFound(`Session id '${id}' not found`);
  return json([sessionView(record)]);
}

async function info(ctx: Context, dev: Dev): Promise<Reply> {
  const id = sessionId(ctx);
  await ctx.block(() => dev.sessions.index());
  const record = ctx.authorized ? dev.sessions.sessions.get(id) : undefined;
  return json(record ? [sessionView(record)] : [], ctx.meta(dev.sessions.index()));
}

async function list(ctx: Context, dev: Dev): Promise<Reply> {
  await ctx.block(() => dev.sessions.index());
  const all = ctx.authorized ? [...dev.sessions.sessions.values()] : [];
  return json(all.map(sessionView), ctx.meta(dev.sessions.index()));
}

async function byNode(ctx: Context, dev: Dev): Promise<Reply> {
  if (!ctx.param) throw badRequest('Missing node name');
  await ctx.block(() => dev.sessions.index());
  const all = ctx.authorized ? [...dev.sessions.sessions.values()].filter((s) => s.node === ctx.param) : [];
  return json(all.map(sessionView), ctx.meta(dev.sessions.index()));
}

export const sessionRoutes: Route[] = [
  { path: '/v1/session/create', methods: ['PUT'], handle: create },
  { path: '/v1/session/destroy/', prefix: true, methods: ['PUT'], handle: destroy },
  { path: '/v1/session/renew/', prefix: true, methods: ['PUT'], handle: renew },
  { path: '/v1/session/info/', prefix: true, methods: ['GET'], handle: info },
  { path: '/v1/session/list', methods: ['GET'], handle: list },
  { path: '/v1/session/node/', prefix: true, methods: ['GET'], handle: byNode },
];
