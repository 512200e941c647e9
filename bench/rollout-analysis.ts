/**
 * `npm run bench:rollout-analysis`: how the rollout's error verdict (the exact test, packages/coordinator/src/rollout/
 * version-comparison.ts) trades false rollbacks for speed, against the two-proportion z-test it replaced (z ≥ 3
 * with 30 requests on each side and +5 points), in the same seeded simulation. A bake as the rollout feeds it: a
 * look every 500 ms (one report per replica), 4 old replicas, one new replica whose share grows as slow start's
 * (10 % → 100 % of an old one's over 30 s), 60 looks (the default 30 s bake). Measured per rule: rollbacks of
 * equal versions (error ratios 0, 1, 5, 20 %; 3 or 12 requests per old replica per look: 6 or 24 calls/s), and
 * for real regressions the share caught within the bake and the mean seconds to the verdict. No processes, no
 * clock: the statistics alone. Prints a table; the last line is one JSON object.
 */
import { DEFAULT_THRESHOLDS, VersionComparison } from '@shoal/coordinator/internal';

type Rule = (o: [number, number], n: [number, number]) => boolean;

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const exact: Rule = (o, n) => {
  const c = new VersionComparison(DEFAULT_THRESHOLDS);
  c.add('old', { requests: o[0], errors: o[1], latencyBuckets: [] });
  c.add('new', { requests: n[0], errors: n[1], latencyBuckets: [] });
  return c.verdict().worse;
};

/** The rule before: 30 requests each side, +5 points, one-sided pooled two-proportion z ≥ 3. */
const zTest: Rule = (o, n) => {
  if (o[0] < 30 || n[0] < 30) return false;
  const increase = n[1] / n[0] - o[1] / o[0];
  if (increase < 0.05) return false;
  const pooled = (o[1] + n[1]) / (o[0] + n[0]);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / o[0] + 1 / n[0]));
  return se > 0 ? increase / se >= 3 : true;
};

const BAKES = 300;
const rows: Record<string, unknown>[] = [];
for (const [name, rule] of [
  ['exact test (alpha 0.001)', exact],
  ['z-test (before)', zTest],
] as const) {
  const random = seeded(16);
  const binomial = (n: number, p: number) => {
    let k = 0;
    for (let i = 0; i < n; i++) if (random() < p) k++;
    return k;
  };
  /** The look (1..60) at which `rule` judged the new version worse, or undefined. */
  const bake = (pOld: number, pNew: number, perReplica: number): number | undefined => {
    const o: [number, number] = [0, 0];
    const n: [number, number] = [0, 0];
    for (let look = 1; look <= 60; look++) {
      const share = 0.1 + (0.9 * look) / 60;
      for (let r = 0; r < 4; r++) {
        const k = binomial(2 * perReplica, 0.5);
        o[0] += k;
        o[1] += binomial(k, pOld);
      }
      const k = binomial(Math.round(2 * perReplica * share), 0.5);
      n[0] += k;
      n[1] += binomial(k, pNew);
      if (rule(o, n)) return look;
    }
    return undefined;
  };
  let falseRollbacks = 0;
  let equalBakes = 0;
  for (const p of [0, 0.01, 0.05, 0.2]) {
    for (const perReplica of [3, 12]) {
      for (let i = 0; i < BAKES; i++, equalBakes++) if (bake(p, p, perReplica) !== undefined) falseRollbacks++;
    }
  }
  const caught = (pOld: number, pNew: number, perReplica: number) => {
    const looks = Array.from({ length: 100 }, () => bake(pOld, pNew, perReplica)).filter(
      (l): l is number => l !== undefined,
    );
    return {
      caughtPct: looks.length,
      meanS: looks.length ? Math.round((looks.reduce((a, b) => a + b, 0) / looks.length / 2) * 10) / 10 : null,
    };
  };
  rows.push({
    rule: name,
    falseRollbacks,
    equalBakes,
    halfFailing24: caught(0, 0.5, 3),
    halfFailing48: caught(0, 0.5, 6),
    tenPoints48: caught(0.01, 0.11, 6),
    tenPoints96: caught(0.01, 0.11, 12),
    twentyPoints48: caught(0.01, 0.21, 6),
  });
}

const fmt = (c: unknown) => {
  const x = c as { caughtPct: number; meanS: number | null };
  return `${x.caughtPct}% in ${x.meanS ?? '-'} s`.padStart(14);
};
console.log(
  'rule                      false rollbacks   half failing 24/s  half failing 48/s  +10 pts 48/s    +10 pts 96/s    +20 pts 48/s',
);
for (const r of rows) {
  console.log(
    `${String(r.rule).padEnd(25)} ${`${String(r.falseRollbacks)}/${String(r.equalBakes)}`.padStart(15)}   ${fmt(r.halfFailing24)}     ${fmt(r.halfFailing48)}     ${fmt(r.tenPoints48)}  ${fmt(r.tenPoints96)}  ${fmt(r.twentyPoints48)}`,
  );
}
console.log('(calls/s to the old version; caught = share of 100 bakes judged worse within 30 s, mean seconds to it)');
console.log(JSON.stringify({ bench: 'rollout-analysis', bakesPerCase: BAKES, rows }));
