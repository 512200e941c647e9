import { createRequire } from 'node:module';
import type * as grpc from '@grpc/grpc-js';
import type CircuitBreaker from 'opossum';
import {
  Backoff,
  EventEmitter,
  ProtocolError,
  TimeoutError,
  errorFields,
  sleep,
  type Clock,
  type Event,
} from '@shoal/core';
import {
  COORDINATOR_CHANNEL_OPTIONS,
  AUTHORIZATION_KEY,
  bearer,
  loadCoordinatorService,
  validateDirective,
  type CoordinatorClient,
  type Directive,
  type Hello,
  type LoadReport,
  type WireCoordinatorMessage,
} from '@shoal/protocol';
import type { ResolvedCoordinatorOptions } from './agent-options.js';
import {
  applyDirective,
  breakerStateOf,
  createReportBreaker,
  ignoreInvalidDirective,
  ReportBuffer,
  type BreakerState,
  type Reporter,
  type ReporterDeps,
} from './reporter.js';

type ReportStream = grpc.ClientDuplexStream<{ hello: Hello } | { report: LoadReport }, WireCoordinatorMessage>;

type GrpcModule = typeof grpc;

/** grpc-js, loaded when the agent first reports over gRPC (an HTTP/JSON agent never loads it). */
function loadGrpc(): GrpcModule {
  return createRequire(import.meta.url)('@grpc/grpc-js') as GrpcModule;
}

function pem(value: string | Buffer | undefined): Buffer | null {
  return value === undefined ? null : Buffer.isBuffer(value) ? value : Buffer.from(value);
}

/** A stream that lived this long counts as healthy for the backoff even if the coordinator never wrote. */
const STABLE_STREAM_MS = 5000;

/**
 * Keeps one long-lived `Connect` stream to the coordinator and writes load reports on it.
 *
 * - Connecting: open the stream, send the Hello, and count it established once the coordinator answered or the
 *   channel is READY after `confirmAfterMs` with no error; `connectTimeoutMs` bounds the whole attempt.
 * - Failures (down, slow, refused, garbage) go through an opossum circuit breaker; between attempts the loop waits
 *   a full-jitter exponential backoff. Nothing here ever throws into the caller or blocks the event loop.
 * - Reports wait in a bounded buffer while there is no stream; when full, the oldest is dropped and counted (and
 *   the count travels in the next report's `droppedReports`).
 * - Directives are validated; an invalid one is logged and ignored, the stream stays up.
 */
export class CoordinatorReporter implements Reporter {
  private readonly grpc: GrpcModule;
  private readonly client: CoordinatorClient;
  private readonly breaker: CircuitBreaker<[], ReportStream>;
  private readonly backoff: Backoff;
  private readonly abort = new AbortController();
  private readonly connectionEmitter = new EventEmitter<boolean>();
  private readonly breakerEmitter = new EventEmitter<BreakerState>();
  private readonly buffer: ReportBuffer;
  /** Streams whose status already arrived (a stream can end between its acceptance and its adoption). */
  private readonly endedStreams = new WeakSet<ReportStream>();
  private stream: ReportStream | undefined;
  private attempt: ReportStream | undefined;
  private streamEnded: (() => void) | undefined;
  private writeBlocked = false;
  private closed = false;
  private loop: Promise<void> | undefined;
  private failuresInARow = 0;
  /** The current stream carried at least one message from the coordinator. */
  private answered = false;

  /** Fires true when the stream is established, false when it is lost. */
  readonly onConnectionChange: Event<boolean> = this.connectionEmitter.event;
  /** Fires when the circuit breaker changes state. */
  readonly onBreakerChange: Event<BreakerState> = this.breakerEmitter.event;

  constructor(
    private readonly options: ResolvedCoordinatorOptions,
    private readonly hello: Hello,
    private readonly deps: ReporterDeps,
  ) {
    this.buffer = new ReportBuffer(options.maxBufferedReports, deps.metrics);
    const grpc = (this.grpc = loadGrpc());
    const { CoordinatorClient } = loadCoordinatorService(grpc);
    const credentials = options.secure
      ? grpc.credentials.createSsl(pem(options.tls.ca), pem(options.tls.key), pem(options.tls.cert))
      : grpc.credentials.createInsecure();
    const channelOptions: grpc.ChannelOptions = {
      ...COORDINATOR_CHANNEL_OPTIONS,
      'grpc.initial_reconnect_backoff_ms': options.backoff.baseMs,
      'grpc.max_reconnect_backoff_ms': options.backoff.capMs,
      'grpc.keepalive_time_ms': options.keepaliveMs,
      'grpc.keepalive_timeout_ms': Math.min(options.keepaliveMs, 20_000),
    };
    if (options.tls.serverName !== undefined) channelOptions['grpc.ssl_target_name_override'] = options.tls.serverName;
    this.client = new CoordinatorClient(options.target, credentials, channelOptions);
    this.backoff = new Backoff({ baseMs: options.backoff.baseMs, capMs: options.backoff.capMs });
    // connectOnce bounds itself with connectTimeoutMs on the injected clock.
    this.breaker = createReportBreaker(() => this.connectOnce(), options, deps, this.breakerEmitter);
  }

  get connected(): boolean {
    return this.stream !== undefined;
  }

  get breakerState(): BreakerState {
    return breakerStateOf(this.breaker as never);
  }

  get buffered(): number {
    return this.buffer.length;
  }

  /** Reports written to a stream since start. */
  get sent(): number {
    return this.buffer.sent;
  }

  /** Reports dropped from the buffer since start. */
  get dropped(): number {
    return this.buffer.dropped;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Queues a report (dropping the oldest when the buffer is full) and writes what it can. Never throws. */
  enqueue(report: LoadReport): void {
    if (this.closed) return;
    this.buffer.push(report);
    this.flush();
  }

  /**
   * Stops reporting: sends `finalReport` (if given) on an established stream, half-closes it and waits up to
   * `graceMs` for the coordinator to end it, then releases the channel and the breaker.
   */
  async close(finalReport?: LoadReport, graceMs = 1000): Promise<void> {
    if (this.closed) return;
    if (finalReport !== undefined) this.enqueue(finalReport);
    this.closed = true;
    this.abort.abort();
    this.attempt?.cancel();
    const stream = this.stream;
    if (stream !== undefined) {
      const ended = new Promise<void>((resolve) => {
        const previous = this.streamEnded;
        this.streamEnded = () => {
          previous?.();
          resolve();
        };
      });
      stream.end();
      const timer = this.deps.clock.setTimeout(() => stream.cancel(), graceMs);
      timer.unref();
      await ended;
      this.deps.clock.clearTimeout(timer);
    }
    await this.loop;
    this.breaker.shutdown();
    this.client.close();
    this.connectionEmitter.clear();
    this.breakerEmitter.clear();
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        const stream = await this.breaker.fire();
        const adoptedAt = this.deps.clock.monotonic();
        this.answered = false;
        const ended = this.adopt(stream);
        this.failuresInARow = 0;
        await ended;
        // A stream that died at once without a word from the coordinator does not earn a fresh backoff, so a
        // coordinator that accepts and then drops every stream cannot pull the agent into a tight loop.
        if (this.answered || this.deps.clock.monotonic() - adoptedAt >= STABLE_STREAM_MS) this.backoff.reset();
      } catch (error) {
        if (this.closed) break;
        this.failuresInARow++;
        this.deps.metrics.connectFailures.inc();
        // The first failure in a row is worth a warning; the rest (often the open breaker) only a debug line.
        this.deps.logger[this.failuresInARow === 1 ? 'warn' : 'debug'](
          { ...errorFields(error), coordinator: this.options.url, failures: this.failuresInARow },
          'cannot reach the coordinator; reports are buffered',
        );
      }
      if (this.closed) break;
      const delay = this.backoff.next() ?? this.options.backoff.capMs;
      try {
        await sleep(this.deps.clock, delay, this.abort.signal, true);
      } catch {
        break;
      }
    }
  }

  /** One attempt: resolves with an established stream, rejects when it fails or times out. */
  private connectOnce(): Promise<ReportStream> {
    const { clock } = this.deps;
    const grpc = this.grpc;
    const metadata = new grpc.Metadata();
    if (this.options.token !== undefined) metadata.set(AUTHORIZATION_KEY, bearer(this.options.token));
    const stream = this.client.connect(metadata) as unknown as ReportStream;
    this.attempt = stream;
    return new Promise<ReportStream>((resolve, reject) => {
      let settled = false;
      let confirmTimer: ReturnType<Clock['setTimeout']> | undefined;
      const settle = (error?: Error) => {
        if (settled) return;
        settled = true;
        this.attempt = undefined;
        clock.clearTimeout(deadline);
        clock.clearTimeout(confirmTimer);
        if (error === undefined) {
          resolve(stream);
        } else {
          stream.cancel();
          reject(error);
        }
      };
      const deadline = clock.setTimeout(() => {
        settle(
          new TimeoutError(
            `coordinator ${this.options.url} did not accept the report stream within ${this.options.connectTimeoutMs} ms`,
          ),
        );
      }, this.options.connectTimeoutMs);
      deadline.unref();
      const confirmIfReady = () => {
        const state = this.client.getChannel().getConnectivityState(false);
        if (state === grpc.connectivityState.READY) settle();
        else {
          confirmTimer = clock.setTimeout(confirmIfReady, 50);
          confirmTimer.unref();
        }
      };
      confirmTimer = clock.setTimeout(confirmIfReady, this.options.confirmAfterMs);
      confirmTimer.unref();
      let lastError: Error | undefined;
      // Response headers or a first message prove the coordinator accepted the stream.
      stream.on('metadata', () => settle());
      stream.on('data', (message: WireCoordinatorMessage) => {
        settle();
        this.answered = true;
        this.handleMessage(message);
      });
      stream.on('error', (error: Error) => {
        lastError = error;
      });
      stream.on('status', (status: grpc.StatusObject) => {
        this.endedStreams.add(stream);
        if (!settled) {
          settle(
            lastError ??
              new ProtocolError(`coordinator ended the report stream before accepting it (status ${status.code})`),
          );
        } else {
          this.lose(stream, lastError ?? status);
        }
      });
      // A write on a stream that fails later reports through 'error'/'status', never by throwing here.
      stream.write({ hello: this.hello });
    });
  }

  /** Makes `stream` the current one; returns a promise that settles when it ends. */
  private adopt(stream: ReportStream): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.closed || this.endedStreams.has(stream)) {
        // close() raced with the attempt, or the stream already ended between acceptance and now.
        stream.cancel();
        resolve();
        return;
      }
      this.streamEnded = resolve;
      this.stream = stream;
      this.writeBlocked = false;
      this.deps.metrics.connected.set(1);
      this.deps.logger.info({ coordinator: this.options.url }, 'report stream to the coordinator established');
      this.connectionEmitter.emit(true);
      this.flush();
    });
  }

  private lose(stream: ReportStream, reason: Error | grpc.StatusObject): void {
    // Late news about a stream that is not (or not yet) the current one: adopt() checks endedStreams.
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.deps.metrics.connected.set(0);
    if (!this.closed) {
      this.deps.logger.warn(
        {
          coordinator: this.options.url,
          code: (reason as { code?: number }).code,
          details: (reason as { details?: string }).details,
        },
        'report stream to the coordinator ended; reconnecting',
      );
    }
    this.connectionEmitter.emit(false);
    const ended = this.streamEnded;
    this.streamEnded = undefined;
    ended?.();
  }

  private flush(): void {
    const stream = this.stream;
    if (stream === undefined || this.writeBlocked) return;
    while (this.buffer.length > 0) {
      const report = this.buffer.shiftSent() as LoadReport;
      if (this.buffer.pendingDropped > 0) {
        report.droppedReports += this.buffer.pendingDropped;
        this.buffer.pendingDropped = 0;
      }
      let flowing: boolean;
      try {
        flowing = stream.write({ report });
      } catch (error) {
        // The stream died under us; its 'status' handler reconnects. This report is lost (counted as sent).
        this.deps.logger.debug({ ...errorFields(error) }, 'write on a closing report stream failed');
        return;
      }
      if (!flowing) {
        this.writeBlocked = true;
        stream.once('drain', () => {
          this.writeBlocked = false;
          this.flush();
        });
        return;
      }
    }
  }

  private handleMessage(message: WireCoordinatorMessage): void {
    let directive: Directive;
    try {
      directive = validateDirective(message?.directive);
    } catch (error) {
      ignoreInvalidDirective(this.deps, error);
      return;
    }
    applyDirective(this.deps, directive);
  }
}
