/**
 * The scaling benchmark's committed held-out trace: a synthetic, seeded request-count series written as CSV
 * (bench/traces/held-out-retail-ads.csv) so every run of `npm run bench:scaling` has a held-out row, with or
 * without the real traces in ../shared/traces. Generated and committed (session 4) before any change to the
 * simulator's model or the policy that session, and run only to check them, never to choose them.
 *
 * Shape, in replicas' worth of load at the 70 % target (56 req/s each): two days of retail traffic (2 at night,
 * a late-morning rise, a lunch peak of 14–18 and an evening peak of 20–26), ±12 % noise every 10 s, 9 TV-ad spikes
 * (×2–5 within 15–45 s, back to the base over 2–6 min), a 10-min partial outage upstream (load ×0.3) followed by a
 * retry storm (×2.2, decaying over 3 min), and one slow promotion ramp (×1 → ×1.8 over 40 min, held 1 h, then off).
 *
 *   node --import tsx bench/support/held-out-trace.ts > bench/traces/held-out-retail-ads.csv
 */
import { pathToFileURL } from 'node:url';

export const HELD_OUT_FILE = 'held-out-retail-ads.csv';
const REPLICA_RPS = 56;
const STEP_S = 10;
const DAY = 86_400;

/** Requests per 10-s bucket, seeded: the same every time. */
export function heldOutCounts(): number[] {
  let x = 31_415_926;
  const rnd = (): number => {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    return x / 2_147_483_648;
  };
  const duration = 2 * DAY;
  const peaks = [0, 1].map(() => ({ lunch: 14 + 4 * rnd(), evening: 20 + 6 * rnd() }));
  const ads = Array.from({ length: 9 }, () => ({
    at: Math.floor(rnd() * duration),
    rise: 15 + Math.floor(rnd() * 30),
    fall: 120 + Math.floor(rnd() * 240),
    mult: 2 + 3 * rnd(),
  }));
  const outage = { at: Math.floor(DAY * (1.3 + 0.4 * rnd())), len: 600 };
  const promo = { at: Math.floor(DAY * (0.4 + 0.2 * rnd())), ramp: 2_400, hold: 3_600 };
  const day = (h: number, p: { lunch: number; evening: number }): number => {
    const night = 2;
    if (h < 8) return night;
    if (h < 12) return night + (p.lunch - night) * ((h - 8) / 4);
    if (h < 14) return p.lunch;
    if (h < 17) return p.lunch - (p.lunch - 0.6 * p.lunch) * ((h - 14) / 3);
    if (h < 20) return 0.6 * p.lunch + (p.evening - 0.6 * p.lunch) * ((h - 17) / 3);
    if (h < 22) return p.evening;
    return p.evening - (p.evening - night) * ((h - 22) / 2);
  };
  const counts: number[] = [];
  for (let t = 0; t < duration; t += STEP_S) {
    let load = day((t % DAY) / 3_600, peaks[Math.floor(t / DAY)] as { lunch: number; evening: number });
    let mult = 1;
    for (const a of ads) {
      if (t < a.at || t >= a.at + a.rise + 4 * a.fall) continue;
      const since = t - a.at;
      const m =
        since < a.rise ? 1 + ((a.mult - 1) * since) / a.rise : 1 + (a.mult - 1) * Math.exp(-(since - a.rise) / a.fall);
      mult = Math.max(mult, m);
    }
    if (t >= promo.at && t < promo.at + promo.ramp + promo.hold) {
      load *= 1 + 0.8 * Math.min(1, (t - promo.at) / promo.ramp);
    }
    if (t >= outage.at && t < outage.at + outage.len) load *= 0.3;
    else if (t >= outage.at + outage.len && t < outage.at + outage.len + 900) {
      load *= 1 + 1.2 * Math.exp(-(t - outage.at - outage.len) / 180);
    }
    const noise = 1 + 0.24 * (rnd() - 0.5);
    counts.push(Math.round(REPLICA_RPS * Math.max(0.5, load) * mult * noise * STEP_S));
  }
  return counts;
}

/** The CSV text: a header, then `seconds,requests` every 10 s. */
export function heldOutCsv(): string {
  return ['second,requests', ...heldOutCounts().map((c, k) => `${k * STEP_S},${c}`), ''].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(heldOutCsv());
}
