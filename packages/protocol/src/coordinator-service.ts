import { createRequire } from 'node:module';
import type * as protoLoader from '@grpc/proto-loader';
import type { Options, PackageDefinition } from '@grpc/proto-loader';
import type * as grpc from '@grpc/grpc-js';
import { LIMITS } from './limits.js';
import type {
  AgentMessage,
  CoordinatorMessage,
  ReportRequest,
  ReportResponse,
  WireAgentMessage,
  WireCoordinatorMessage,
} from './messages.js';
import { PROTO_PATH } from './proto-path.js';

/**
 * Options passed to `@grpc/proto-loader`. The hand-written types in messages.ts describe exactly this shape:
 * camelCase names, 64-bit integers as numbers (safe up to 2^53, far beyond any count an interval produces),
 * defaults filled in, and `msg` naming the oneof member present.
 */
export const PROTO_LOADER_OPTIONS: Readonly<Options> = Object.freeze({
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** The grpc-js module (the application's copy, passed in so Shoal never loads a second one). */
export type GrpcModule = Pick<typeof grpc, 'loadPackageDefinition'>;

/** Server handlers for `shoal.v1.Coordinator`, to pass to `server.addService(CoordinatorService, handlers)`. */
export interface CoordinatorHandlers extends grpc.UntypedServiceImplementation {
  connect: grpc.handleBidiStreamingCall<WireAgentMessage, CoordinatorMessage>;
  report: grpc.handleUnaryCall<unknown, ReportResponse>;
}

/** A typed client for `shoal.v1.Coordinator`. Incoming messages are unvalidated: run validateDirective on them. */
export interface CoordinatorClient extends grpc.Client {
  connect(
    metadata?: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientDuplexStream<AgentMessage, WireCoordinatorMessage>;
  report(
    request: ReportRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: { directive?: unknown }) => void,
  ): grpc.ClientUnaryCall;
}

export interface CoordinatorClientConstructor {
  new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions): CoordinatorClient;
  service: grpc.ServiceDefinition;
}

export interface LoadedCoordinatorService {
  /** Service definition for `server.addService`. */
  CoordinatorService: grpc.ServiceDefinition;
  /** Client constructor: `new CoordinatorClient('127.0.0.1:7400', credentials)`. */
  CoordinatorClient: CoordinatorClientConstructor;
}

/** Channel / server options that apply LIMITS.maxMessageBytes on both directions. */
export const COORDINATOR_CHANNEL_OPTIONS: Readonly<grpc.ChannelOptions> = Object.freeze({
  'grpc.max_receive_message_length': LIMITS.maxMessageBytes,
  'grpc.max_send_message_length': LIMITS.maxMessageBytes,
});

let packageDefinition: PackageDefinition | undefined;

/**
 * `@grpc/proto-loader` (and protobufjs under it) is loaded on the first call of loadCoordinatorService, not when
 * this package is imported: validators, the JSON mapping and the limits cost no more than their own code.
 */
function loadProtoLoader(): typeof protoLoader {
  return createRequire(import.meta.url)('@grpc/proto-loader') as typeof protoLoader;
}

/**
 * Loads `shoal.v1.Coordinator` from the shipped proto with `@grpc/proto-loader` into the given grpc-js module.
 * The proto is parsed once per process (loading proto-loader then); each call builds fresh constructors for that
 * grpc module.
 */
export function loadCoordinatorService(grpcModule: GrpcModule): LoadedCoordinatorService {
  packageDefinition ??= loadProtoLoader().loadSync(PROTO_PATH, { ...PROTO_LOADER_OPTIONS });
  const root = grpcModule.loadPackageDefinition(packageDefinition) as unknown as {
    shoal: { v1: { Coordinator: CoordinatorClientConstructor } };
  };
  const CoordinatorClient = root.shoal.v1.Coordinator;
  return { CoordinatorService: CoordinatorClient.service, CoordinatorClient };
}
