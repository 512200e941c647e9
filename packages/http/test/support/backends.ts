/**
 * Real HTTP backends registered in a real Consul HTTP API (@shoal/consul-dev, or CONSUL_HTTP_ADDR) and dispatchers
 * over them, created per test and closed after it. `useBackends()` installs the mocha hooks.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { ServiceRegistration } from '@shoal/consul';
import { createDispatcher } from '@shoal/http';
import type { ShoalDispatcher, ShoalDispatcherOptions } from '@shoal/http';
import { startTestConsul } from '../../../../test/support/consul.js';
import type { TestConsul } from '../../../../test/support/consul.js';

export interface Backend {
  name: string;
  server: Server;
  port: number;
  hits: number;
  methods: string[];
  handler: (req: IncomingMessage, res: ServerResponse, b: Backend) => void;
  registration?: ServiceRegistration;
}

export function defaultHandler(_req: IncomingMessage, res: ServerResponse, b: Backend): void {
  res.setHeader('content-type', 'text/plain');
  res.end(b.name);
}

/** A handler that reads the request and never answers (a hung process, as far as the client can tell). */
export function hangingHandler(): void {}

export interface Backends {
  readonly consul: TestConsul;
  readonly service: string;
  readonly backends: Backend[];
  addBackend(name: string, handler?: Backend['handler'], register?: boolean): Promise<Backend>;
  dispatcher(options?: ShoalDispatcherOptions): ShoalDispatcher;
  get(d: ShoalDispatcher, path?: string, method?: string): Promise<{ status: number; body: string }>;
  spread(d: ShoalDispatcher, n: number, concurrency?: number): Promise<Record<string, number>>;
  /** Starts a fresh Consul for the rest of the test (after the test closed the first one). */
  freshConsul(): Promise<void>;
}

let counter = 0;

/** Installs beforeEach/afterEach hooks; the returned object's fields are valid inside each test. */
export function useBackends(): Backends {
  const state = { consul: undefined as unknown as TestConsul, service: '', backends: [] as Backend[] };
  let dispatchers: ShoalDispatcher[] = [];

  beforeEach(async () => {
    state.consul = await startTestConsul();
    state.service = `web-${++counter}-${process.pid}`;
  });

  afterEach(async () => {
    await Promise.all(dispatchers.map((d) => d.destroy()));
    dispatchers = [];
    await Promise.all(
      state.backends.map(async (b) => {
        await b.registration?.close().catch(() => {});
        b.server.closeAllConnections();
        await new Promise<void>((r) => b.server.close(() => r()));
      }),
    );
    state.backends = [];
    await state.consul.close();
  });

  const api: Backends = {
    get consul() {
      return state.consul;
    },
    get service() {
      return state.service;
    },
    get backends() {
      return state.backends;
    },
    async addBackend(name, handler = defaultHandler, register = true) {
      const backend = { name, hits: 0, methods: [], handler } as unknown as Backend;
      backend.server = createServer((req, res) => {
        backend.hits++;
        backend.methods.push(req.method ?? '');
        req.resume();
        req.on('end', () => backend.handler(req, res, backend));
      });
      await new Promise<void>((r) => backend.server.listen(0, '127.0.0.1', () => r()));
      backend.port = (backend.server.address() as AddressInfo).port;
      state.backends.push(backend);
      if (register) {
        const consul = state.consul;
        backend.registration = new ServiceRegistration({
          consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
          service: state.service,
          id: `${state.service}-${name}`,
          address: '127.0.0.1',
          port: backend.port,
          check: { ttlMs: 30_000 },
        });
        await backend.registration.register();
      }
      return backend;
    },
    dispatcher(options = {}) {
      const consul = state.consul;
      const d = createDispatcher({
        consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
        slowStart: false,
        registry: new Registry(),
        ...options,
      });
      dispatchers.push(d);
      return d;
    },
    async get(d, path = '/', method = 'GET') {
      const res = await request(`http://${state.service}.service.consul${path}`, {
        dispatcher: d,
        method: method as 'GET',
      });
      return { status: res.statusCode, body: await res.body.text() };
    },
    async freshConsul() {
      state.consul = await startTestConsul();
    },
    async spread(d, n, concurrency = 1) {
      const counts: Record<string, number> = {};
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < n) {
            next++;
            const { body } = await api.get(d);
            counts[body] = (counts[body] ?? 0) + 1;
          }
        }),
      );
      return counts;
    },
  };
  return api;
}
