#!/usr/bin/env node
/**
 * shoal-consul-dev: runs @shoal/consul-dev in the foreground.
 *   shoal-consul-dev [--port 8500] [--host 127.0.0.1] [--acl-token TOKEN] [limits]
 * Prints its address, and stops cleanly on SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { startConsulDev } from './server.js';

const USAGE = `Usage: shoal-consul-dev [--port 8500] [--host 127.0.0.1] [--acl-token TOKEN] [--max-body-bytes N]
                        [--max-connections N] [--max-connections-per-client N] [--max-header-bytes N]
                        [--headers-timeout-ms N] [--request-timeout-ms N]

An in-memory server that speaks Consul's HTTP API, for development and tests.
Point clients at it with CONSUL_HTTP_ADDR=<host>:<port>. Prometheus metrics (requests by endpoint and code,
blocking queries open, services, instances, sessions) are served at /metrics when prom-client is installed.`;

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        'acl-token': { type: 'string' },
        'max-body-bytes': { type: 'string' },
        'max-connections': { type: 'string' },
        'max-connections-per-client': { type: 'string' },
        'max-header-bytes': { type: 'string' },
        'headers-timeout-ms': { type: 'string' },
        'request-timeout-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`shoal-consul-dev: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const toInt = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new Error(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  let server;
  try {
    const port = toInt('port', values.port);
    const maxBodyBytes = toInt('max-body-bytes', values['max-body-bytes']);
    const limits = {
      maxConnections: toInt('max-connections', values['max-connections']),
      maxConnectionsPerClient: toInt('max-connections-per-client', values['max-connections-per-client']),
      maxHeaderBytes: toInt('max-header-bytes', values['max-header-bytes']),
      headersTimeoutMs: toInt('headers-timeout-ms', values['headers-timeout-ms']),
      requestTimeoutMs: toInt('request-timeout-ms', values['request-timeout-ms']),
    };
    // prom-client is an optional peer dependency: without it the server runs without /metrics.
    const registry = await import('prom-client').then(
      ({ Registry }) => new Registry(),
      () => undefined,
    );
    server = await startConsulDev({
      ...(registry ? { registry } : {}),
      host: values.host ?? '127.0.0.1',
      port: port ?? 8500,
      ...(values['acl-token'] ? { aclToken: values['acl-token'] } : {}),
      ...(maxBodyBytes !== undefined ? { maxBodyBytes } : {}),
      ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)),
    });
  } catch (err) {
    process.stderr.write(`shoal-consul-dev: ${(err as Error).message}\n`);
    return 1;
  }
  const addr = server.url.replace(/^http:\/\//, '');
  process.stdout.write(`shoal-consul-dev listening on ${server.url}\nCONSUL_HTTP_ADDR=${addr}\n`);
  const running = server;
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stdout.write(`shoal-consul-dev: ${signal} received, stopping\n`);
      running.close().then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`shoal-consul-dev: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
