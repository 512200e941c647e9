import { assertFiniteNumber } from './validate.js';

/** A source of uniform random numbers in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/**
 * The project's one seeded PRNG (mulberry32) with the draws simulations need. The same seed gives the same
 * sequence on every platform, so simulations and tests that pass a seed are reproducible.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    assertFiniteNumber('seed', seed);
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Poisson with mean `lambda` (Knuth below 30, a rounded normal above). */
  poisson(lambda: number): number {
    if (!(lambda > 0)) return 0;
    if (lambda < 30) {
      const limit = Math.exp(-lambda);
      let k = 0;
      let p = 1;
      do {
        k++;
        p *= this.next();
      } while (p > limit);
      return k - 1;
    }
    return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * this.normal()));
  }
}

/** A `Math.random`-like function drawing from a `SeededRandom` (for balancers, tests and benchmarks). */
export function createRandom(seed: number): RandomSource {
  const rng = new SeededRandom(seed);
  return () => rng.next();
}
