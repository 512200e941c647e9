import type { IncomingMessage, ServerResponse } from 'node:http';
import { admitHttpRequest, isTracked, markRefused } from './http-instrumentation.js';
import type { RequestGate } from './request-gate.js';

// Written against Fastify's documented plugin and hook API (v4/v5) without depending on Fastify: a plugin is
// `(instance, opts, done)`, `instance.addHook('onRequest', (request, reply, done) => ...)` runs first for every
// request, `request.raw` / `reply.raw` are the node:http objects, and a hook may answer with `reply.send()` instead
// of calling `done()`. `Symbol.for('skip-override')` is what `fastify-plugin` sets so the hook applies to the
// whole application rather than an encapsulated child context.

/** The part of a Fastify instance the plugin uses. */
export interface FastifyLike {
  addHook(
    name: 'onRequest',
    hook: (request: { raw: IncomingMessage }, reply: FastifyReplyLike, done: (error?: Error) => void) => void,
  ): unknown;
}

export interface FastifyReplyLike {
  raw: ServerResponse;
  code(statusCode: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  send(payload?: unknown): unknown;
}

export interface FastifyPlugin {
  (instance: FastifyLike, options: unknown, done: (error?: Error) => void): void;
  [key: symbol]: unknown;
}

export function createFastifyPlugin(gate: RequestGate): FastifyPlugin {
  const plugin = ((instance: FastifyLike, _options: unknown, done: (error?: Error) => void) => {
    instance.addHook('onRequest', (request, reply, next) => {
      if (!isTracked(reply.raw) && gate.refusing) {
        markRefused(reply.raw);
        gate.metrics.refused.inc();
        reply.code(503).header('retry-after', String(gate.retryAfterSeconds)).header('connection', 'close');
        reply.send('draining\n');
        return;
      }
      // Refusal was handled above through the reply, so admit only counts here.
      if (admitHttpRequest(gate, request.raw, reply.raw)) next();
    });
    done();
  }) as FastifyPlugin;
  plugin[Symbol.for('skip-override')] = true;
  plugin[Symbol.for('fastify.display-name')] = 'shoal-agent';
  return plugin;
}
