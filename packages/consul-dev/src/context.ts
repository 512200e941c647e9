import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, Logger } from '@shoal/core';
import type { Catalog } from './catalog.js';
import type { Store } from './store.js';
import type { KvStore } from './kv-store.js';
import type { SessionStore } from './session-store.js';
import type { Reply } from './reply.js';

/** Everything a route handler may use: the state, the clock and the resolved options. */
export interface Dev {
  readonly store: Store;
  readonly catalog: Catalog;
  readonly kv: KvStore;
  readonly sessions: SessionStore;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  readonly aclEnabled: boolean;
  readonly maxBodyBytes: number;
  readonly kvMaxValueBytes: number;
  /** `host:port` Consul reports as its raft address (status/leader). */
  readonly serverAddress: string;
  readonly version: string;
}

export interface Context {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  readonly query: URLSearchParams;
  /** The decoded part of the path after the route's prefix (a service name, a check ID, a KV key). */
  readonly param: string;
  /** True when ACLs are off or the request carries the configured token; false for the anonymous token. */
  readonly authorized: boolean;
  /** Throws Consul's 403 when the request is anonymous. */
  requireWrite(permission: string, resource?: string): void;
  /** The request body, bounded by `maxBodyBytes` (413 beyond). */
  body(maxBytes?: number): Promise<Buffer>;
  /**
   * Parses `?index`/`?wait` and, for a blocking request, waits until `currentIndex()` passes the requested index or
   * the wait (plus Consul's jitter) elapses.
   */
  block(currentIndex: () => number): Promise<void>;
  /** X-Consul-Index / KnownLeader / LastContact headers for a query answered at `index` (0 becomes 1). */
  meta(index: number): Record<string, string>;
  /**
   * Answers a read from a cache shared by identical requests (same path, query apart from index/wait, same ACL
   * view) for as long as no write happened; `compute` runs only on a miss. When a change wakes 1,000 watchers of one
   * service, the answer is built and serialised once.
   */
  shared(compute: () => Reply): Reply;
}

export interface Route {
  /** An exact path, or a prefix when `prefix` is true (the rest becomes `ctx.param`). */
  path: string;
  prefix?: boolean;
  methods: string[];
  /** Skips token checks (status endpoints are not ACL-protected). */
  public?: boolean;
  handle(ctx: Context, dev: Dev): Promise<Reply> | Reply;
}
