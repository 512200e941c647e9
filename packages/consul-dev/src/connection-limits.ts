import type { Server, Socket } from 'node:net';
import type { Clock, Logger } from '@shoal/core';

/** Why a connection was closed as soon as it was accepted. */
export type ConnectionRefusal = 'max_connections' | 'max_connections_per_client';

export interface DevConnectionLimits {
  maxConnections: number;
  maxConnectionsPerClient: number;
  clock: Clock;
  logger: Logger;
  /** Counts a refusal (the metric), when metrics are on. */
  onRefused?: ((reason: ConnectionRefusal) => void) | undefined;
}

/**
 * Caps the server's connections in total (Node's `server.maxConnections`, which closes further sockets itself and
 * emits 'drop') and per client address (as Consul's `http_max_conns_per_client`). Each refusal is counted; one
 * `warn` line per reason at most every minute says how many were not logged since.
 */
export function limitDevConnections(server: Server, limits: DevConnectionLimits): void {
  server.maxConnections = limits.maxConnections;
  const last = new Map<ConnectionRefusal, { at: number; suppressed: number }>();
  const refused = (reason: ConnectionRefusal, peer: string) => {
    limits.onRefused?.(reason);
    const now = limits.clock.monotonic();
    const entry = last.get(reason);
    if (entry && now - entry.at < 60_000) {
      entry.suppressed++;
      return;
    }
    const limit = reason === 'max_connections' ? limits.maxConnections : limits.maxConnectionsPerClient;
    const suppressed = entry && entry.suppressed > 0 ? { suppressed: entry.suppressed } : {};
    limits.logger.warn({ reason, limit, peer: peer.slice(0, 64), ...suppressed }, 'connection refused: limit reached');
    last.set(reason, { at: now, suppressed: 0 });
  };
  server.on('drop', (data?: { remoteAddress?: string }) => refused('max_connections', data?.remoteAddress ?? ''));
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const n = open.get(address) ?? 0;
    if (n >= limits.maxConnectionsPerClient) {
      socket.destroy();
      refused('max_connections_per_client', address);
      return;
    }
    open.set(address, n + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}
