#!/usr/bin/env node
/**
 * The orders service: a plain `node:http` server with the Shoal agent. The agent registers the instance in
 * Consul, counts every request (in-flight, rate, errors, latency), serves /metrics, reports to a coordinator when
 * one is configured, and drains on SIGTERM (deregister, refuse new requests with 503 + Retry-After, finish
 * in-flight ones, exit).
 *
 *   PORT=3001 CONSUL_HTTP_ADDR=http://127.0.0.1:8500 node examples/http-orders/dist/server.js
 *
 * Environment (read here, in the application, and passed to the agent as options):
 *   PORT                      port to listen on (default 3000)
 *   HOST                      address to bind (default 127.0.0.1)
 *   CONSUL_HTTP_ADDR          Consul (default http://127.0.0.1:8500)
 *   CONSUL_HTTP_TOKEN         Consul ACL token (optional)
 *   SHOAL_INSTANCE_ID         instance id (the coordinator's local actuator sets it; default orders-<address>-<port>)
 *   SHOAL_ADVERTISE_ADDRESS   address clients should use (default: HOST, or the first non-internal IPv4 when HOST is 0.0.0.0)
 *   SHOAL_COORDINATOR_URL     coordinator gRPC address (optional; without it the agent only registers and serves /metrics)
 *   SHOAL_COORDINATOR_TOKEN   the service's bearer token at the coordinator
 *   SHOAL_ZONE, SHOAL_VERSION labels for the instance (optional)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createAgent } from '@shoal/agent';
import { OrderStore, ValidationError, parseNewOrder } from './orders.js';

const env = process.env;
const port = Number(env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`orders: PORT must be a port number, got ${JSON.stringify(env.PORT)}\n`);
  process.exit(2);
}
const host = env.HOST ?? '127.0.0.1';
const logger = pino();
const registry = new Registry();
const MAX_BODY_BYTES = 16 * 1024;

const agent = createAgent({
  service: 'orders',
  port,
  // Default: `orders-<address>-<port>`, unique per container too.
  ...(env.SHOAL_INSTANCE_ID ? { instanceId: env.SHOAL_INSTANCE_ID } : {}),
  ...(env.SHOAL_ADVERTISE_ADDRESS
    ? { address: env.SHOAL_ADVERTISE_ADDRESS }
    : host !== '0.0.0.0'
      ? { address: host }
      : {}),
  ...(env.SHOAL_ZONE ? { zone: env.SHOAL_ZONE } : {}),
  ...(env.SHOAL_VERSION ? { version: env.SHOAL_VERSION } : {}),
  consul: {
    url: env.CONSUL_HTTP_ADDR ?? 'http://127.0.0.1:8500',
    ...(env.CONSUL_HTTP_TOKEN ? { token: env.CONSUL_HTTP_TOKEN } : {}),
  },
  ...(env.SHOAL_COORDINATOR_URL
    ? {
        coordinator: {
          url: env.SHOAL_COORDINATOR_URL,
          ...(env.SHOAL_COORDINATOR_TOKEN ? { token: env.SHOAL_COORDINATOR_TOKEN } : {}),
        },
      }
    : {}),
  // /metrics is served by this server (below); its path goes into the Consul registration's Meta.
  metrics: { path: '/metrics' },
  handleSignals: ['SIGTERM', 'SIGINT'],
  drainGraceMs: 500,
  // On SIGTERM/SIGINT, the wait after deregistering before refusing new requests: enough for Consul watchers here;
  // on Kubernetes keep the default (5 s) so kube-proxy and ingresses see the pod go too.
  terminationDelayMs: 500,
  onDrained: async (result) => {
    logger.info(result, 'drained');
    await agent.close();
    process.exit(0);
  },
  logger,
  registry,
});
const instanceId = agent.instanceId;
const store = new OrderStore(instanceId);
agent.gauge('orders_stored', () => store.size);
const ordersCreated = agent.counter('orders_created_total');

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-instance-id': instanceId,
  });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ValidationError(`body must be at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ValidationError('body must be valid JSON');
  }
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://orders');
  if (req.method === 'GET' && url.pathname === '/metrics') return agent.metricsHandler(req, res);
  if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { status: 'ok', instanceId });
  if (req.method === 'POST' && url.pathname === '/orders') {
    const order = store.create(parseNewOrder(await readJson(req)));
    ordersCreated.inc();
    return send(res, 201, order);
  }
  const match = /^\/orders\/([\w-]{1,64})$/.exec(url.pathname);
  if (req.method === 'GET' && match) {
    const order = store.get(match[1]!);
    return order ? send(res, 200, order) : send(res, 404, { error: 'not found', instanceId });
  }
  send(res, 404, { error: `no route for ${req.method} ${url.pathname}` });
}

const server = createServer(
  agent.httpListener((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof ValidationError) return send(res, 400, { error: err.message });
      logger.error({ err }, 'request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  }),
);
agent.instrumentHttpServer(server);

server.listen(port, host, () => {
  agent.start().then(
    () => logger.info({ port, host }, 'orders serving'),
    (err: unknown) => {
      logger.error({ err }, 'agent failed to start');
      process.exit(1);
    },
  );
});
