/**
 * The Consul every integration test talks to: a fresh `@shoal/consul-dev` on a free port by default, or the real
 * Consul at `CONSUL_HTTP_ADDR` when that is set (e.g. `consul agent -dev` → `CONSUL_HTTP_ADDR=127.0.0.1:8500`).
 * Tests that need something only the double can do (time control, restarting it empty) check `isReal` and skip
 * with a reason.
 */
export interface TestConsul {
  /** Base URL, e.g. `http://127.0.0.1:39017`. */
  url: string;
  host: string;
  port: number;
  /** True when the tests run against a real Consul. */
  isReal: boolean;
  /** The ACL token the server was started with, if any. */
  token?: string;
  close(): Promise<void>;
}

export interface TestConsulOptions {
  aclToken?: string;
  /** Start on this port (to simulate a restart on the same address). */
  port?: number;
}

export async function startTestConsul(options: TestConsulOptions = {}): Promise<TestConsul> {
  const real = process.env.CONSUL_HTTP_ADDR;
  if (real) {
    const url = real.startsWith('http') ? real : `http://${real}`;
    const parsed = new URL(url);
    return {
      url: url.replace(/\/$/, ''),
      host: parsed.hostname,
      port: Number(parsed.port || 8500),
      isReal: true,
      ...(process.env.CONSUL_HTTP_TOKEN ? { token: process.env.CONSUL_HTTP_TOKEN } : {}),
      close: async () => {},
    };
  }
  const { startConsulDev } = await import('@shoal/consul-dev');
  const server = await startConsulDev({
    host: '127.0.0.1',
    port: options.port ?? 0,
    ...(options.aclToken ? { aclToken: options.aclToken } : {}),
  });
  const parsed = new URL(server.url);
  return {
    url: server.url,
    host: parsed.hostname,
    port: Number(parsed.port),
    isReal: false,
    ...(options.aclToken ? { token: options.aclToken } : {}),
    close: () => server.close(),
  };
}
