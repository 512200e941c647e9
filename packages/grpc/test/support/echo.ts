/**
 * A tiny echo service for tests and benchmarks: JSON messages over a hand-written service definition, so no .proto
 * is needed. Each server answers with its own name, and can be told to be slow or to fail.
 */
import * as grpc from '@grpc/grpc-js';

export interface EchoRequest {
  msg: string;
}
export interface EchoReply {
  msg: string;
  server: string;
}

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as never,
};

export const ECHO_SERVICE = {
  echo: {
    path: '/shoal.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
    originalName: 'Echo',
  },
} satisfies grpc.ServiceDefinition;

export const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'shoal.test.Echo');
export type EchoClientInstance = InstanceType<typeof EchoClient>;

/** An echo client with its one method typed (grpc-js types a generic client's methods as plain functions). */
export type EchoCaller = grpc.Client & {
  echo(
    request: Partial<EchoRequest>,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: EchoReply) => void,
  ): grpc.ClientUnaryCall;
};
/** `EchoClient`, typed as constructing `EchoCaller`s (for `createClient` and `new`). */
export const TypedEchoClient = EchoClient as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => EchoCaller;

export interface EchoServer {
  readonly name: string;
  readonly port: number;
  readonly server: grpc.Server;
  calls: number;
  /** Extra latency per call: fixed ms, or a function deciding per call. */
  delay: number | (() => number);
  /** When set, calls fail with this status code. */
  failWith: grpc.status | undefined;
  close(): Promise<void>;
  /** Kills connections at once (a crash). */
  kill(): void;
}

export async function startEchoServer(
  name: string,
  options: { port?: number; serverOptions?: grpc.ServerOptions; setup?: (server: grpc.Server) => void } = {},
): Promise<EchoServer> {
  const server = new grpc.Server(options.serverOptions);
  const state: EchoServer = {
    name,
    port: 0,
    server,
    calls: 0,
    delay: 0,
    failWith: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          clearDelays();
          resolve();
        });
        // Do not wait forever for in-flight calls.
        setTimeout(() => {
          clearDelays();
          server.forceShutdown();
        }, 2000).unref();
      }),
    kill: () => {
      clearDelays();
      server.forceShutdown();
    },
  };
  // Delayed answers still pending: a closed or killed server drops them, so a "hung" server (delay of an hour)
  // leaves no timer behind to keep the test process alive after the suite.
  const delays = new Set<NodeJS.Timeout>();
  const clearDelays = (): void => {
    for (const timer of delays) clearTimeout(timer);
    delays.clear();
  };
  server.addService(ECHO_SERVICE, {
    echo: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
      state.calls++;
      const reply = () => {
        if (state.failWith !== undefined) callback({ code: state.failWith, details: `${name} fails on purpose` });
        else callback(null, { msg: call.request.msg, server: name });
      };
      const d = typeof state.delay === 'function' ? state.delay() : state.delay;
      if (d > 0) {
        const timer = setTimeout(() => {
          delays.delete(timer);
          reply();
        }, d);
        delays.add(timer);
      } else reply();
    },
  });
  options.setup?.(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${options.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  (state as { port: number }).port = port;
  return state;
}

/**
 * A call error that says whether the server had begun answering: gRPC retries (A6) commit a call once its
 * response headers arrive, so an error after them (the server died between its headers and its trailers) is
 * never retried, while one before them is.
 */
export type EchoError = grpc.ServiceError & { afterResponseHeaders: boolean };

/** Promise form of a unary echo call. */
export function echo(
  client: EchoClientInstance,
  msg = 'hi',
  options: { deadlineMs?: number; metadata?: grpc.Metadata; waitForReady?: boolean } = {},
): Promise<EchoReply> {
  const metadata = options.metadata ?? new grpc.Metadata();
  let headers = false;
  // Client interceptors sit above the retrying call: this sees the metadata of the attempt that was committed.
  const watchHeaders: grpc.Interceptor = (opts, nextCall) =>
    new grpc.InterceptingCall(nextCall(opts), {
      start(md, listener, next) {
        next(md, {
          onReceiveMetadata(received, nextMd) {
            headers = true;
            nextMd(received);
          },
        });
      },
    });
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (...a: unknown[]) => void>).echo!(
      { msg },
      metadata,
      {
        deadline: Date.now() + (options.deadlineMs ?? 5000),
        interceptors: [watchHeaders],
        ...(options.waitForReady ? { waitForReady: true } : {}),
      },
      (err: grpc.ServiceError | null, res: EchoReply) =>
        err ? reject(Object.assign(err, { afterResponseHeaders: headers })) : resolve(res),
    );
  });
}

/** Counts which server answered each of `n` calls (sequential when concurrency is 1). */
export async function distribution(
  client: EchoClientInstance,
  n: number,
  concurrency = 1,
  metadata?: () => grpc.Metadata,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const res = await echo(client, 'x', metadata ? { metadata: metadata() } : {});
      counts[res.server] = (counts[res.server] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}
