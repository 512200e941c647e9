/** Loads the demo's `shoal.demo.v1.Greeter` contract (proto/greeter.proto) with @grpc/proto-loader. */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const GREETER_PROTO_PATH = fileURLToPath(new URL('../proto/greeter.proto', import.meta.url));

export interface HelloRequest {
  name: string;
}

export interface HelloReply {
  message: string;
  instanceId: string;
}

export interface GreeterClient extends grpc.Client {
  sayHello(
    request: HelloRequest,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: HelloReply) => void,
  ): grpc.ClientUnaryCall;
}

export interface GreeterDefinition {
  service: grpc.ServiceDefinition;
  Client: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => GreeterClient;
}

export function loadGreeter(): GreeterDefinition {
  const definition = protoLoader.loadSync(GREETER_PROTO_PATH, { keepCase: false, defaults: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    shoal: { demo: { v1: { Greeter: grpc.ServiceClientConstructor } } };
  };
  const ctor = pkg.shoal.demo.v1.Greeter;
  return { service: ctor.service, Client: ctor as unknown as GreeterDefinition['Client'] };
}
