import type { Clock, Logger, TimerHandle } from '@shoal/core';
import type { KvStore, SessionBehavior } from './kv-store.js';
import type { Store } from './store.js';

/** Consul's SessionTTLMultiplier: a session expires after twice its TTL without a renewal. */
export const SESSION_TTL_MULTIPLIER = 2;
export const SESSION_TTL_MIN_MS = 10_000;
export const SESSION_TTL_MAX_MS = 86_400_000;
export const DEFAULT_LOCK_DELAY_MS = 15_000;

export interface SessionRecord {
  id: string;
  name: string;
  node: string;
  lockDelayMs: number;
  behavior: SessionBehavior;
  /** TTL as the client wrote it ("30s"), or "" for none. */
  ttl: string;
  ttlMs: number;
  nodeChecks: string[];
  serviceChecks: string[];
  createIndex: number;
  modifyIndex: number;
  timer?: TimerHandle;
}

/** Sessions: TTL expiry (2 × TTL after the last renewal), invalidation by checks, and lock release through the KV. */
export class SessionStore {
  readonly sessions = new Map<string, SessionRecord>();
  private tableIndex = 0;

  constructor(
    private readonly store: Store,
    private readonly kv: KvStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  index(): number {
    return this.tableIndex;
  }

  create(session: Omit<SessionRecord, 'createIndex' | 'modifyIndex' | 'timer'>): SessionRecord {
    const idx = this.store.bump();
    const record: SessionRecord = { ...session, createIndex: idx, modifyIndex: idx };
    this.sessions.set(record.id, record);
    this.tableIndex = idx;
    this.arm(record);
    return record;
  }

  /** Resets the TTL; returns undefined for an unknown (or expired) session. */
  renew(id: string): SessionRecord | undefined {
    const record = this.sessions.get(id);
    if (!record) return undefined;
    this.arm(record);
    return record;
  }

  /** Destroys (invalidates) a session: its locks are released or deleted per its behaviour. */
  destroy(id: string, why = 'destroyed'): void {
    const record = this.sessions.get(id);
    if (!record) return;
    this.clock.clearTimeout(record.timer);
    this.sessions.delete(id);
    this.logger.debug({ session: id, why }, 'session invalidated');
    this.kv.invalidateSession(id, record.behavior, record.lockDelayMs);
    this.tableIndex = this.store.bump();
  }

  /** Invalidates every session that depends on one of these checks (check went critical or was removed). */
  invalidateByChecks(checkIds: readonly string[]): void {
    for (const s of [...this.sessions.values()]) {
      if (checkIds.some((c) => s.nodeChecks.includes(c) || s.serviceChecks.includes(c))) {
        this.destroy(s.id, 'check');
      }
    }
  }

  private arm(record: SessionRecord): void {
    if (record.ttlMs <= 0) return;
    this.clock.clearTimeout(record.timer);
    record.timer = this.clock.setTimeout(() => {
      record.timer = undefined;
      if (this.sessions.get(record.id) === record) this.destroy(record.id, 'ttl');
    }, record.ttlMs * SESSION_TTL_MULTIPLIER);
    record.timer.unref();
  }

  close(): void {
    for (const s of this.sessions.values()) this.clock.clearTimeout(s.timer);
  }
}
