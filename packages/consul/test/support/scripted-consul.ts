/**
 * A scripted HTTP peer for the edge cases a correct Consul (or @shoal/consul-dev) will not produce on demand: an
 * index that goes backwards, a response without X-Consul-Index, a request that never answers, a fixed error.
 * Everything else is tested against @shoal/consul-dev through test/support/consul.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface ScriptedReply {
  status?: number;
  headers?: Record<string, string>;
  /** JSON-encoded unless a string. */
  body?: unknown;
  /** Never answer (until the client gives up or the server closes). */
  hang?: boolean;
}

export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

export type Script = (req: SeenRequest, n: number) => ScriptedReply | Promise<ScriptedReply>;

export interface ScriptedConsul {
  url: string;
  requests: SeenRequest[];
  /** Requests that were aborted by the client before an answer. */
  aborted: number;
  setScript(script: Script): void;
  close(): Promise<void>;
}

export async function startScriptedConsul(
  script: Script,
  tls?: { key: string; cert: string },
): Promise<ScriptedConsul> {
  let current = script;
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const state = { aborted: 0 };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const seen: SeenRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      requests.push(seen);
      res.on('close', () => {
        if (!res.writableEnded) state.aborted++;
      });
      void Promise.resolve(current(seen, requests.length)).then((reply) => {
        if (reply.hang) return;
        const body =
          reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
        const headers: Record<string, string> = { ...(reply.headers ?? {}) };
        if (reply.body !== undefined && !headers['content-type']) {
          headers['content-type'] = typeof reply.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
        }
        res.writeHead(reply.status ?? 200, headers);
        res.end(body);
      });
    });
  };
  const server: Server = tls ? createTlsServer(tls, handler) : createServer(handler);
  server.on(tls ? 'secureConnection' : 'connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    get aborted() {
      return state.aborted;
    },
    setScript(s) {
      current = s;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A `/v1/health/service` entry as Consul sends it. */
export function healthEntry(
  id: string,
  opts: {
    service?: string;
    address?: string;
    port?: number;
    meta?: Record<string, string>;
    tags?: string[];
    weight?: number;
  } = {},
): unknown {
  return {
    Node: { ID: 'n1', Node: 'node-1', Address: '10.0.0.1', Datacenter: 'dc1' },
    Service: {
      ID: id,
      Service: opts.service ?? 'orders',
      Tags: opts.tags ?? [],
      Address: opts.address ?? '10.0.0.2',
      Meta: opts.meta ?? {},
      Port: opts.port ?? 8080,
      Weights: { Passing: opts.weight ?? 1, Warning: 1 },
    },
    Checks: [{ CheckID: 'serfHealth', Status: 'passing', ServiceID: '' }],
  };
}

/** Polls `cond` on real timers until true or `ms` elapse. */
export async function eventually(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
