/**
 * `npm run bench:rollout`: a rolling deploy against a stop-all restart, in the same run, over real processes.
 * 4 replicas of a gRPC service (clients through consul:/// + shoal_round_robin) and 4 of an HTTP service (clients
 * through @shoal/http), ~100 calls/s in all, default rollout settings (maxSurge 1, maxUnavailable 0, bake 30 s,
 * slow start 30 s, analysis thresholds as documented). Measured:
 *   - v1 → v2 rollout: failed calls (goal 0), lowest replicas answering per second (goal ≥ 4: passing in Consul,
 *     sampled every 200 ms), time to all-v2;
 *   - a bad v3 (fails half its calls): calls failed during the attempt (goal < 2 %), time from its first ready
 *     replica to rollback complete (goal < 60 s);
 *   - baseline: v2 → v5 by a stop-all restart (today's behaviour without rollouts): the same figures.
 * Prints a table; the last line is one JSON object.
 */
import { availableParallelism } from 'node:os';
import { RolloutHarness, SERVICES, type ServiceName } from '../test/rollout/support/harness.js';

interface Row {
  scenario: string;
  calls: number;
  failed: number;
  failedPct: number;
  lowestPassing: number;
  lowestAnswering: number;
  seconds: number;
  note: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function lowest(rec: Record<ServiceName, number>): number {
  return Math.min(...SERVICES.map((s) => rec[s]));
}

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

function row(h: RolloutHarness, scenario: string, from: number, to: number, seconds: number, note: string): Row {
  const calls = h.window(from, to);
  const failed = calls.filter((c) => !c.ok).length;
  return {
    scenario,
    calls: calls.length,
    failed,
    failedPct: calls.length > 0 ? Math.round((failed / calls.length) * 10_000) / 100 : 0,
    lowestPassing: lowest(h.lowestPassing(from, to)),
    lowestAnswering: lowest(h.lowestAnsweringPerSecond(from, to)),
    seconds: Math.round(seconds * 10) / 10,
    note,
  };
}

async function main(): Promise<void> {
  const h = new RolloutHarness({ ratePerService: 50 });
  const rows: Row[] = [];
  let badVersionSplit: unknown;
  try {
    await h.start();
    for (const s of SERVICES)
      await waitUntil(`4 ${s} passing`, () => h.passingNow(s) === 4 && h.versions(s).length === 4, 60_000);
    h.startLoad();
    await sleep(5000);

    // 1. v1 → v2, rolled out.
    let from = Date.now();
    await h.deploy('v2');
    await h.waitForState('completed', 300_000);
    const allV2 = (Date.now() - from) / 1000;
    await sleep(2000);
    rows.push(row(h, 'rollout v1 → v2', from, Date.now(), allV2, 'time to all-v2'));

    // 2. A bad v3 (fails half its calls): rolled back by itself.
    from = Date.now();
    await h.deploy('v3', { FAIL_HALF: '1' });
    await h.waitForState('rolled-back', 300_000);
    const statuses = await Promise.all(SERVICES.map((s) => h.rolloutStatus(s)));
    const firstReady = Math.min(
      ...statuses.map(
        (st) =>
          (st.events as { atMs: number; message: string }[]).find(
            (e) => e.atMs >= from && /first .* replica ready/.test(e.message),
          )?.atMs ?? from,
      ),
    );
    const finished = Math.max(...statuses.map((st) => Number(st.finishedAtMs ?? Date.now())));
    for (const s of SERVICES) await waitUntil(`${s} back on v2`, () => h.versions(s).join() === 'v2,v2,v2,v2', 60_000);
    await sleep(2000);
    const causes = statuses.map((st) => st.rollbackCause).join('/');
    // Where the failed calls fell, per service: before the rollback decision, and after it (drain grace).
    const split = statuses.map((st, i) => {
      const service = SERVICES[i] as ServiceName;
      const events = st.events as { atMs: number; message: string }[];
      const decided = events.find((e) => e.atMs >= from && e.message.startsWith('rolling back'));
      const ready = events.find((e) => e.atMs >= from && /first .* replica ready/.test(e.message));
      const failed = h.window(from).filter((c) => c.service === service && !c.ok);
      const at = decided?.atMs ?? Infinity;
      return {
        service,
        firstReadyToDecisionS: decided && ready ? Math.round((decided.atMs - ready.atMs) / 100) / 10 : undefined,
        failedBeforeDecision: failed.filter((c) => c.atMs < at).length,
        failedAfterDecision: failed.filter((c) => c.atMs >= at).length,
        verdict: decided?.message.replace(/^rolling back [^:]*: /, ''),
      };
    });
    badVersionSplit = split;
    rows.push(
      row(
        h,
        'bad v3, rolled back',
        from,
        Date.now(),
        (finished - firstReady) / 1000,
        `first ready → rolled back (${causes})`,
      ),
    );

    // 3. Baseline: a stop-all restart to v5.
    from = Date.now();
    await h.deploy('v5', {}, true);
    await waitUntil(
      'all v5 passing',
      () => SERVICES.every((s) => h.passingNow(s) === 4 && h.versions(s).join() === 'v5,v5,v5,v5'),
      120_000,
    );
    const restartS = (Date.now() - from) / 1000;
    await sleep(2000);
    rows.push(row(h, 'stop-all restart v2 → v5', from, Date.now(), restartS, 'time to all-v5 (baseline)'));
    await h.stopLoad();
  } finally {
    await h.close();
  }

  const [roll, bad, restart] = rows as [Row, Row, Row];
  console.log('scenario                    calls  failed  failed%  lowest passing  lowest answering/s  seconds');
  for (const r of rows) {
    console.log(
      `${r.scenario.padEnd(27)} ${String(r.calls).padStart(5)}  ${String(r.failed).padStart(6)}  ${String(r.failedPct).padStart(7)}  ${String(r.lowestPassing).padStart(14)}  ${String(r.lowestAnswering).padStart(18)}  ${String(r.seconds).padStart(7)}  ${r.note}`,
    );
  }
  for (const s of (badVersionSplit ?? []) as Record<string, unknown>[]) {
    console.log(
      `bad v3 on ${String(s.service)}: judged ${String(s.firstReadyToDecisionS)} s after its first ready replica (${String(s.verdict)}); failed calls ${String(s.failedBeforeDecision)} before the decision, ${String(s.failedAfterDecision)} after`,
    );
  }
  const goals = {
    rolloutNoFailure: roll.failed === 0,
    rolloutNeverBelow4: roll.lowestPassing >= 4,
    badVersionFailedUnder2Pct: bad.failedPct < 2,
    rollbackUnder60s: bad.seconds < 60,
  };
  console.log(
    `\ngoals: ${Object.entries(goals)
      .map(([k, v]) => `${k} ${v ? 'met' : 'NOT met'}`)
      .join(', ')}`,
  );
  console.log(
    `the stop-all restart failed ${restart.failed} call(s) and went down to ${restart.lowestPassing} passing replica(s); the rollout failed ${roll.failed}`,
  );
  console.log(
    JSON.stringify({
      bench: 'rollout',
      node: process.version,
      cpus: availableParallelism(),
      callsPerSecond: 100,
      rows,
      goals,
      badVersionSplit,
    }),
  );
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
