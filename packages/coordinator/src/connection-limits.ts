import { createServer, type Server, type Socket } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import type { Clock, Logger } from '@shoal/core';

export interface ConnectionLimits {
  /** Connections open at once on the listener; the next is closed as soon as it is accepted. */
  maxConnections: number;
  /** Connections open at once from one client address. */
  maxConnectionsPerClient: number;
}

/** Why a connection was closed on accept: the listener was full, or its client address was. */
export type ConnectionRefusal = 'max_connections' | 'max_connections_per_client';

export interface ConnectionWatch {
  /** Called once per connection closed on accept (counted in `shoal_coordinator_connections_refused_total`). */
  onRefused?: ((reason: ConnectionRefusal, remoteAddress: string) => void) | undefined;
}

/**
 * Bounds a listener's connections, in total (Node's `server.maxConnections`: further sockets are closed at once)
 * and per client address, the way Consul's `http_max_conns_per_client` does: one client cannot take every
 * descriptor, and idle sockets beyond the limit cost an accept and a close, nothing more.
 */
export function limitConnections(server: Server, limits: ConnectionLimits, watch: ConnectionWatch = {}): void {
  server.maxConnections = limits.maxConnections;
  // Node closes a socket beyond maxConnections itself and says so with 'drop' (Node >= 18.6).
  server.on('drop', (data?: { remoteAddress?: string }) =>
    watch.onRefused?.('max_connections', data?.remoteAddress ?? ''),
  );
  const perClient = new PerClientCount(limits.maxConnectionsPerClient);
  server.on('connection', (socket: Socket) => {
    if (!perClient.admit(socket)) {
      socket.destroy();
      watch.onRefused?.('max_connections_per_client', socket.remoteAddress ?? '');
    }
  });
}

/** Open connections per remote address; a socket admitted is counted until it closes. */
class PerClientCount {
  private readonly open = new Map<string, number>();
  constructor(private readonly max: number) {}

  admit(socket: Socket): boolean {
    const address = socket.remoteAddress ?? '';
    const n = this.open.get(address) ?? 0;
    if (n >= this.max) return false;
    this.open.set(address, n + 1);
    socket.once('close', () => {
      const left = (this.open.get(address) ?? 1) - 1;
      if (left > 0) this.open.set(address, left);
      else this.open.delete(address);
    });
    return true;
  }
}

/** A gRPC port behind Shoal's own listener (see {@link listenGrpc}). */
export interface GrpcListener {
  readonly port: number;
  /** Connections open now (admitted, not yet closed). */
  readonly connections: number;
  /** Stops accepting; connections still open are left to the gRPC server's shutdown. */
  stopAccepting(): void;
  /** Destroys what the gRPC server's shutdown left open (sockets that never became an HTTP/2 session). */
  destroyAll(): void;
}

/**
 * Listens on `host:port` with a plain `net.Server` that counts connections, in total and per client address, and
 * hands the ones it admits to `server` through grpc-js's connection injector (`Server.createConnectionInjector`),
 * which runs the TLS handshake (if `credentials` has it) and HTTP/2 as `bindAsync` would. grpc-js has no hook to
 * refuse a connection on a port it binds itself, so without this, idle TCP connections (no HTTP/2 preface, no
 * call) would be held until the descriptor limit and lock honest agents out.
 */
export function listenGrpc(
  server: grpc.Server,
  credentials: grpc.ServerCredentials,
  address: { host: string; port: number },
  limits: ConnectionLimits,
  watch: ConnectionWatch = {},
): Promise<GrpcListener> {
  const injector = server.createConnectionInjector(credentials);
  const sockets = new Set<Socket>();
  const perClient = new PerClientCount(limits.maxConnectionsPerClient);
  const listener = createServer((socket) => {
    socket.on('error', () => {}); // a reset by the peer; the HTTP/2 session sees it too
    const reason: ConnectionRefusal | undefined =
      sockets.size >= limits.maxConnections
        ? 'max_connections'
        : !perClient.admit(socket)
          ? 'max_connections_per_client'
          : undefined;
    if (reason) {
      socket.destroy();
      watch.onRefused?.(reason, socket.remoteAddress ?? '');
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    injector.injectConnection(socket);
  });
  return new Promise((resolve, reject) => {
    listener.once('error', (error) => {
      injector.destroy();
      reject(error);
    });
    listener.listen(address.port, address.host, () => {
      listener.removeAllListeners('error');
      listener.on('error', () => {});
      resolve({
        port: (listener.address() as { port: number }).port,
        get connections() {
          return sockets.size;
        },
        stopAccepting: () => listener.close(),
        destroyAll: () => {
          injector.destroy();
          for (const s of sockets) s.destroy();
        },
      });
    });
  });
}

/**
 * Logs connections closed on accept at `warn`, one line per listener and reason at most every `intervalMs`, with the
 * number not logged since: a flood of refused sockets costs a counter increment each, not a log line each.
 */
export class RefusedConnectionLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly intervalMs = 60_000,
  ) {}

  note(listener: string, reason: ConnectionRefusal, limit: number, remoteAddress: string): void {
    const key = `${listener}\u0000${reason}`;
    const now = this.clock.monotonic();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    this.log.warn(
      {
        listener,
        reason,
        limit,
        peer: remoteAddress.slice(0, 64),
        ...(entry && entry.suppressed > 0 ? { suppressed: entry.suppressed } : {}),
      },
      'connection refused: limit reached',
    );
    this.last.set(key, { at: now, suppressed: 0 });
  }
}
