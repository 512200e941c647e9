import {
  EventEmitter,
  assertInteger,
  assertPositiveInteger,
  assertString,
  componentLogger,
  errorFields,
  fullJitterDelay,
  realClock,
  resolveBackoffOptions,
  sleep,
  type Clock,
  type Event,
  type Logger,
  type TimerHandle,
} from '@shoal/core';
import type { ConsulKv } from '@shoal/consul';

/** What the leader writes into the lock key, so followers can find it. */
export interface LeaderInfo {
  id: string;
  grpcUrl?: string;
  httpUrl?: string;
}

export interface LeadershipChange {
  isLeader: boolean;
  leader: LeaderInfo | undefined;
}

export interface LeaderElectionOptions {
  kv: ConsulKv;
  key: string;
  self: LeaderInfo;
  /** Session TTL. Default 15000 (Consul's minimum is 10 s). */
  sessionTtlMs?: number;
  /** Consul lock-delay after the holder's session is invalidated. Default 1000. */
  lockDelayMs?: number;
  /** How often the lock key is read. Default 1000. */
  pollIntervalMs?: number;
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
}

/**
 * Leader election through a Consul session lock (Consul's documented leader-election recipe): create a session
 * with a TTL, `PUT kv/<key>?acquire=<session>`, renew the session every TTL/3. Followers read the key; once the
 * holder's session is gone (it closed, crashed, or lost Consul for a TTL) they acquire it, after Consul's lock
 * delay. A leader that cannot renew for 2/3 of the TTL steps down before Consul could give the lock to another.
 *
 * `close()` releases the lock and destroys the session, so another coordinator takes over at its next poll (an
 * explicit release starts no lock-delay). A coordinator restarted after a crash with the same `self.id` destroys
 * the session its previous run left (found by name) and takes the lock back at once instead of waiting for Consul to
 * expire it. The id must therefore be unique among the coordinators sharing the lock, and stable across restarts.
 */
export class LeaderElection {
  private readonly kv: ConsulKv;
  private readonly ttlMs: number;
  private readonly lockDelayMs: number;
  private readonly pollIntervalMs: number;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly changes = new EventEmitter<LeadershipChange>();
  private readonly abort = new AbortController();
  private session: string | undefined;
  private leading = false;
  private leaderInfo: LeaderInfo | undefined;
  private lastRenewOk = 0;
  private renewTimer: TimerHandle | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private closed = false;
  private reclaimPending = false;

  constructor(private readonly options: LeaderElectionOptions) {
    assertString('key', options.key);
    assertString('self.id', options.self?.id);
    this.kv = options.kv;
    this.ttlMs = options.sessionTtlMs ?? 15_000;
    assertInteger('sessionTtlMs', this.ttlMs, 10_000, 86_400_000);
    this.lockDelayMs = options.lockDelayMs ?? 1000;
    assertInteger('lockDelayMs', this.lockDelayMs, 0, 60_000);
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    assertPositiveInteger('pollIntervalMs', this.pollIntervalMs);
    this.log = componentLogger(options.logger, 'leader-election', { id: options.self.id });
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  get leader(): LeaderInfo | undefined {
    return this.leaderInfo;
  }

  get onChange(): Event<LeadershipChange> {
    return this.changes.event;
  }

  start(): void {
    this.loopDone = this.loop();
  }

  /** Steps down: releases the lock and destroys the session, so a follower takes over at once (after lock-delay). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.clock.clearTimeout(this.renewTimer);
    await this.loopDone;
    const session = this.session;
    this.session = undefined;
    this.setState(false, undefined);
    if (session) {
      await this.kv.set(this.options.key, JSON.stringify({}), { release: session }).catch(() => false);
      await this.kv.destroySession(session).catch(() => undefined);
    }
    this.changes.clear();
  }

  private setState(isLeader: boolean, leader: LeaderInfo | undefined): void {
    const changed =
      isLeader !== this.leading || JSON.stringify(leader ?? null) !== JSON.stringify(this.leaderInfo ?? null);
    this.leading = isLeader;
    this.leaderInfo = leader;
    if (changed) {
      this.log.info({ isLeader, leader: leader?.id }, isLeader ? 'became leader' : 'following');
      this.changes.emit({ isLeader, leader });
    }
  }

  private scheduleRenew(): void {
    this.clock.clearTimeout(this.renewTimer);
    this.renewTimer = this.clock.setTimeout(() => {
      const session = this.session;
      if (!session || this.closed) return;
      this.kv
        .renewSession(session)
        .then((alive) => {
          if (alive) {
            this.lastRenewOk = this.clock.now();
          } else if (this.session === session) {
            this.log.warn({ session }, 'session expired in Consul');
            this.session = undefined;
            if (this.leading) this.setState(false, undefined);
          }
        })
        .catch((error: unknown) => {
          this.log.warn(errorFields(error), 'session renew failed');
          if (this.leading && this.clock.now() - this.lastRenewOk > (this.ttlMs * 2) / 3) {
            this.log.warn('cannot renew the session for 2/3 of its TTL: stepping down');
            this.setState(false, undefined);
          }
        })
        .finally(() => {
          if (!this.closed) this.scheduleRenew();
        });
    }, this.ttlMs / 3);
    this.renewTimer.unref();
  }

  /**
   * A previous run of this coordinator (same id) that crashed left its session behind, holding the lock until Consul
   * expires it (up to 2 × TTL, then lock-delay). Sessions carry the id in their name, so the new run finds them,
   * releases the lock they hold (an explicit release starts no lock-delay) and destroys them. When the ACL token
   * cannot list sessions, it says so and waits for the expiry as before.
   */
  private async reclaimPreviousSessions(current: string): Promise<void> {
    const name = sessionName(this.options.self.id);
    let previous: string[];
    try {
      previous = (await this.kv.listSessions()).filter((s) => s.Name === name && s.ID !== current).map((s) => s.ID);
    } catch (error) {
      this.log.warn(
        errorFields(error),
        'cannot list Consul sessions; a lock left by a previous run of this coordinator frees only when its session expires',
      );
      return;
    }
    if (previous.length === 0) return;
    const holder = (await this.kv.get(this.options.key))?.Session;
    for (const id of previous) {
      if (holder === id) {
        await this.kv.set(this.options.key, JSON.stringify({}), { release: id });
        // Take it at once: a follower polling the key may see it free before this run's next poll, and either
        // outcome is a valid leader, but the run that held it is the one whose state is freshest.
        await this.kv.set(this.options.key, JSON.stringify(this.options.self), { acquire: current });
      }
      await this.kv.destroySession(id);
      this.log.info(
        { session: id, heldLock: holder === id },
        'destroyed the session a previous run of this coordinator left behind',
      );
    }
  }

  private async loop(): Promise<void> {
    const backoff = resolveBackoffOptions({ baseMs: 200, capMs: 5000, random: this.random });
    let failures = 0;
    while (!this.closed) {
      try {
        if (!this.session) {
          this.session = await this.kv.createSession({
            name: sessionName(this.options.self.id),
            ttlMs: this.ttlMs,
            lockDelayMs: this.lockDelayMs,
            behavior: 'release',
          });
          this.lastRenewOk = this.clock.now();
          this.scheduleRenew();
          this.reclaimPending = true;
        }
        if (this.reclaimPending) {
          // Retried with the loop's backoff until it worked (or found nothing to reclaim).
          await this.reclaimPreviousSessions(this.session);
          this.reclaimPending = false;
          if (this.closed) return;
        }
        const session = this.session;
        const item = await this.kv.get(this.options.key);
        if (this.closed) return;
        const holder = item?.Session;
        if (holder === session) {
          if (!this.leading && this.clock.now() - this.lastRenewOk <= (this.ttlMs * 2) / 3) {
            this.setState(true, this.options.self);
          }
        } else if (holder) {
          this.setState(false, parseLeader(item?.Value));
        } else {
          if (this.leading) this.setState(false, undefined);
          const acquired = await this.kv.set(this.options.key, JSON.stringify(this.options.self), { acquire: session });
          if (this.closed) return;
          if (acquired) this.setState(true, this.options.self);
          else if (this.leaderInfo) this.setState(false, undefined);
        }
        failures = 0;
        await sleep(this.clock, this.pollIntervalMs, this.abort.signal, true);
      } catch (error) {
        if (this.closed) return;
        this.log.warn(errorFields(error), 'leader election: Consul call failed');
        if (this.leading && this.clock.now() - this.lastRenewOk > (this.ttlMs * 2) / 3) this.setState(false, undefined);
        try {
          await sleep(this.clock, Math.max(50, fullJitterDelay(failures++, backoff)), this.abort.signal, true);
        } catch {
          return;
        }
      }
    }
  }
}

/** The name of a coordinator's session: how a restarted coordinator recognises the one its previous run left. */
export function sessionName(id: string): string {
  return `shoal-coordinator ${id}`;
}

function parseLeader(value: string | null | undefined): LeaderInfo | undefined {
  if (!value) return undefined;
  try {
    const v = JSON.parse(value) as Partial<LeaderInfo>;
    return typeof v.id === 'string'
      ? {
          id: v.id,
          ...(typeof v.grpcUrl === 'string' ? { grpcUrl: v.grpcUrl } : {}),
          ...(typeof v.httpUrl === 'string' ? { httpUrl: v.httpUrl } : {}),
        }
      : undefined;
  } catch {
    return undefined;
  }
}
