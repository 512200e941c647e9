import { randomUUID } from 'node:crypto';
import { createServer, type ServerOptions } from 'node:http';
import { limitDevConnections } from './connection-limits.js';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { componentLogger, errorFields } from '@shoal/core';
import type { Logger } from '@shoal/core';
import { readBody } from './body.js';
import { Catalog } from './catalog.js';
import type { Context, Dev, Route } from './context.js';
import { HttpError, aclNotFound, badRequest, permissionDenied } from './http-error.js';
import { KvStore } from './kv-store.js';
import { resolveConsulDevOptions } from './options.js';
import type { ConsulDevOptions, ResolvedConsulDevOptions } from './options.js';
import { probeFor } from './probes/index.js';
import { parseBlockingParams } from './query.js';
import { goJson } from './reply.js';
import type { Reply } from './reply.js';
import { agentRoutes } from './routes/agent.js';
import { healthRoutes } from './routes/health.js';
import { kvRoutes } from './routes/kv.js';
import { sessionRoutes } from './routes/session.js';
import { createConsulDevMetrics } from './metrics.js';
import type { ConsulDevMetrics } from './metrics.js';
import { SessionStore } from './session-store.js';
import { Store } from './store.js';

/** The Consul version the double reports (agent/self, node meta). */
export const CONSUL_VERSION = '1.20.0';

export interface ConsulDevServer {
  /** Base URL, e.g. `http://127.0.0.1:8500` (what CONSUL_HTTP_ADDR should point at). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Stops listening, ends pending blocking queries and connections, and clears every timer. Idempotent. */
  close(): Promise<void>;
}

const ROUTES: Route[] = [...agentRoutes, ...healthRoutes, ...kvRoutes, ...sessionRoutes].sort(
  (a, b) => b.path.length - a.path.length,
);

function findRoute(path: string): { route: Route; param: string } | undefined {
  for (const route of ROUTES) {
    if (route.prefix ? path.startsWith(route.path) : path === route.path) {
      return { route, param: route.prefix ? path.slice(route.path.length) : '' };
    }
  }
  return undefined;
}

/** Token resolution order of Consul's `parseTokenInternal`: ?token, X-Consul-Token, Authorization: Bearer. */
function requestToken(req: IncomingMessage, query: URLSearchParams): string {
  const q = query.get('token');
  if (q) return q;
  const header = req.headers['x-consul-token'];
  if (typeof header === 'string' && header) return header;
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1]!.trim();
  }
  return '';
}

function writeReply(req: IncomingMessage, res: ServerResponse, reply: Reply, pretty: boolean): void {
  if (res.writableEnded || res.destroyed) return;
  const status = reply.status ?? 200;
  if (reply.kind === 'text' && reply.rawHeaders) {
    res.writeHead(status, reply.rawHeaders);
    res.end(req.method === 'HEAD' ? undefined : reply.text);
    return;
  }
  for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
  if (reply.kind === 'empty') {
    res.writeHead(status, { 'Content-Length': 0 });
    res.end();
    return;
  }
  const body =
    reply.kind === 'json' ? Buffer.from(goJson(reply.value, pretty)) : Buffer.from(reply.text as string | Buffer);
  res.writeHead(status, {
    'Content-Type': reply.kind === 'json' ? 'application/json' : reply.contentType,
    'Content-Length': body.length,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The cache key of a read: path, query without the blocking parameters, and whether ACLs hide data. */
function cacheKey(path: string, query: URLSearchParams, authorized: boolean): string {
  const rest = [...query].filter(([k]) => k !== 'index' && k !== 'wait' && k !== 'token');
  return `${authorized ? 'y' : 'n'} ${path}?${new URLSearchParams(rest).toString()}`;
}

/** Turns a JSON reply into bytes once, so a cached reply is only written, never re-serialised. */
function serialise(reply: Reply, pretty: boolean): Reply {
  if (reply.kind !== 'json') return reply;
  const text = Buffer.from(goJson(reply.value, pretty));
  const rawHeaders = ['Content-Type', 'application/json', 'Content-Length', String(text.length)];
  for (const [k, v] of Object.entries(reply.headers ?? {})) rawHeaders.push(k, v);
  return {
    kind: 'text',
    text,
    contentType: 'application/json',
    rawHeaders,
    ...(reply.status ? { status: reply.status } : {}),
    ...(reply.headers ? { headers: reply.headers } : {}),
  };
}

function writeError(res: ServerResponse, err: HttpError): void {
  if (res.writableEnded || res.destroyed) return;
  const body = Buffer.from(err.reason);
  res.writeHead(err.statusCode, {
    ...err.headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': body.length,
  });
  res.end(body);
}

/** The in-memory Consul: stores, catalog and sessions wired together. */
function createDev(opts: ResolvedConsulDevOptions, logger: Logger): Dev {
  const store = new Store();
  const kv = new KvStore(store, opts.clock);
  const sessions = new SessionStore(store, kv, opts.clock, logger);
  const catalog = new Catalog({
    store,
    clock: opts.clock,
    random: opts.random,
    logger,
    node: {
      id: randomUUID(),
      name: opts.nodeName,
      address: '127.0.0.1',
      datacenter: opts.datacenter,
      meta: { 'consul-network-segment': '', 'consul-version': CONSUL_VERSION },
    },
    probeFor,
    onChecksRemoved: (ids) => sessions.invalidateByChecks(ids),
    onCheckCritical: (id) => sessions.invalidateByChecks([id]),
  });
  return {
    store,
    catalog,
    kv,
    sessions,
    clock: opts.clock,
    random: opts.random,
    logger,
    aclEnabled: opts.aclToken !== undefined,
    maxBodyBytes: opts.maxBodyBytes,
    kvMaxValueBytes: opts.maxBodyBytes,
    serverAddress: '127.0.0.1:8300',
    version: CONSUL_VERSION,
  };
}

/** The Prometheus metrics of a consul-dev (only when a registry is given). */
function devMetrics(opts: ResolvedConsulDevOptions, dev: Dev): Promise<ConsulDevMetrics> | undefined {
  const { store, catalog, sessions } = dev;
  if (opts.registry === undefined) return undefined;
  return createConsulDevMetrics(opts.registry, {
    blockingQueries: () => store.waiting,
    serviceInstances: () => {
      const names = new Set<string>();
      let instances = 0;
      for (const svc of catalog.services.values()) {
        if (svc.internal) continue;
        instances++;
        names.add(svc.name);
      }
      return { instances, services: names.size };
    },
    sessions: () => sessions.sessions.size,
  });
}

/**
 * A blocking query (`?index`/`?wait`): resolves when `currentIndex()` passes the requested index, the wait (plus
 * Consul's jitter of up to wait/16) runs out, or the client goes away.
 */
function blockingWait(
  dev: Dev,
  res: ServerResponse,
  query: URLSearchParams,
  currentIndex: () => number,
): Promise<void> {
  const { store, clock, random } = dev;
  const { minIndex, waitMs } = parseBlockingParams(query);
  if (minIndex === 0 || currentIndex() > minIndex) return Promise.resolve();
  const timeoutMs = waitMs + Math.floor(random() * (waitMs / 16));
  return new Promise<void>((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      dispose();
      clock.clearTimeout(timer);
      res.off('close', finish);
      resolve();
    };
    const dispose = store.wait({ minIndex, currentIndex, wake: finish });
    const timer = clock.setTimeout(finish, timeoutMs);
    timer.unref();
    res.on('close', finish);
  });
}

/** Serialised answers of reads, shared by identical requests and valid until the next write (see Context.shared). */
function readCache(store: Store): (key: string, pretty: boolean, compute: () => Reply) => Reply {
  const cache = new Map<string, Reply>();
  let cacheIndex = -1;
  const MAX_CACHED = 1000;
  return (key, pretty, compute) => {
    if (cacheIndex !== store.index) {
      cache.clear();
      cacheIndex = store.index;
    }
    let reply = cache.get(key);
    if (!reply) {
      reply = serialise(compute(), pretty);
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(key, reply);
    }
    return reply;
  };
}

/** The HTTP handler: routing, methods, ACL, then the route with its request context. */
function requestHandler(
  dev: Dev,
  opts: ResolvedConsulDevOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const shared = readCache(dev.store);
  const commonHeaders: Record<string, string> = dev.aclEnabled ? { 'X-Consul-Default-ACL-Policy': 'deny' } : {};
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    const query = new URLSearchParams(q >= 0 ? rawUrl.slice(q + 1) : '');
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      throw badRequest(`invalid URL escape in ${JSON.stringify(rawPath)}`);
    }
    for (const [k, v] of Object.entries(commonHeaders)) res.setHeader(k, v);
    const found = findRoute(path);
    if (!found) {
      if (path.startsWith('/v1/')) throw new HttpError(404, 'Invalid URL path: not a recognized HTTP API endpoint\n');
      throw new HttpError(404, '404 page not found\n');
    }
    const { route, param } = found;
    const allow = ['OPTIONS', ...route.methods].join(',');
    if (method === 'OPTIONS') {
      res.writeHead(200, { Allow: allow, 'Content-Length': 0 });
      res.end();
      return;
    }
    const methodOk = route.methods.includes(method) || (method === 'HEAD' && route.methods.includes('GET'));
    if (!methodOk) throw new HttpError(405, `method ${method} not allowed`, { Allow: allow });

    const token = requestToken(req, query);
    if (dev.aclEnabled && !route.public && token !== '' && token !== opts.aclToken) throw aclNotFound();
    const authorized = !dev.aclEnabled || token === opts.aclToken;

    const ctx: Context = {
      req,
      res,
      method: method === 'HEAD' ? 'GET' : method,
      query,
      param,
      authorized,
      requireWrite(permission, resource) {
        if (!authorized) throw permissionDenied(permission, resource);
      },
      body: (maxBytes = dev.maxBodyBytes) => readBody(req, maxBytes),
      block: (currentIndex) => blockingWait(dev, res, query, currentIndex),
      shared: (compute) => shared(cacheKey(path, query, authorized), query.has('pretty'), compute),
      meta(index) {
        return {
          'X-Consul-Index': String(Math.max(1, index)),
          'X-Consul-KnownLeader': 'true',
          'X-Consul-LastContact': '0',
          'X-Consul-Effective-Consistency': 'leader',
          'X-Consul-Query-Backend': 'blocking-query',
        };
      },
    };
    const reply = await route.handle(ctx, dev);
    writeReply(req, res, reply, query.has('pretty'));
  };
}

/** Node's HTTP server limits: header size, headers and request timeouts (checked often enough to hold them). */
function serverOptions(opts: ResolvedConsulDevOptions): ServerOptions {
  const headersTimeout = Math.min(opts.headersTimeoutMs, opts.requestTimeoutMs);
  return {
    maxHeaderSize: opts.maxHeaderBytes,
    headersTimeout,
    requestTimeout: opts.requestTimeoutMs,
    // Node checks both timeouts on this interval (default 30 s); a fraction of the shorter one keeps them close.
    connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(headersTimeout / 4))),
  };
}

/**
 * Starts an in-memory server that speaks Consul's HTTP API (agent services and checks, health, catalog, KV, sessions,
 * status, blocking queries, ACL token check). Resolves once it listens.
 */
export async function startConsulDev(options: ConsulDevOptions = {}): Promise<ConsulDevServer> {
  const opts = resolveConsulDevOptions(options);
  const logger = componentLogger(opts.logger, 'consul-dev');
  const dev = createDev(opts, logger);
  const { store, catalog, sessions } = dev;
  const metrics = await devMetrics(opts, dev);
  const registry = opts.registry;
  const handle = requestHandler(dev, opts);

  const server: Server = createServer(serverOptions(opts), (req, res) => {
    if (metrics !== undefined && registry !== undefined) {
      const rawUrl = req.url ?? '/';
      const q = rawUrl.indexOf('?');
      const rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
      const endpoint = rawPath === '/metrics' ? '/metrics' : (findRoute(rawPath)?.route.path ?? 'unmatched');
      res.once('finish', () => metrics.request(endpoint, res.statusCode));
      if (rawPath === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
        registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'Content-Type': registry.contentType });
            res.end(req.method === 'HEAD' ? undefined : text);
          },
          (err: unknown) => writeError(res, new HttpError(500, err instanceof Error ? err.message : String(err))),
        );
        return;
      }
    }
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        writeError(res, err);
        return;
      }
      logger.error(errorFields(err), 'request failed');
      writeError(res, new HttpError(500, err instanceof Error ? err.message : String(err)));
    });
  });
  server.keepAliveTimeout = opts.keepAliveTimeoutMs;
  limitDevConnections(server, {
    maxConnections: opts.maxConnections,
    maxConnectionsPerClient: opts.maxConnectionsPerClient,
    clock: opts.clock,
    logger,
    onRefused: metrics ? (reason) => metrics.connectionRefused(reason) : undefined,
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${hostForUrl}:${address.port}`;
  logger.info({ url }, 'consul-dev listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    host: address.address,
    port: address.port,
    close() {
      closing ??= (async () => {
        catalog.close();
        sessions.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        store.wakeAll();
        server.closeIdleConnections();
        // Blocking queries woken above answer now; anything still open after that is cut.
        await new Promise<void>((resolve) => setImmediate(resolve));
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
