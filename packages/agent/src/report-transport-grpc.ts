import { createRequire } from 'node:module';
import type * as grpc from '@grpc/grpc-js';
import { ProtocolError, TimeoutError, type TimerHandle } from '@shoal/core';
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
import type { ReportTransport, TransportLink } from './reporter.js';

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
 * The gRPC transport: one long-lived `Connect` stream. `connect()` opens it, sends the Hello, and counts it
 * established once the coordinator answered (headers or a message) or the channel is READY after `confirmAfterMs`
 * with no error; `connectTimeoutMs` bounds the attempt. `send()` writes a report (waiting for the stream to drain
 * first when HTTP/2 flow control pushed back). Directives arrive on the stream at any time and are validated here.
 */
export class GrpcReportTransport implements ReportTransport {
  readonly persistent = true;
  private readonly grpc: GrpcModule;
  private readonly newClient: () => CoordinatorClient;
  private client: CoordinatorClient;
  private stream: ReportStream | undefined;
  private attemptStream: ReportStream | undefined;
  private adoptedAt = 0;
  /** The current stream carried at least one message from the coordinator. */
  private answered = false;
  /** Resolves when the current stream can take writes again (after 'drain') or ended. */
  private writable: Promise<void> | undefined;
  private streamEnded: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly options: ResolvedCoordinatorOptions,
    private readonly hello: Hello,
    private readonly link: TransportLink,
  ) {
    const grpc = (this.grpc = loadGrpc());
    const { CoordinatorClient } = loadCoordinatorService(grpc);
    const credentials = options.secure
      ? grpc.credentials.createSsl(pem(options.tls.ca), pem(options.tls.key), pem(options.tls.cert))
      : grpc.credentials.createInsecure();
    const channelOptions: grpc.ChannelOptions = {
      ...COORDINATOR_CHANNEL_OPTIONS,
      // A channel of its own (see connect()): never a subchannel, and its backoff, shared with another channel.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.initial_reconnect_backoff_ms': options.backoff.baseMs,
      'grpc.max_reconnect_backoff_ms': options.backoff.capMs,
      'grpc.keepalive_time_ms': options.keepaliveMs,
      'grpc.keepalive_timeout_ms': Math.min(options.keepaliveMs, 20_000),
    };
    if (options.tls.serverName !== undefined) channelOptions['grpc.ssl_target_name_override'] = options.tls.serverName;
    this.newClient = () => new CoordinatorClient(options.target, credentials, channelOptions);
    this.client = this.newClient();
  }

  get open(): boolean {
    return this.stream !== undefined;
  }

  connect(): Promise<void> {
    const { clock } = this.link;
    const grpc = this.grpc;
    // A channel whose last connection failed waits out grpc-js's own reconnect backoff (growing to capMs) and fails
    // every stream meanwhile: a second, hidden schedule under the report loop's. The loop alone paces attempts, so
    // such a channel is replaced by a fresh one that dials at once.
    if (this.client.getChannel().getConnectivityState(false) === grpc.connectivityState.TRANSIENT_FAILURE) {
      this.client.close();
      this.client = this.newClient();
    }
    const metadata = new grpc.Metadata();
    if (this.options.token !== undefined) metadata.set(AUTHORIZATION_KEY, bearer(this.options.token));
    const stream = this.client.connect(metadata) as unknown as ReportStream;
    this.attemptStream = stream;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let ended = false;
      let confirmTimer: TimerHandle | undefined;
      let lastError: Error | undefined;
      const settle = (error?: Error) => {
        if (settled) return;
        settled = true;
        if (this.attemptStream === stream) this.attemptStream = undefined;
        clock.clearTimeout(deadline);
        clock.clearTimeout(confirmTimer);
        if (error === undefined && !this.closed && !ended) {
          this.adopt(stream);
          resolve();
        } else {
          stream.cancel();
          reject(error ?? new ProtocolError('the report stream ended while it was being accepted'));
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
      // Response headers or a first message prove the coordinator accepted the stream.
      stream.on('metadata', () => settle());
      stream.on('data', (message: WireCoordinatorMessage) => {
        settle();
        if (this.stream === stream) this.answered = true;
        this.handleMessage(message);
      });
      stream.on('error', (error: Error) => {
        lastError = error;
      });
      stream.on('status', (status: grpc.StatusObject) => {
        ended = true;
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

  async send(report: LoadReport): Promise<void> {
    while (this.writable !== undefined) await this.writable;
    const stream = this.stream;
    if (stream === undefined) throw new ProtocolError('no report stream to the coordinator');
    // A write on a closing stream reports through 'error'/'status' (and lose()), or throws here: either way the
    // report stays at the head of the buffer for the next stream.
    if (!stream.write({ report })) {
      const pending: Promise<void> = new Promise<void>((resolve) => {
        const done = () => {
          stream.off('drain', done);
          if (this.writable === pending) this.writable = undefined;
          resolve();
        };
        stream.on('drain', done);
        this.onStreamEnd(done);
      });
      this.writable = pending;
    }
  }

  async close(graceMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.attemptStream?.cancel();
    const stream = this.stream;
    if (stream !== undefined) {
      const ended = new Promise<void>((resolve) => this.onStreamEnd(resolve));
      stream.end();
      const timer = this.link.clock.setTimeout(() => stream.cancel(), graceMs);
      timer.unref();
      await ended;
      this.link.clock.clearTimeout(timer);
    }
    this.client.close();
  }

  private onStreamEnd(listener: () => void): void {
    const previous = this.streamEnded;
    this.streamEnded = () => {
      previous?.();
      listener();
    };
  }

  private adopt(stream: ReportStream): void {
    this.stream = stream;
    this.answered = false;
    this.writable = undefined;
    this.streamEnded = undefined;
    this.adoptedAt = this.link.clock.monotonic();
    this.link.logger.info({ coordinator: this.options.url }, 'report stream to the coordinator established');
  }

  private lose(stream: ReportStream, reason: Error | grpc.StatusObject): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    const ended = this.streamEnded;
    this.streamEnded = undefined;
    ended?.();
    // A stream that died at once without a word from the coordinator does not earn a fresh backoff.
    const healthy = this.answered || this.link.clock.monotonic() - this.adoptedAt >= STABLE_STREAM_MS;
    this.link.lost(reason as { code?: number; details?: string; message?: string }, healthy);
  }

  private handleMessage(message: WireCoordinatorMessage): void {
    let directive: Directive;
    try {
      directive = validateDirective(message?.directive);
    } catch (error) {
      this.link.invalidDirective(error);
      return;
    }
    this.link.directive(directive);
  }
}
