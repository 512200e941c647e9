import type { Server } from 'node:net';

export interface ConnectionLimits {
  /** Connections open at once on the listener; the next is closed as soon as it is accepted. */
  maxConnections: number;
  /** Connections open at once from one client address. */
  maxConnectionsPerClient: number;
}

/**
 * Bounds a listener's connections, in total (Node's `server.maxConnections`: further sockets are closed at once)
 * and per client address, the way Consul's `http_max_conns_per_client` does: one client cannot take every
 * descriptor, and idle sockets beyond the limit cost an accept and a close, nothing more.
 */
export function limitConnections(server: Server, limits: ConnectionLimits): void {
  server.maxConnections = limits.maxConnections;
  const perClient = new Map<string, number>();
  server.on('connection', (socket) => {
    const address = socket.remoteAddress ?? '';
    const open = perClient.get(address) ?? 0;
    if (open >= limits.maxConnectionsPerClient) {
      socket.destroy();
      return;
    }
    perClient.set(address, open + 1);
    socket.once('close', () => {
      const n = (perClient.get(address) ?? 1) - 1;
      if (n > 0) perClient.set(address, n);
      else perClient.delete(address);
    });
  });
}
