import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { TRACKED } from './load-tracker.js';
import { finishRequest, type RequestGate } from './request-gate.js';

const START = Symbol('shoal.agent.start');
const GATE = Symbol('shoal.agent.gate');

interface MarkedRequest extends IncomingMessage {
  [TRACKED]?: boolean;
}

interface TrackedResponse extends ServerResponse {
  [START]?: number;
  [GATE]?: RequestGate;
}

// One shared listener for every response (no closure per request). A response that closes before it finished
// (the client went away, the handler never answered) counts as a failure, like a 5xx.
function onResponseClose(this: TrackedResponse): void {
  const gate = this[GATE];
  const start = this[START];
  if (gate === undefined || start === undefined) return;
  this[GATE] = undefined;
  finishRequest(gate, start, this.statusCode >= 500 || !this.writableFinished);
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
export function admitHttpRequest(gate: RequestGate, req: IncomingMessage, res: ServerResponse): boolean {
  const marked = req as MarkedRequest;
  if (marked[TRACKED] === true) return true;
  marked[TRACKED] = true;
  if (gate.refusing) {
    refuseRequest(gate, res);
    return false;
  }
  const tracked = res as TrackedResponse;
  tracked[START] = gate.tracker.begin();
  tracked[GATE] = gate;
  res.on('close', onResponseClose);
  return true;
}

/** Wraps a `node:http` request listener: `http.createServer(agent.httpListener(handler))`. */
export function wrapHttpListener<L extends RequestListener>(gate: RequestGate, handler: L): L {
  if (typeof handler !== 'function') throw new TypeError('httpListener(handler) needs a function');
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
  server.on(
    'request',
    wrapHttpListener(gate, function (this: unknown, req: IncomingMessage, res: ServerResponse) {
      for (const listener of listeners) listener.call(this, req, res);
    }),
  );
}
