/** Stage 1: the minimum in force (schedules) and an out-of-range current count. */
import { lastCronMatch } from '../cron.js';
import type { DecideContext, LimitReason } from '../decision.js';
import type { Policy } from '../policy.js';

/** minReplicas raised by every schedule active at `now` (capped at maxReplicas); a reason line per schedule. */
export function scheduleMinimum(policy: Policy, now: number, reasons: string[]): number {
  let min = policy.minReplicas;
  for (const s of policy.schedules) {
    if (s.minReplicas <= min) continue;
    const match = lastCronMatch(s.cron, now + s.leadMs, s.durationMs, s.timeZone ?? s.utcOffsetMinutes);
    if (match !== undefined) {
      min = s.minReplicas;
      reasons.push(`schedule ${s.name} (${s.cron.source}) active: minimum ${s.minReplicas} replicas`);
    }
  }
  return Math.min(min, policy.maxReplicas);
}

/** HPA moves an out-of-range count straight to the bound; undefined when the count is in range. */
export function clampToRange(ctx: DecideContext): { replicas: number; limit: LimitReason } | undefined {
  if (ctx.current > ctx.maxReplicas) {
    ctx.reasons.push(`current ${ctx.current} above maxReplicas ${ctx.maxReplicas}`);
    return { replicas: ctx.maxReplicas, limit: 'TooManyReplicas' };
  }
  if (ctx.current < ctx.minReplicas) {
    ctx.reasons.push(`current ${ctx.current} below minimum ${ctx.minReplicas}`);
    return { replicas: ctx.minReplicas, limit: 'TooFewReplicas' };
  }
  return undefined;
}
