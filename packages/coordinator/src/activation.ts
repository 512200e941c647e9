import type { Observation } from '@shoal/policy';

/** A target that can wake a service from zero: its service-level or external metric, and KEDA's threshold. */
export interface ActivationTarget {
  metric: string;
  /** Active while the service's value of `metric` is above this (KEDA's `activationThreshold`). */
  activationValue: number;
}

/** Calls clients report waiting for the service (client wake, issue #20). */
export interface WakeInput {
  /** Waiting calls over every client, within the demand TTL. */
  waiting: number;
  /** Waiting calls one replica takes (`wake.callsPerReplica` or the policy's inFlight target). */
  callsPerReplica: number;
  maxReplicas: number;
}

export interface ScaleToZeroAdjustment {
  desired: number;
  /** Why the count was changed (or held), for the decision log; undefined when the policy's count stands. */
  reason?: string;
}

/**
 * Scale to zero and back for a service with `minReplicas: 0`, with KEDA's activation semantics: the service is
 * *active* while any activation target's service value (a service-level or external metric) is above its
 * `activationValue`. At 0 replicas it stays at 0 until it is active, then takes the policy's count (sized to the
 * metric: `ceil(value / target)`, at least 1). Running, it goes to 0 only after it has been inactive for
 * `idleCooldownMs` (KEDA's `cooldownPeriod`); until then the policy's 0 is held at 1. A missing value is never read
 * as idle: at 0 nothing wakes it, running it never goes to 0.
 *
 * Calls waiting at clients (`wake`) are activity too: they wake the service to `ceil(waiting / callsPerReplica)`
 * replicas (at least 1, at most maxReplicas) — sized to the burst, not always 1 — and, while replicas start and the
 * calls still wait, keep at least that many.
 */
export class ScaleToZeroGate {
  private lastActiveAt: number;

  constructor(
    private readonly targets: readonly ActivationTarget[],
    private readonly idleCooldownMs: number,
    now: number,
  ) {
    // A coordinator that just started has seen no idleness yet: it waits one cooldown before removing the last one.
    this.lastActiveAt = now;
  }

  adjust(observation: Observation, desired: number, wake?: WakeInput): ScaleToZeroAdjustment {
    const now = observation.now;
    const current = observation.currentReplicas;
    if (wake && wake.waiting > 0) {
      this.lastActiveAt = now;
      const sized = Math.min(wake.maxReplicas, Math.max(1, Math.ceil(wake.waiting / wake.callsPerReplica)));
      const n = Math.max(desired, sized);
      const why = `${wake.waiting} calls waiting at clients, ${wake.callsPerReplica} per replica`;
      if (current === 0) return { desired: n, reason: `woken from zero by client calls (${why}) → ${n}` };
      if (n > desired) return { desired: n, reason: `holding ${n} replicas while ${why}` };
      return { desired };
    }
    let active = false;
    let missing: string | undefined;
    const shown: string[] = [];
    for (const t of this.targets) {
      const v = observation.metrics?.[t.metric];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        missing ??= t.metric;
        continue;
      }
      shown.push(`${t.metric} ${v} ${v > t.activationValue ? '>' : '≤'} activation ${t.activationValue}`);
      if (v > t.activationValue) active = true;
    }
    if (active || missing !== undefined) this.lastActiveAt = now;
    if (current === 0) {
      if (active) {
        const n = Math.max(1, desired);
        return { desired: n, reason: `activated from zero (${shown.join(', ')}) → ${n}` };
      }
      if (desired > 0 || missing !== undefined) {
        return {
          desired: 0,
          reason: missing
            ? `at zero: ${missing} has no value, nothing to activate on`
            : `at zero: not active (${shown.join(', ')})`,
        };
      }
      return { desired: 0 };
    }
    if (desired > 0) return { desired };
    const idleMs = now - this.lastActiveAt;
    if (idleMs >= this.idleCooldownMs) {
      return {
        desired: 0,
        reason: `idle for ${Math.round(idleMs / 1000)} s (${shown.join(', ') || 'no calls waiting'}): scaling to zero`,
      };
    }
    return {
      desired: 1,
      reason: `holding 1 replica: idle ${Math.round(idleMs / 1000)} s of idleCooldownMs ${Math.round(this.idleCooldownMs / 1000)} s`,
    };
  }
}
