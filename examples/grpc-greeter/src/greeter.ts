// Loads the Greeter service definition from proto/greeter.proto (shared by server and client).
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface HelloRequest {
  name: string;
}
export interface HelloReply {
  message: string;
  instance: string;
}

const PROTO_PATH = fileURLToPath(new URL('../proto/greeter.proto', import.meta.url));
const definition = protoLoader.loadSync(PROTO_PATH, { keepCase: true, defaults: true });
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  shoal: { example: { Greeter: grpc.ServiceClientConstructor } };
};

export interface Greeter extends grpc.Client {
  sayHello(
    request: HelloRequest,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, reply: HelloReply) => void,
  ): grpc.ClientUnaryCall;
}

export const GreeterClient = pkg.shoal.example.Greeter as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => Greeter;
export const GreeterService: grpc.ServiceDefinition = pkg.shoal.example.Greeter.service;
