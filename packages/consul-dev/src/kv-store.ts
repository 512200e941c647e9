import type { Clock } from '@shoal/core';
import type { Store } from './store.js';

export interface KvEntry {
  key: string;
  /** `undefined` for an empty value: Consul stores nil and shows `"Value": null`. */
  value: Buffer | undefined;
  flags: number;
  createIndex: number;
  modifyIndex: number;
  lockIndex: number;
  session: string | undefined;
}

export type SessionBehavior = 'release' | 'delete';

/**
 * The key/value store: entries with Consul's Create/Modify/Lock indexes, session locks with lock-delay, and
 * tombstones so that a prefix query's index moves when a key under it is deleted.
 */
export class KvStore {
  private readonly entries = new Map<string, KvEntry>();
  private readonly tombstones = new Map<string, number>();
  private readonly lockDelays = new Map<string, number>();
  private tableIndex = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  get(key: string): KvEntry | undefined {
    return this.entries.get(key);
  }

  /** Entries whose key starts with `prefix`, sorted by key. */
  list(prefix: string): KvEntry[] {
    const out: KvEntry[] = [];
    for (const e of this.entries.values()) if (e.key.startsWith(prefix)) out.push(e);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Index of a single-key query: the key's ModifyIndex, or the table index when the key is missing. */
  keyIndex(key: string): number {
    return this.entries.get(key)?.modifyIndex ?? this.tableIndex;
  }

  /** Index of a prefix query: the highest ModifyIndex or tombstone under the prefix, else the table index. */
  prefixIndex(prefix: string): number {
    let idx = 0;
    for (const e of this.entries.values()) if (e.key.startsWith(prefix) && e.modifyIndex > idx) idx = e.modifyIndex;
    for (const [k, i] of this.tombstones) if (k.startsWith(prefix) && i > idx) idx = i;
    return idx === 0 ? this.tableIndex : idx;
  }

  private write(key: string, value: Buffer | undefined, flags: number, idx: number): KvEntry {
    const existing = this.entries.get(key);
    const entry: KvEntry = existing
      ? { ...existing, value, flags, modifyIndex: idx }
      : { key, value, flags, createIndex: idx, modifyIndex: idx, lockIndex: 0, session: undefined };
    this.entries.set(key, entry);
    this.tombstones.delete(key);
    this.tableIndex = idx;
    return entry;
  }

  /** Plain PUT: sets the value, keeps any lock. */
  set(key: string, value: Buffer | undefined, flags: number): true {
    this.write(key, value, flags, this.store.bump());
    return true;
  }

  /** `?cas=N`: writes only if ModifyIndex is N (0: only if the key does not exist). */
  cas(key: string, value: Buffer | undefined, flags: number, index: number): boolean {
    const existing = this.entries.get(key);
    if (index === 0 ? existing !== undefined : existing?.modifyIndex !== index) return false;
    this.write(key, value, flags, this.store.bump());
    return true;
  }

  /** True while a key's lock-delay (after its holder was invalidated) blocks acquisition. */
  lockDelayed(key: string): boolean {
    const until = this.lockDelays.get(key);
    if (until === undefined) return false;
    if (this.clock.now() >= until) {
      this.lockDelays.delete(key);
      return false;
    }
    return true;
  }

  /** `?acquire=<session>` (the session is known to exist). */
  acquire(key: string, value: Buffer | undefined, flags: number, session: string): boolean {
    const existing = this.entries.get(key);
    if (existing?.session !== undefined && existing.session !== session) return false;
    if (existing?.session === session) {
      this.write(key, value, flags, this.store.bump());
      return true;
    }
    if (this.lockDelayed(key)) return false;
    const entry = this.write(key, value, flags, this.store.bump());
    entry.session = session;
    entry.lockIndex += 1;
    return true;
  }

  /** `?release=<session>`: true only if the key exists and that session holds it. */
  release(key: string, value: Buffer | undefined, flags: number, session: string): boolean {
    const existing = this.entries.get(key);
    if (!existing || existing.session !== session) return false;
    const entry = this.write(key, value, flags, this.store.bump());
    entry.session = undefined;
    return true;
  }

  delete(key: string): true {
    if (!this.entries.has(key)) return true;
    const idx = this.store.bump();
    this.entries.delete(key);
    this.tombstones.set(key, idx);
    this.tableIndex = idx;
    return true;
  }

  deleteCas(key: string, index: number): boolean {
    const existing = this.entries.get(key);
    if (!existing) return index === 0;
    if (existing.modifyIndex !== index) return false;
    return this.delete(key);
  }

  deleteTree(prefix: string): true {
    const doomed = this.list(prefix);
    if (doomed.length === 0) return true;
    const idx = this.store.bump();
    for (const e of doomed) {
      this.entries.delete(e.key);
      this.tombstones.set(e.key, idx);
    }
    this.tableIndex = idx;
    return true;
  }

  /**
   * A session was invalidated: release (or delete) every key it holds, and start each key's lock-delay.
   */
  invalidateSession(session: string, behavior: SessionBehavior, lockDelayMs: number): void {
    const held = [...this.entries.values()].filter((e) => e.session === session);
    if (held.length === 0) return;
    const idx = this.store.bump();
    const until = this.clock.now() + lockDelayMs;
    for (const e of held) {
      if (lockDelayMs > 0) this.lockDelays.set(e.key, until);
      if (behavior === 'delete') {
        this.entries.delete(e.key);
        this.tombstones.set(e.key, idx);
      } else {
        e.session = undefined;
        e.modifyIndex = idx;
      }
    }
    this.tableIndex = idx;
  }
}
