/**
 * A real gRPC coordinator for the agent's tests: it serves shoal.v1.Coordinator on 127.0.0.1 with the shipped
 * proto, validates what agents send, records it, and lets a test send directives, refuse agents, answer garbage,
 * or restart on the same port.
 */
import * as grpc from '@grpc/grpc-js';
import {
  COORDINATOR_CHANNEL_OPTIONS,
  loadCoordinatorService,
  parseBearer,
  validateHello,
  validateReport,
  type CoordinatorHandlers,
  type Hello,
  type LoadReport,
  type WireAgentMessage,
} from '@shoal/protocol';

/** accept; refuse (UNAUTHENTICATED); garbage (answers non-protobuf bytes); stall (accepts, answers, never reads). */
export type CoordinatorMode = 'accept' | 'refuse' | 'garbage' | 'stall';

export interface TestCoordinatorOptions {
  port?: number;
  /** Expected bearer token; others get UNAUTHENTICATED. */
  token?: string;
  mode?: CoordinatorMode;
  /** Directive (any shape, sent as is) written right after each Hello. */
  onHello?: unknown;
  /** Serve TLS with this certificate chain and key (PEM). */
  tls?: { cert: Buffer; key: Buffer };
}

export interface TestCoordinator {
  readonly port: number;
  readonly url: string;
  readonly hellos: Hello[];
  readonly reports: LoadReport[];
  /** Validation failures seen on agent messages (should stay empty). */
  readonly invalid: string[];
  /** Number of Connect calls received (accepted or not). */
  connects: number;
  mode: CoordinatorMode;
  /** Writes `message` (any shape: tests send invalid ones too) as the directive on every open stream. */
  send(directive: unknown): number;
  openStreams(): number;
  close(): Promise<void>;
}

type Call = grpc.ServerDuplexStream<WireAgentMessage, unknown>;

export async function startTestCoordinator(options: TestCoordinatorOptions = {}): Promise<TestCoordinator> {
  const { CoordinatorService } = loadCoordinatorService(grpc);
  // Same methods, but every response is serialized as bytes that are not a protobuf message.
  const garbageService: grpc.ServiceDefinition = Object.fromEntries(
    Object.entries(CoordinatorService).map(([name, method]) => [
      name,
      { ...method, responseSerialize: () => Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x07]) },
    ]),
  );
  const calls = new Set<Call>();
  const state: TestCoordinator = {
    port: 0,
    url: '',
    hellos: [],
    reports: [],
    invalid: [],
    connects: 0,
    mode: options.mode ?? 'accept',
    send(directive: unknown) {
      for (const call of calls) call.write({ directive });
      return calls.size;
    },
    openStreams: () => calls.size,
    close: async () => {},
  };
  const handlers: CoordinatorHandlers = {
    connect(call: Call) {
      state.connects++;
      const token = parseBearer(call.metadata.get('authorization')[0]);
      if (state.mode === 'refuse' || (options.token !== undefined && token !== options.token)) {
        call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'bad token' });
        return;
      }
      calls.add(call);
      if (state.mode === 'stall') {
        // Accept (headers out), then never read: HTTP/2 flow control pushes back on the agent.
        call.sendMetadata(new grpc.Metadata());
        call.on('error', () => calls.delete(call));
        call.on('cancelled', () => calls.delete(call));
        return;
      }
      call.on('data', (message: WireAgentMessage) => {
        try {
          if (message.msg === 'hello') {
            state.hellos.push(validateHello(message.hello));
            if (options.onHello !== undefined || state.mode === 'garbage')
              call.write({ directive: options.onHello ?? {} });
          } else if (message.msg === 'report') {
            state.reports.push(validateReport(message.report));
          }
        } catch (error) {
          state.invalid.push((error as Error).message);
        }
      });
      call.on('error', () => calls.delete(call));
      call.on('cancelled', () => calls.delete(call));
      call.on('end', () => {
        calls.delete(call);
        call.end();
      });
    },
    report(_call, callback) {
      callback(null, {});
    },
  };
  const server = new grpc.Server(COORDINATOR_CHANNEL_OPTIONS);
  server.addService(state.mode === 'garbage' ? garbageService : CoordinatorService, handlers);
  const credentials = options.tls
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: options.tls.cert, private_key: options.tls.key }], false)
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${options.port ?? 0}`, credentials, (e, p) => (e ? reject(e) : resolve(p))),
  );
  Object.assign(state, { port, url: `127.0.0.1:${port}` });
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const call of calls) call.destroy();
      calls.clear();
      server.forceShutdown();
      resolve();
    });
  return state;
}
