import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { InvalidArgumentError, describeValue } from '@shoal/core';
import { TRACKED } from './load-tracker.js';
import { finishRequest, type RequestGate } from './request-gate.js';

/**
 * A counted response carries `res[TRACKED]` = its start reading (or -1 when refused): one property and one shared
 * listener per request, and the mark every instrumentation checks before counting. The mark sits on the response
 * because Express and Fastify hand the same `res` object (`reply.raw`) down the chain.
 */
interface TrackedResponse extends ServerResponse {
  [TRACKED]?: number;
}

/** The response-close listener of a gate: one function per gate, none per request. */
function closeListener(gate: RequestGate): (this: TrackedResponse) => void {
  // A response that closes before it finished (the client went away, the handler never answered) counts as a
  // failure, like a 5xx.
  gate.onHttpClose ??= function (this: TrackedResponse) {
    const start = this[TRACKED];
    if (start === undefined || start < 0) return;
    this[TRACKED] = -1;
    finishRequest(gate, start, this.statusCode >= 500 || !this.writableFinished);
  };
  return gate.onHttpClose as (this: TrackedResponse) => void;
}

/** True when an instrumentation already counted (or refused) this response. */
export function isTracked(res: ServerResponse): boolean {
  return (res as TrackedResponse)[TRACKED] !== undefined;
}

/** Marks a response refused, so other instrumentations leave it alone. */
export function markRefused(res: ServerResponse): void {
  (res as TrackedResponse)[TRACKED] = -1;
}

/** Answers 503 + `Retry-After` + `Connection: close` to a request that arrives while draining. */
export function refuseRequest(gate: RequestGate, res: ServerResponse): void {
  gate.metrics.refused.inc();
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(503, {
    'content-type': 'text/plain; charset=utf-8',
    'retry-after': String(gate.retryAfterSeconds),
    connection: 'close',
  });
  res.end('draining\n');
}

/**
 * Counts one HTTP request (unless another instrumentation already did) or refuses it while draining.
 * Returns false when the request was refused and must not reach the application.
 */
export function admitHttpRequest(gate: RequestGate, _req: IncomingMessage, res: ServerResponse): boolean {
  const tracked = res as TrackedResponse;
  if (tracked[TRACKED] !== undefined) return tracked[TRACKED] >= 0;
  if (gate.refusing) {
    tracked[TRACKED] = -1;
    refuseRequest(gate, res);
    return false;
  }
  tracked[TRACKED] = gate.tracker.begin();
  res.on('close', closeListener(gate));
  return true;
}

/** Wraps a `node:http` request listener: `http.createServer(agent.httpListener(handler))`. */
export function wrapHttpListener<L extends RequestListener>(gate: RequestGate, handler: L): L {
  if (typeof handler !== 'function') {
    throw new InvalidArgumentError(`httpListener(handler) needs a function, got ${describeValue(handler)}`);
  }
  const wrapped = function (this: unknown, req: IncomingMessage, res: ServerResponse) {
    if (admitHttpRequest(gate, req, res)) return handler.call(this, req, res);
    return undefined;
  };
  return wrapped as unknown as L;
}

/** Express / Connect middleware: `app.use(agent.express())`, mounted first. */
export type ExpressMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

export function createExpressMiddleware(gate: RequestGate): ExpressMiddleware {
  return function shoalAgent(req, res, next) {
    if (admitHttpRequest(gate, req, res)) next();
  };
}

/**
 * Instruments a server that already has its request listener(s) (`http.createServer(handler)`): they are wrapped
 * in one counted listener. Call it after the handlers are attached and before the first request.
 */
export function instrumentServerListeners(gate: RequestGate, server: Server): void {
  const listeners = server.listeners('request') as RequestListener[];
  if (listeners.length === 0) return;
  server.removeAllListeners('request');
  // The usual single listener is wrapped as is: one call frame less per request than the loop over several.
  const [only] = listeners;
  server.on(
    'request',
    wrapHttpListener(
      gate,
      listeners.length === 1 && only !== undefined
        ? only
        : function (this: unknown, req: IncomingMessage, res: ServerResponse) {
            for (const listener of listeners) listener.call(this, req, res);
          },
    ),
  );
}
