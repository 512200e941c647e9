import assert from 'node:assert/strict';
import { ManualClock, silentLogger } from '@shoal/core';
import type { Directive, LoadReport } from '@shoal/protocol';
import { resolveAgentOptions, type CoordinatorOptions } from '@shoal/agent';
import {
  CoordinatorBusyError,
  ReportRejectedError,
  Reporter,
  createRecordingSignals,
  type ReportTransport,
  type TransportLink,
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

  function start(persistent: boolean, coordinator: Partial<CoordinatorOptions> = {}): Reporter {
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
      await clock.advanceAsync(199, 1); // second ceiling: 200
      assert.equal(transport.sent.length, 1);
      assert.deepEqual(
        transport.attempts.map((t) => t - 1_000_000),
        [0, 99, 298],
      );
      assert.equal(r.connected, true);
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

    it('opens the breaker after enough failures: no attempt reaches the transport until the reset timeout', async () => {
      const r = start(false, {
        maxAttempts: 1000,
        breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 5000 },
      });
      const states: string[] = [];
      r.onBreakerChange((s) => states.push(s));
      transport.fallback = new Error('down');
      r.enqueue(report(1));
      await clock.advanceAsync(1000, 10);
      assert.equal(r.breakerState, 'open');
      const attemptsWhenOpen = transport.attempts.length;
      assert.ok(attemptsWhenOpen >= 2 && attemptsWhenOpen <= 3, `attempts ${attemptsWhenOpen}`);
      await clock.advanceAsync(3900, 10);
      assert.equal(transport.attempts.length, attemptsWhenOpen, 'nothing while open');
      assert.equal(r.buffered, 1, 'refusals by the open breaker are not attempts: the report stays');
      transport.fallback = 'ok';
      await clock.advanceAsync(2200, 10);
      assert.deepEqual(states, ['open', 'halfOpen', 'closed']);
      assert.equal(transport.sent.length, 1);
      assert.equal(signals.breakerState.constructor.name.length > 0, true);
    });

    it('reopens the breaker when the half-open trial fails', async () => {
      const r = start(false, {
        maxAttempts: 1000,
        breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 5000 },
      });
      const states: string[] = [];
      r.onBreakerChange((s) => states.push(s));
      transport.fallback = new Error('down');
      r.enqueue(report(1));
      await clock.advanceAsync(1000, 10);
      const before = transport.attempts.length;
      await clock.advanceAsync(5100, 10);
      assert.equal(transport.attempts.length, before + 1, 'exactly one trial');
      assert.deepEqual(states, ['open', 'halfOpen', 'open']);
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

    it('a stream that dies at once without an answer does not reset the backoff; a healthy one does', async () => {
      start(true);
      await flush();
      transport.lose(false);
      await clock.advanceAsync(100); // 1st step: 100
      assert.equal(transport.connects.length, 2);
      transport.lose(false);
      await clock.advanceAsync(198);
      assert.equal(transport.connects.length, 2, '2nd step: 200');
      await clock.advanceAsync(1);
      assert.equal(transport.connects.length, 3);
      transport.lose(true);
      await clock.advanceAsync(100);
      assert.equal(transport.connects.length, 4, 'healthy: back to the 1st step');
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
