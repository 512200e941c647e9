import assert from 'node:assert/strict';
import { ManualClock, silentLogger } from '@shoal/core';
import type { Directive, LoadReport } from '@shoal/protocol';
import type { CoordinatorConnectionOptions } from '@shoal/agent';
import {
  CoordinatorBusyError,
  ReportRejectedError,
  Reporter,
  createRecordingSignals,
  type ReportTransport,
  type TransportLink,
  resolveAgentOptions,
} from '@shoal/agent/internal';

/**
 * The report loop on the injected clock, with a scripted transport: what goes out when, what is dropped, how the
 * breaker and the backoff pace the attempts. The two real transports are tested over the wire in
 * report-transport-grpc.test.ts and report-transport-http.test.ts.
 */

type Outcome = 'ok' | Error | (() => Promise<void>);

class ScriptedTransport implements ReportTransport {
  link!: TransportLink;
  open: boolean;
  readonly sent: Array<{ seq: number; droppedReports: number; at: number }> = [];
  attempts: number[] = [];
  connects: number[] = [];
  /** What the next sends / connects do; when empty, `fallback`. */
  outcomes: Outcome[] = [];
  fallback: Outcome = 'ok';
  closedWith: number | undefined;

  constructor(
    readonly persistent: boolean,
    private readonly clock: ManualClock,
  ) {
    this.open = !persistent;
  }

  private run(): Promise<void> {
    const outcome = this.outcomes.shift() ?? this.fallback;
    if (outcome === 'ok') return Promise.resolve();
    if (outcome instanceof Error) return Promise.reject(outcome);
    return outcome();
  }

  async connect(): Promise<void> {
    this.connects.push(this.clock.now());
    await this.run();
    this.open = true;
  }

  async send(report: LoadReport): Promise<void> {
    this.attempts.push(this.clock.now());
    if (this.persistent && !this.open) throw new Error('no stream');
    await this.run();
    this.sent.push({ seq: report.seq, droppedReports: report.droppedReports, at: this.clock.now() });
  }

  close(graceMs: number): Promise<void> {
    this.closedWith = graceMs;
    this.open = !this.persistent;
    return Promise.resolve();
  }

  /** A persistent connection ends. */
  lose(healthy = false): void {
    this.open = false;
    this.link.lost({ code: 14, details: 'gone' }, healthy);
  }
}

function report(seq: number): LoadReport {
  return {
    seq,
    intervalMs: 1000,
    ready: true,
    inFlight: 0,
    inFlightAvg: 0,
    requests: 0,
    errors: 0,
    latencyBuckets: [],
    eventLoopUtilization: 0,
    eventLoopDelayP99Ms: 0,
    cpu: 0,
    rssBytes: 0,
    heapUsedBytes: 0,
    custom: {},
    sentAtMs: 0,
    droppedReports: 0,
  } as LoadReport;
}

describe('Reporter (the report loop, on a ManualClock)', () => {
  let clock: ManualClock;
  let reporter: Reporter | undefined;
  let transport: ScriptedTransport;
  let directives: Directive[];
  let signals: ReturnType<typeof createRecordingSignals>;

  beforeEach(() => {
    clock = new ManualClock(1_000_000);
    directives = [];
    signals = createRecordingSignals();
  });

  afterEach(async () => {
    const closing = reporter?.close(undefined, 0);
    await clock.advanceAsync(10);
    await closing;
    reporter = undefined;
  });

  let warnings: Array<{ message: string; code: string }> = [];
  beforeEach(() => (warnings = []));

  function start(persistent: boolean, coordinator: Partial<CoordinatorConnectionOptions> = {}): Reporter {
    const options = resolveAgentOptions({
      service: 'orders',
      port: 8080,
      address: '127.0.0.1',
      coordinator: {
        url: persistent ? 'grpc://127.0.0.1:1' : 'http://127.0.0.1:1',
        backoff: { baseMs: 100, capMs: 1000 },
        ...coordinator,
      },
    }).coordinator!;
    transport = new ScriptedTransport(persistent, clock);
    reporter = new Reporter(
      options,
      // random() just under 1: every backoff wait is (almost) its ceiling, so the test knows when attempts happen
      {
        clock,
        logger: silentLogger,
        metrics: signals,
        onDirective: (d) => directives.push(d),
        random: () => 0.9999,
        identity: { service: 'orders', instanceId: 'orders-1' },
        warn: (message, o) => warnings.push({ message, code: o.code }),
      },
      (link) => {
        transport.link = link;
        return transport;
      },
    );
    reporter.start();
    return reporter;
  }

  const flush = () => clock.advanceAsync(0, 1);

  describe('per-request transport (HTTP/JSON)', () => {
    it('sends reports in order as they are queued', async () => {
      const r = start(false);
      for (let i = 1; i <= 3; i++) r.enqueue(report(i));
      await flush();
      assert.deepEqual(
        transport.sent.map((s) => s.seq),
        [1, 2, 3],
      );
      assert.equal(r.sent, 3);
      assert.equal(r.buffered, 0);
      assert.equal(r.connected, true);
    });

    it('keeps a failed report at the head and retries it after a full-jitter backoff on the clock', async () => {
      const r = start(false);
      transport.outcomes = [new Error('refused'), new Error('refused')];
      r.enqueue(report(1));
      await flush();
      assert.equal(transport.attempts.length, 1);
      assert.equal(r.connected, false);
      await clock.advanceAsync(98); // first ceiling: baseMs 100
      assert.equal(transport.attempts.length, 1, 'no retry before the backoff');
      await clock.advanceAsync(1, 1);
      assert.equal(transport.attempts.length, 2);
      // The exponent allows 200, but the coordinator was reachable 99 ms ago: half of that, never below baseMs.
      await clock.advanceAsync(99, 1);
      assert.equal(transport.sent.length, 1);
      assert.deepEqual(
        transport.attempts.map((t) => t - 1_000_000),
        [0, 99, 198],
      );
      assert.equal(r.connected, true);
    });

    it('waits grow with the outage: each at most half the time since the coordinator was last reachable, up to capMs', async () => {
      const r = start(false, { maxAttempts: 1000, breaker: { volumeThreshold: 1000 } });
      transport.fallback = new Error('down');
      r.enqueue(report(1));
      await clock.advanceAsync(3300, 1);
      // random() ≈ 1, so each wait is its ceiling: min(capMs 1000, 100 × 2^k, max(baseMs 100, outage / 2)).
      assert.deepEqual(
        transport.attempts.map((t) => t - 1_000_000),
        [0, 99, 198, 297, 445, 667, 1000, 1499, 2248, 3247],
      );
      // Reachable again: the next outage starts short.
      transport.fallback = 'ok';
      await clock.advanceAsync(1000, 1);
      assert.equal(r.sent, 1);
      transport.fallback = new Error('down');
      const before = transport.attempts.length;
      r.enqueue(report(2));
      await clock.advanceAsync(200, 1);
      assert.deepEqual(
        transport.attempts.slice(before).map((t) => t - transport.attempts[before]!),
        [0, 99, 198],
      );
    });

    it('waits at least Retry-After when the coordinator is busy, capped by backoff.capMs', async () => {
      const r = start(false);
      transport.outcomes = [new CoordinatorBusyError('busy', 700), new CoordinatorBusyError('busy', 60_000)];
      r.enqueue(report(1));
      await flush();
      await clock.advanceAsync(699);
      assert.equal(transport.attempts.length, 1, 'not before Retry-After');
      await clock.advanceAsync(1);
      assert.equal(transport.attempts.length, 2);
      await clock.advanceAsync(999);
      assert.equal(transport.attempts.length, 2, 'a Retry-After beyond capMs waits capMs');
      await clock.advanceAsync(1);
      assert.equal(transport.sent.length, 1);
    });

    it('drops a report refused as invalid at once, and one whose maxAttempts are spent', async () => {
      const r = start(false, { maxAttempts: 3, breaker: { volumeThreshold: 100 } });
      transport.outcomes = [new ReportRejectedError('400')];
      r.enqueue(report(1));
      await flush();
      assert.equal(r.dropped, 1);
      assert.equal(transport.attempts.length, 1);
      // A refusal is a misconfiguration: one warning, naming the instance and the coordinator.
      assert.deepEqual(warnings, [
        {
          code: 'SHOAL_AGENT_REPORTS_REFUSED',
          message:
            'Shoal agent "orders/orders-1": the coordinator at http://127.0.0.1:1 refused its reports (400); this ' +
            'instance is not counted in scaling decisions until this is fixed (check coordinator.token and the ' +
            'service name against the coordinator config)',
        },
      ]);
      transport.fallback = new Error('502');
      r.enqueue(report(2));
      await clock.advanceAsync(5000, 50);
      assert.equal(transport.attempts.length, 4, 'one for report 1, three for report 2');
      assert.equal(r.dropped, 2);
      assert.equal(r.buffered, 0);
      transport.fallback = 'ok';
      r.enqueue(report(3));
      await clock.advanceAsync(2000, 50);
      assert.deepEqual(transport.sent, [{ seq: 3, droppedReports: 2, at: transport.sent[0]!.at }]);
    });

    it('bounds the buffer: the oldest is dropped and the count travels once in the next delivered report', async () => {
      const r = start(false, { maxBufferedReports: 2, maxAttempts: 1000, breaker: { volumeThreshold: 1000 } });
      transport.fallback = new Error('down');
      for (let i = 1; i <= 5; i++) r.enqueue(report(i));
      await flush();
      assert.equal(r.buffered, 2);
      assert.equal(r.dropped, 3);
      transport.fallback = 'ok';
      await clock.advanceAsync(1000);
      assert.deepEqual(
        transport.sent.map((s) => [s.seq, s.droppedReports]),
        [
          [4, 3],
          [5, 0],
        ],
      );
    });

    it('opens the breaker after enough failures: no attempt reaches the transport until its one trial', async () => {
      const r = start(false, {
        maxAttempts: 1000,
        backoff: { baseMs: 100, capMs: 20_000 },
        breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 5000 },
      });
      const states: Array<[string, number]> = [];
      r.onBreakerChange((s) => states.push([s, clock.now() - 1_000_000]));
      transport.fallback = new Error('down');
      r.enqueue(report(1));
      await clock.advanceAsync(99, 1);
      assert.equal(r.breakerState, 'open');
      const attemptsWhenOpen = transport.attempts.length;
      assert.equal(attemptsWhenOpen, 2);
      // Open for one backoff wait: 0.1 s into the outage that is baseMs (100), not resetTimeoutMs.
      await clock.advanceAsync(98, 1);
      assert.equal(transport.attempts.length, attemptsWhenOpen, 'nothing while open');
      assert.equal(r.buffered, 1, 'refusals by the open breaker are not attempts: the report stays');
      transport.fallback = 'ok';
      await clock.advanceAsync(5, 1);
      assert.deepEqual(states, [
        ['open', 99],
        ['halfOpen', 198],
        ['closed', 198],
      ]);
      assert.equal(transport.sent.length, 1);
    });

    it('reopens the breaker when the half-open trial fails; a long outage keeps it open resetTimeoutMs at most', async () => {
      const r = start(false, {
        maxAttempts: 1000,
        backoff: { baseMs: 100, capMs: 20_000 },
        breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 5000 },
      });
      const opened: number[] = [];
      const trials: number[] = [];
      r.onBreakerChange((s) => (s === 'open' ? opened : trials).push(clock.now() - 1_000_000));
      transport.fallback = new Error('down');
      r.enqueue(report(1));
      await clock.advanceAsync(40_000, 10);
      // One trial per open period, each period longer as the outage grows, none beyond resetTimeoutMs.
      assert.equal(transport.attempts.length, 2 + trials.length);
      assert.equal(opened.length, trials.length + 1);
      const periods = trials.map((t, i) => t - opened[i]!);
      assert.ok(
        periods.every((p, i) => p <= 5000 && (i === 0 || p >= periods[i - 1]!)),
        periods.join(),
      );
      assert.ok(periods[0]! < 200 && periods.at(-1) === 5000, periods.join());
    });

    it('applies the directives a transport passes on and counts the invalid ones', async () => {
      start(false);
      transport.link.directive({ desiredReplicas: 3 });
      transport.link.invalidDirective(new Error('bad'));
      assert.deepEqual(directives, [{ desiredReplicas: 3 }]);
    });

    it('close() sends the last report once (no retry) within the grace period, then closes the transport', async () => {
      const r = start(false);
      transport.outcomes = [new Error('down')];
      const closing = r.close(report(9), 1000);
      await clock.advanceAsync(2000, 100);
      await closing;
      assert.equal(transport.attempts.length, 1);
      assert.equal(transport.sent.length, 0);
      assert.equal(transport.closedWith, 1000);
      r.enqueue(report(10));
      assert.equal(r.buffered, 1, 'nothing queued after close is sent');
      reporter = undefined;
    });

    it('close() gives up on a hung send when the grace period ends', async () => {
      const r = start(false);
      let abortSend: (() => void) | undefined;
      transport.outcomes = [() => new Promise<void>((_, reject) => (abortSend = () => reject(new Error('aborted'))))];
      const origClose = transport.close.bind(transport);
      transport.close = (graceMs) => {
        abortSend?.();
        return origClose(graceMs);
      };
      let closed = false;
      const closing = r.close(report(1), 500).then(() => (closed = true));
      await clock.advanceAsync(499);
      assert.equal(closed, false);
      await clock.advanceAsync(1);
      await closing;
      assert.equal(closed, true);
      reporter = undefined;
    });
  });

  describe('persistent transport (gRPC stream)', () => {
    it('connects at start, before any report, and writes reports on the open connection', async () => {
      const r = start(true);
      await flush();
      assert.equal(transport.connects.length, 1);
      assert.equal(r.connected, true);
      r.enqueue(report(1));
      r.enqueue(report(2));
      await flush();
      assert.deepEqual(
        transport.sent.map((s) => s.seq),
        [1, 2],
      );
    });

    it('reconnects after a backoff step when the stream is lost; reports wait in the buffer meanwhile', async () => {
      const r = start(true);
      const changes: boolean[] = [];
      r.onConnectionChange((c) => changes.push(c));
      await flush();
      assert.deepEqual(changes, [true]);
      transport.lose(false);
      r.enqueue(report(1));
      await flush();
      assert.equal(r.connected, false);
      assert.equal(r.buffered, 1);
      await clock.advanceAsync(98);
      assert.equal(transport.connects.length, 1, 'waits a backoff step');
      await clock.advanceAsync(2);
      assert.equal(transport.connects.length, 2);
      assert.deepEqual(
        transport.sent.map((s) => s.seq),
        [1],
      );
      assert.deepEqual(changes, [true, false, true]);
    });

    it('a stream that dies at once without an answer is no contact: the waits keep growing; a healthy one starts over', async () => {
      start(true, { backoff: { baseMs: 100, capMs: 5000 } });
      await flush();
      // A coordinator that accepts every stream and drops it at once, for 10 s: the agent's waits grow as from a
      // coordinator that is down (no tight loop).
      const connects = () => transport.connects.map((t) => t - 1_000_000);
      for (let t = 0; t < 10_000; t += 10) {
        if (transport.open) transport.lose(false);
        await clock.advanceAsync(10, 1);
      }
      const gaps = connects()
        .slice(1)
        .map((t, i) => t - connects()[i]!);
      assert.ok(gaps.length >= 5 && gaps.length <= 12, `connects at ${connects().join()}`);
      assert.ok(gaps.at(-1)! >= 2000, `the last wait ${gaps.at(-1)} ms, 10 s into the outage`);
      // A healthy stream (it answered, or lived long enough) is contact: the next outage starts at baseMs.
      await clock.advanceAsync(5000, 10);
      const before = transport.connects.length;
      transport.lose(true);
      await clock.advanceAsync(100, 1);
      assert.equal(transport.connects.length, before + 1, 'healthy: back to a baseMs wait');
    });

    it('does not drop reports for failed connects (maxAttempts is per request), only beyond the buffer', async () => {
      const r = start(true, { maxAttempts: 1, maxBufferedReports: 3, breaker: { volumeThreshold: 1000 } });
      await flush();
      transport.fallback = new Error('refused');
      transport.lose(false);
      for (let i = 1; i <= 3; i++) r.enqueue(report(i));
      await clock.advanceAsync(5000, 100);
      assert.ok(transport.connects.length >= 5, `connects ${transport.connects.map((t) => t - 1_000_000).join(',')}`);
      assert.equal(r.dropped, 0);
      assert.equal(r.buffered, 3);
    });

    it('close() does not open a connection just for the last report', async () => {
      const r = start(true);
      await flush();
      transport.fallback = new Error('refused');
      transport.lose(false);
      await flush();
      const connects = transport.connects.length;
      const closing = r.close(report(1), 1000);
      await clock.advanceAsync(10);
      await closing;
      assert.equal(transport.connects.length, connects);
      assert.equal(transport.sent.length, 0);
      reporter = undefined;
    });
  });
});
