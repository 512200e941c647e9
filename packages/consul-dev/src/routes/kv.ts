import type { Context, Dev, Route } from '../context.js';
import { HttpError, badRequest, internalError, permissionDenied } from '../http-error.js';
import type { KvEntry } from '../kv-store.js';
import { empty, json } from '../reply.js';
import type { Reply } from '../reply.js';

function entryView(e: KvEntry) {
  return {
    LockIndex: e.lockIndex,
    Key: e.key,
    Flags: e.flags,
    Value: e.value === undefined ? null : e.value.toString('base64'),
    ...(e.session !== undefined ? { Session: e.session } : {}),
    CreateIndex: e.createIndex,
    ModifyIndex: e.modifyIndex,
  };
}

/** strconv.ParseUint as Consul calls it for `?flags` and `?cas` (a failure is a plain 500). */
function parseUint(ctx: Context, name: string): number | undefined {
  if (!ctx.query.has(name)) return undefined;
  const v = ctx.query.get(name) ?? '';
  if (!/^\d+$/.test(v)) throw internalError(`strconv.ParseUint: parsing ${JSON.stringify(v)}: invalid syntax`);
  if (BigInt(v) > 18446744073709551615n)
    throw internalError(`strconv.ParseUint: parsing ${JSON.stringify(v)}: value out of range`);
  return Number(v);
}

function conflicting(ctx: Context, ...flags: string[]): void {
  if (flags.filter((f) => ctx.query.has(f)).length > 1) {
    const raw = ctx.req.url?.split('?')[1] ?? '';
    throw badRequest(`Conflicting flags: ${raw}`);
  }
}

function missingKey(key: string): void {
  if (key === '') throw badRequest('Missing key name');
}

async function kvGet(ctx: Context, dev: Dev): Promise<Reply> {
  const key = ctx.param;
  const q = ctx.query;
  if (q.has('keys')) {
    await ctx.block(() => dev.kv.prefixIndex(key));
    const index = dev.kv.prefixIndex(key);
    const sep = q.get('separator') ?? '';
    const keys: string[] = [];
    if (ctx.authorized) {
      for (const e of dev.kv.list(key)) {
        let k = e.key;
        if (sep) {
          const at = k.indexOf(sep, key.length);
          if (at >= 0) k = k.slice(0, at + sep.length);
        }
        if (keys[keys.length - 1] !== k) keys.push(k);
      }
    }
    if (keys.length === 0 && key !== '') return empty(ctx.meta(index), 404);
    return json(keys, ctx.meta(index));
  }
  if (q.has('recurse')) {
    await ctx.block(() => dev.kv.prefixIndex(key));
    const index = dev.kv.prefixIndex(key);
    const entries = ctx.authorized ? dev.kv.list(key) : [];
    if (entries.length === 0) return empty(ctx.meta(index), 404);
    return json(entries.map(entryView), ctx.meta(index));
  }
  missingKey(key);
  if (!ctx.authorized) throw permissionDenied('key:read', key);
  await ctx.block(() => dev.kv.keyIndex(key));
  const index = dev.kv.keyIndex(key);
  const entry = dev.kv.get(key);
  if (!entry) return empty(ctx.meta(index), 404);
  if (q.has('raw')) {
    return {
      kind: 'text',
      text: entry.value ?? Buffer.alloc(0),
      contentType: 'text/plain; charset=utf-8',
      headers: ctx.meta(index),
    };
  }
  return json([entryView(entry)], ctx.meta(index));
}

async function kvPut(ctx: Context, dev: Dev): Promise<Reply> {
  const key = ctx.param;
  missingKey(key);
  ctx.requireWrite('key:write', key);
  conflicting(ctx, 'cas', 'acquire', 'release');
  const flags = parseUint(ctx, 'flags') ?? 0;
  const cas = parseUint(ctx, 'cas');
  const body = await ctx.body(dev.kvMaxValueBytes);
  const value = body.length === 0 ? undefined : body;
  const acquire = ctx.query.get('acquire');
  const release = ctx.query.get('release');
  if (acquire !== null) {
    if (!dev.sessions.sessions.has(acquire)) throw internalError(`invalid session ${JSON.stringify(acquire)}`);
    return json(dev.kv.acquire(key, value, flags, acquire));
  }
  if (release !== null) return json(dev.kv.release(key, value, flags, release));
  if (cas !== undefined) return json(dev.kv.cas(key, value, flags, cas));
  return json(dev.kv.set(key, value, flags));
}

function kvDelete(ctx: Context, dev: Dev): Reply {
  const key = ctx.param;
  conflicting(ctx, 'recurse', 'cas');
  const recurse = ctx.query.has('recurse');
  if (!recurse) missingKey(key);
  ctx.requireWrite('key:write', key);
  if (recurse) return json(dev.kv.deleteTree(key));
  const cas = parseUint(ctx, 'cas');
  if (cas !== undefined) return json(dev.kv.deleteCas(key, cas));
  return json(dev.kv.delete(key));
}

async function kv(ctx: Context, dev: Dev): Promise<Reply> {
  switch (ctx.method) {
    case 'GET':
      return kvGet(ctx, dev);
    case 'PUT':
      return kvPut(ctx, dev);
    case 'DELETE':
      return kvDelete(ctx, dev);
    default:
      throw new HttpError(405, `method ${ctx.method} not allowed`);
  }
}

export const kvRoutes: Route[] = [{ path: '/v1/kv/', prefix: true, methods: ['GET', 'PUT', 'DELETE'], handle: kv }];
