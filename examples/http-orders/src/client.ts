#!/usr/bin/env node
/**
 * A client of the orders service: Node's `fetch` with a Shoal dispatcher, which resolves
 * `orders.service.consul` to the healthy instances in Consul and balances over them with `peak_ewma`.
 *
 *   CONSUL_HTTP_ADDR=http://127.0.0.1:8500 node examples/http-orders/dist/client.js [--requests 20] [--concurrency 4] [--json]
 */
import { parseArgs } from 'node:util';
import { createDispatcher } from '@shoal/http';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '4' },
    json: { type: 'boolean', default: false },
  },
  strict: true,
});
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
for (const [name, n] of [
  ['--requests', requests],
  ['--concurrency', concurrency],
] as const) {
  if (!Number.isInteger(n) || n < 1 || n > 100_000) {
    process.stderr.write(`${name} must be an integer 1-100000, got ${String(n)}\n`);
    process.exit(2);
  }
}

const dispatcher = createDispatcher({
  consul: {
    url: process.env.CONSUL_HTTP_ADDR ?? 'http://127.0.0.1:8500',
    ...(process.env.CONSUL_HTTP_TOKEN ? { token: process.env.CONSUL_HTTP_TOKEN } : {}),
  },
  strategy: 'peak_ewma',
});

const byInstance: Record<string, number> = {};
let failed = 0;
let next = 0;

async function worker(): Promise<void> {
  while (next < requests) {
    const i = next++;
    try {
      // Create an order, then read it back from the instance that has it (same instance: each keeps its own).
      const created = await fetch('http://orders.service.consul/orders', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ item: `widget-${i}`, quantity: 1 + (i % 5) }),
        // Node's fetch takes any undici Dispatcher; the cast bridges the undici 7 types of @shoal/http and the
        // undici-types of @types/node.
        dispatcher,
      } as unknown as RequestInit);
      const order = (await created.json()) as { id?: string; instanceId?: string; error?: string };
      if (created.status !== 201 || !order.instanceId)
        throw new Error(`POST /orders: ${created.status} ${order.error}`);
      byInstance[order.instanceId] = (byInstance[order.instanceId] ?? 0) + 1;
    } catch (err) {
      failed++;
      process.stderr.write(`request ${i} failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
}

try {
  await Promise.all(Array.from({ length: Math.min(concurrency, requests) }, () => worker()));
} finally {
  await dispatcher.close();
}

for (const [instance, n] of Object.entries(byInstance).sort()) process.stdout.write(`${instance}: ${n} orders\n`);
process.stdout.write(`${requests - failed} of ${requests} requests succeeded\n`);
if (values.json) process.stdout.write(JSON.stringify({ requests, failed, byInstance }) + '\n');
process.exitCode = failed > 0 ? 1 : 0;
