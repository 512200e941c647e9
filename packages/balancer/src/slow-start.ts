import type { SlowStartOptions } from './options.js';

/**
 * Envoy's slow-start weight multiplier for an endpoint `elapsedMs` into its ramp:
 * `max(minWeightPercent / 100, timeFactor^(1 / aggression))` with `timeFactor = max(elapsed, 1 s) / window`,
 * and 1 once the window has passed.
 */
export function slowStartFactor(config: Readonly<Required<SlowStartOptions>>, elapsedMs: number): number {
  if (elapsedMs >= config.windowMs) return 1;
  const timeFactor = Math.max(elapsedMs, 1000) / config.windowMs;
  const f = Math.max(config.minWeightPercent / 100, Math.pow(Math.min(1, timeFactor), 1 / config.aggression));
  return f >= 1 ? 1 : f;
}
