/**
 * A real HTTP/JSON coordinator for the agent's tests: a node:http (or https) server answering `POST /v1/report`
 * the way @shoal/coordinator does (JSON mapping from @shoal/protocol, bearer token, 415/400 on bad bodies), that
 * records what agents send and lets a test pick the answer: accept, a status code, garbage, never answering, or a
 * directive in the next responses.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import {
  parseBearer,
  reportFromJson,
  responseToJson,
  type Hello,
  type LoadReport,
  type ReportResponse,
} from '@shoal/protocol';

/**
 * accept: 200 + `{ directive? }`; status: answer `status` (with `retryAfter` seconds when set); garbage: 200 with
 * a body that is not JSON; hang: read the request, never answer.
 */
export type HttpCoordinatorMode = 'accept' | 'status' | 'garbage' | 'hang';

export interface HttpCoordinatorOptions {
  port?: number;
  token?: string;
  tls?: { cert: Buffer; key: Buffer };
  /** The server's keep-alive timeout (node:http's default is 5 s). */
  keepAliveTimeoutMs?: number;
}

export interface HttpCoordinator {
  readonly port: number;
  readonly url: string;
  readonly hellos: Hello[];
  readonly reports: LoadReport[];
  /** Every POST received (accepted or not), with the arrival time (Date.now()). */
  /** Every POST to /v1/report; `seq` is the report's sequence number when the body had one. */
  readonly posts: Array<{ at: number; seq?: number; authorization?: string; contentType?: string }>;
  /** Bodies that failed validation (should stay empty). */
  readonly invalid: string[];
  /** TCP connections accepted so far, and those still open. */
  readonly connections: number;
  readonly openConnections: number;
  mode: HttpCoordinatorMode;
  status: number;
  retryAfter?: string;
  /** Sent as `directive` (any shape: tests send invalid ones too) in the next `count` accepted answers. */
  directive(directive: unknown, count?: number): void;
  close(): Promise<void>;
}

export async function startHttpCoordinator(options: HttpCoordinatorOptions = {}): Promise<HttpCoordinator> {
  const sockets = new Set<Socket>();
  let pending: { directive: unknown; count: number } | undefined;
  const state = {
    hellos: [] as Hello[],
    reports: [] as LoadReport[],
    posts: [] as HttpCoordinator['posts'],
    invalid: [] as string[],
    mode: 'accept' as HttpCoordinatorMode,
    status: 500,
    retryAfter: undefined as string | undefined,
  };
  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(text);
  };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/report') return send(res, 404, { error: 'not found' });
      let seq: unknown;
      try {
        seq = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { report?: { seq?: unknown } }).report?.seq;
      } catch {
        seq = undefined;
      }
      state.posts.push({
        at: Date.now(),
        ...(typeof seq === 'number' ? { seq } : {}),
        ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
        ...(req.headers['content-type'] !== undefined ? { contentType: req.headers['content-type'] } : {}),
      });
      if (state.mode === 'hang') return; // keeps the socket open, answers nothing
      if (state.mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('\u0000\u00ff not json {');
        return;
      }
      if (state.mode === 'status') {
        return send(
          res,
          state.status,
          { error: `status ${state.status}` },
          state.retryAfter !== undefined ? { 'retry-after': state.retryAfter } : {},
        );
      }
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
        return send(res, 415, { error: 'content-type must be application/json' });
      }
      if (options.token !== undefined && parseBearer(req.headers.authorization) !== options.token) {
        return send(res, 401, { error: 'bad token' });
      }
      let request;
      try {
        request = reportFromJson(Buffer.concat(chunks));
      } catch (error) {
        state.invalid.push((error as Error).message);
        return send(res, 400, { error: (error as Error).message });
      }
      state.hellos.push(request.hello);
      state.reports.push(request.report);
      if (pending !== undefined && pending.count > 0) {
        pending.count--;
        return send(res, 200, { directive: pending.directive });
      }
      const response: ReportResponse = {};
      send(res, 200, responseToJson(response));
    });
  };
  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : http.createServer(handler);
  if (options.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = options.keepAliveTimeoutMs;
  let connections = 0;
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    connections++;
    open.add(socket);
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      open.delete(socket);
    });
  });
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  // Accessors, not values: Object.assign would copy the counts once.
  Object.defineProperties(state, {
    connections: { get: () => connections, enumerable: true },
    openConnections: { get: () => open.size, enumerable: true },
  });
  return Object.assign(state as typeof state & { readonly connections: number; readonly openConnections: number }, {
    port,
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    directive(directive: unknown, count = 1) {
      pending = { directive, count };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  });
}
