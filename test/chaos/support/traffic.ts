/**
 * Steady traffic for the chaos scenarios: an open loop of calls per client (gRPC, HTTP) at a fixed rate, every
 * outcome recorded with the phase it started in (`before` the fault, `during` it, `after` recovery), and the figures
 * each scenario prints and docs/reliability.md copies: calls, failed, p99 per phase, recovery time.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createClient, register } from '@shoal/grpc';
import { createDispatcher, type ShoalDispatcher } from '@shoal/http';
import { EchoClient, type EchoClientInstance } from '../../../packages/grpc/test/support/echo.js';

export type Phase = 'before' | 'during' | 'after';

export interface Sample {
  client: string;
  phase: Phase;
  /** performance.now() when the call started. */
  atMs: number;
  ms: number;
  ok: boolean;
  /** Who answered, or the error (with its causes). */
  detail: string;
  /** For a failed call: the replica it last tried (`host:port`), when the error names one. */
  target?: string;
}

/** A moment of the scenario (the fault, a restart, a scale step), to read failures against. */
export interface TrafficEvent {
  name: string;
  atMs: number;
}

/** An error's message with its causes and codes, and the replica address it names, if any. */
export function describeError(error: unknown): { detail: string; target?: string } {
  const parts: string[] = [];
  let target: string | undefined;
  let e: unknown = error;
  for (let depth = 0; e && depth < 4; depth++) {
    const err = e as { message?: unknown; code?: unknown; address?: unknown; port?: unknown; cause?: unknown };
    const message = typeof err.message === 'string' ? err.message : String(e);
    parts.push(typeof err.code === 'string' && !message.includes(err.code) ? `${err.code} ${message}` : message);
    const remote = /remote_addr=([\d.:[\]a-f]+)/.exec(message)?.[1];
    if (remote) target ??= remote;
    if (typeof err.address === 'string' && typeof err.port === 'number') target ??= `${err.address}:${err.port}`;
    const socket = (err as { socket?: { remoteAddress?: string; remotePort?: number } }).socket;
    if (socket?.remotePort) target ??= `${socket.remoteAddress}:${socket.remotePort}`;
    e = err.cause;
  }
  return { detail: parts.join(' <- ').replace(/\s+/g, ' ').slice(0, 400), ...(target ? { target } : {}) };
}

export interface Figures {
  calls: number;
  failed: number;
  p99BeforeMs: number;
  p99DuringMs: number;
  p99AfterMs: number;
  /** First errors, deduplicated (empty when nothing failed). */
  errors: string[];
}

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!);
}

export class Traffic {
  phase: Phase = 'before';
  readonly samples: Sample[] = [];
  readonly events: TrafficEvent[] = [];
  /** Set once the scenario printed its verdict. */
  printed = false;
  /** Stalls of the clients' own event loop (a timer 50 ms late or more): when, and how long. */
  readonly stalls: Array<{ atMs: number; ms: number }> = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private stallProbe: NodeJS.Timeout | undefined;

  /** `calls`: one function per client, resolving with who answered; `ratePerSecond` per client. */
  constructor(
    private readonly calls: Record<string, () => Promise<string>>,
    private readonly ratePerSecond = 40,
  ) {}

  /** The clients' own event-loop delay: a starved test process shows here, not as a fault of the system. */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });

  start(): void {
    this.loopDelay.enable();
    let last = performance.now();
    this.stallProbe = setInterval(() => {
      const now = performance.now();
      if (now - last - 50 >= 50) this.stalls.push({ atMs: last, ms: Math.round(now - last - 50) });
      last = now;
    }, 50);
    this.running = true;
    for (const [name, call] of Object.entries(this.calls)) this.loops.push(this.loop(name, call));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops.splice(0));
    clearInterval(this.stallProbe);
    this.loopDelay.disable();
  }

  /** Marks a moment of the scenario (printed with the failures around it). */
  event(name: string): number {
    const atMs = performance.now();
    this.events.push({ name, atMs });
    return atMs;
  }

  /**
   * Forgets every call so far (the warm-up: clients connecting, replicas' first calls on a loaded machine); the
   * figures count from here. Call it once the system is steady, before the fault.
   */
  reset(): void {
    this.samples.length = 0;
    this.events.length = 0;
    this.stalls.length = 0;
    this.loopDelay.reset();
    this.phase = 'before';
  }

  /** Waits `ms` while the traffic runs. */
  static pause(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  private async loop(client: string, call: () => Promise<string>): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    const started = performance.now();
    let sent = 0;
    while (this.running) {
      // Open loop: calls start on schedule whether or not earlier ones answered (a stall shows as latency).
      const due = Math.floor(((performance.now() - started) / 1000) * this.ratePerSecond);
      while (sent < due && this.running) {
        sent++;
        const phase = this.phase;
        const atMs = performance.now();
        const p = call().then(
          (detail) => {
            this.samples.push({ client, phase, atMs, ms: performance.now() - atMs, ok: true, detail });
          },
          (error: unknown) => {
            const ms = performance.now() - atMs;
            this.samples.push({ client, phase, atMs, ms, ok: false, ...describeError(error) });
          },
        );
        const tracked = p.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(inFlight);
  }

  /** Per client: calls, failed, p99 per phase, first errors. */
  figures(): Record<string, Figures> {
    const out: Record<string, Figures> = {};
    for (const client of Object.keys(this.calls)) {
      const mine = this.samples.filter((s) => s.client === client);
      const phase = (p: Phase) => mine.filter((s) => s.phase === p && s.ok).map((s) => s.ms);
      out[client] = {
        calls: mine.length,
        failed: mine.filter((s) => !s.ok).length,
        p99BeforeMs: p99(phase('before')),
        p99DuringMs: p99(phase('during')),
        p99AfterMs: p99(phase('after')),
        errors: [...new Set(mine.filter((s) => !s.ok).map((s) => `${s.phase}: ${s.detail}`))].slice(0, 5),
      };
    }
    return out;
  }

  /**
   * Recovery: from `sinceMs` (performance.now() of the fault) to the start of the last call that failed or took
   * longer than `slowMs`; 0 when no call was touched.
   */
  recoveryMs(sinceMs: number, slowMs: number): number {
    let last = sinceMs;
    for (const s of this.samples) if (s.atMs >= sinceMs && (!s.ok || s.ms > slowMs)) last = Math.max(last, s.atMs);
    return Math.round(last - sinceMs);
  }

  /**
   * Failed calls per whole second since `sinceMs`, as `second:count` pairs (only seconds with failures): where in a
   * scenario the calls failed, printed with the figures when some did.
   */
  failuresBySecond(sinceMs: number): string {
    const counts = new Map<number, number>();
    for (const s of this.samples) {
      if (s.ok || s.atMs < sinceMs) continue;
      const second = Math.floor((s.atMs - sinceMs) / 1000);
      counts.set(second, (counts.get(second) ?? 0) + 1);
    }
    return [...counts.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([second, n]) => `${second}:${n}`)
      .join(' ');
  }

  /**
   * The failures read against the scenario: every event (`event()` and `extra`, e.g. the coordinator's own log),
   * every failed call grouped by 100 ms, client, replica and error, and the clients' own stalls over 200 ms, in
   * time order, as offsets from `sinceMs`. `names` maps `host:port` to a replica's id. Printed when a call failed
   * (or always with SHOAL_CHAOS_TIMELINE=1), so a failing run says which instance failed which call, how and when.
   */
  timeline(sinceMs: number, extra: TrafficEvent[] = [], names: ReadonlyMap<string, string> = new Map()): string {
    const rows: Array<{ atMs: number; text: string }> = [];
    for (const e of [...this.events, ...extra]) rows.push({ atMs: e.atMs, text: `-- ${e.name}` });
    for (const s of this.stalls)
      if (s.ms >= 200) rows.push({ atMs: s.atMs, text: `   client event loop stalled ${s.ms} ms` });
    const groups = new Map<
      string,
      { atMs: number; n: number; maxMs: number; client: string; who: string; error: string }
    >();
    for (const s of this.samples) {
      if (s.ok) continue;
      const slot = Math.floor((s.atMs - sinceMs) / 100);
      const who = s.target ? (names.get(s.target) ?? s.target) : '?';
      const error = s.detail
        .replace(/\d+(\.\d+)?s\b/g, 'Ns')
        .replace(/\b\d{4,5}\b/g, 'N')
        .slice(0, 160);
      const key = `${slot}|${s.client}|${who}|${error}`;
      const g = groups.get(key);
      if (g) {
        g.n++;
        g.maxMs = Math.max(g.maxMs, s.ms);
      } else groups.set(key, { atMs: s.atMs, n: 1, maxMs: s.ms, client: s.client, who, error });
    }
    for (const g of groups.values()) {
      const text = `   ${g.client} x${g.n} failed on ${g.who} (up to ${Math.round(g.maxMs)} ms): ${g.error}`;
      rows.push({ atMs: g.atMs, text });
    }
    return rows
      .sort((a, b) => a.atMs - b.atMs)
      .map((r) => `      ${((r.atMs - sinceMs) / 1000).toFixed(2).padStart(7)} s ${r.text}`)
      .join('\n');
  }

  /** Who answered calls that started in [fromMs, toMs), per client. */
  answeredBy(client: string, fromMs = 0, toMs = Infinity): Set<string> {
    return new Set(
      this.samples.filter((s) => s.client === client && s.ok && s.atMs >= fromMs && s.atMs < toMs).map((s) => s.detail),
    );
  }

  /** Prints the scenario's figures on one line (copied into docs/reliability.md). */
  print(scenario: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const result = {
      ...this.figures(),
      ...extra,
      clientEventLoopDelayMaxMs: Math.round(this.loopDelay.max / 1e6),
    };
    console.log(`      ${scenario} figures: ${JSON.stringify(result)}`);
    return result;
  }
}

/** The idempotent echo method every chaos replica serves (packages/grpc/test/support/echo.ts). */
export const ECHO_METHODS = [{ service: 'shoal.test.Echo' }];

/**
 * The clients with the documented settings for a hung or dying replica (docs/choosing-a-strategy.md, "A replica
 * hangs or dies"): gRPC through `consul:///<grpcService>` with hedging and a per-try timeout on the idempotent
 * method, HTTP through `@shoal/http` with retries, a per-try timeout and hedging. `call()`s resolve with who answered
 * (the gRPC reply's `server`, the HTTP `x-instance` header or body).
 */
export interface DocumentedClients {
  grpc: () => Promise<string>;
  http: () => Promise<string>;
  close(): Promise<void>;
}

export function documentedClients(options: {
  consul: { url: string; token?: string };
  grpcService: string;
  httpService: string;
  /** Client slow start: `false` to turn it off. Default: the balancers' (new replicas ramp in over 30 s). */
  slowStartMs?: number | false;
  deadlineMs?: number;
  /** The clients' own warnings and notices (ejections, watcher news), as timed events. */
  onLog?: (event: TrafficEvent) => void;
}): DocumentedClients {
  const onLog = options.onLog;
  const logger = onLog
    ? pino(
        { level: 'info' },
        {
          write(line: string) {
            try {
              const e = JSON.parse(line) as Record<string, unknown>;
              const fields = Object.entries(e)
                .filter(([k]) => !['level', 'time', 'pid', 'hostname', 'msg'].includes(k))
                .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
              onLog({ name: `client: ${String(e.msg)} ${fields.join(' ')}`.slice(0, 240), atMs: performance.now() });
            } catch {
              // not a log line
            }
          },
        },
      )
    : undefined;
  const deadlineMs = options.deadlineMs ?? 10_000;
  const slowStart =
    options.slowStartMs === false ? false : options.slowStartMs ? { windowMs: options.slowStartMs } : undefined;
  register({ consul: options.consul, registry: new Registry(), ...(logger ? { logger } : {}) });
  const client: EchoClientInstance = createClient(EchoClient, `consul:///${options.grpcService}`, {
    policyConfig: slowStart === undefined ? {} : { slowStart },
    hedging: { methods: ECHO_METHODS, delayMs: 200, maxAttempts: 3 },
    perTryTimeout: { methods: ECHO_METHODS, timeoutMs: 1000 },
  });
  const dispatcher: ShoalDispatcher = createDispatcher({
    consul: options.consul,
    ...(slowStart === undefined ? {} : { slowStart }),
    retry: { maxAttempts: 3, perTryTimeoutMs: 1000 },
    hedge: { delayMs: 200 },
    registry: new Registry(),
    ...(logger ? { logger } : {}),
  });
  return {
    grpc: () =>
      new Promise<string>((resolve, reject) =>
        (client as unknown as Record<string, (...a: unknown[]) => void>).echo!(
          { msg: 'chaos' },
          new grpc.Metadata(),
          { deadline: Date.now() + deadlineMs },
          (err: grpc.ServiceError | null, res: { server: string }) => (err ? reject(err) : resolve(res.server)),
        ),
      ),
    http: async () => {
      const res = await fetch(`http://${options.httpService}.service.consul/`, {
        dispatcher,
        signal: AbortSignal.timeout(deadlineMs),
      } as unknown as RequestInit);
      const body = await res.text();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${body.slice(0, 100)}`);
      return res.headers.get('x-instance') ?? body;
    },
    close: async () => {
      client.close();
      await dispatcher.close();
    },
  };
}
