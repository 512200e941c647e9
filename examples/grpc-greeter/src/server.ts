// A Greeter server that registers itself in Consul and serves grpc.health.v1.Health.
// Run: CONSUL_HTTP_ADDR=127.0.0.1:8500 PORT=50051 node dist/server.js
import * as grpc from '@grpc/grpc-js';
import { ServiceRegistration, deregisterOnSignals } from '@shoal/consul';
import { addHealthService, createLoadReporter } from '@shoal/grpc';
import { GreeterService } from './greeter.js';
import type { HelloReply, HelloRequest } from './greeter.js';

// The application reads its environment; Shoal's libraries take options.
const consulUrl = process.env.CONSUL_HTTP_ADDR ?? '127.0.0.1:8500';
const port = Number(process.env.PORT ?? 0);
const zone = process.env.ZONE;

// Counts in-flight calls and latency, and sends this server's load to clients in ORCA trailers.
const reporter = createLoadReporter();
const server = new grpc.Server({ interceptors: [reporter.interceptor] });

const bound = await new Promise<number>((resolve, reject) =>
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
    err ? reject(err) : resolve(p),
  ),
);

const registration = new ServiceRegistration({
  consul: { url: consulUrl },
  service: 'greeter',
  address: '127.0.0.1',
  port: bound,
  ...(zone ? { zone } : {}),
});

server.addService(GreeterService, {
  sayHello: (call: grpc.ServerUnaryCall<HelloRequest, HelloReply>, callback: grpc.sendUnaryData<HelloReply>) => {
    callback(null, { message: `Hello, ${call.request.name || 'world'}`, instance: registration.id });
  },
});
// SERVING while registered in Consul, NOT_SERVING otherwise.
const health = addHealthService(server, registration);

await registration.register();
console.log(`greeter ${registration.id} listening on 127.0.0.1:${bound}, registered in Consul at ${consulUrl}`);

// On SIGTERM/SIGINT: leave Consul first, then finish in-flight calls and exit.
deregisterOnSignals(
  {
    close: async () => {
      await registration.close();
      health.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      console.log(`greeter ${registration.id} stopped`);
    },
  },
  { exit: true },
);
