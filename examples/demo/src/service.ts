#!/usr/bin/env node
/**
 * The example service every demo replica runs: a gRPC Greeter whose calls take ~50 ms of simulated work, with the
 * Shoal agent inside. The coordinator's local actuator starts it with PORT, SHOAL_INSTANCE_ID,
 * SHOAL_COORDINATOR_URL and SHOAL_COORDINATOR_TOKEN in its environment; this file (the application, not a
 * library) reads them and passes them to the agent as options.
 *
 *   node examples/demo/dist/service.js --consul http://127.0.0.1:8500 [--service-time-ms 50] [--slots 8]
 *     [--host 127.0.0.1] [--advertise <address>]
 */
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createAgent } from '@shoal/agent';
import { loadGreeter, type HelloReply, type HelloRequest } from './greeter-proto.js';
import { WorkSimulator } from './work-simulator.js';

const { values } = parseArgs({
  options: {
    consul: { type: 'string', default: 'http://127.0.0.1:8500' },
    service: { type: 'string', default: 'greeter' },
    'service-time-ms': { type: 'string', default: '50' },
    slots: { type: 'string', default: '8' },
    // Bind address, and the address registered in Consul (default: the bind address; with 0.0.0.0, the agent
    // registers the first non-internal IPv4 address, as in a container).
    host: { type: 'string', default: '127.0.0.1' },
    advertise: { type: 'string' },
    // Tags the process so tests can find every replica of one demo run; not used otherwise.
    'demo-run': { type: 'string' },
  },
  strict: true,
});

const env = process.env;
const port = Number(env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write(`service: PORT must be a port number, got ${JSON.stringify(env.PORT)}\n`);
  process.exit(2);
}
// JSON lines on stdout: the local actuator pipes them into the coordinator's log.
const logger = pino();
const registry = new Registry();
const work = new WorkSimulator({ slots: Number(values.slots), serviceTimeMs: Number(values['service-time-ms']) });
const agent = createAgent({
  service: values.service!,
  port,
  ...(values.advertise ? { address: values.advertise } : values.host !== '0.0.0.0' ? { address: values.host! } : {}),
  // The local actuator sets SHOAL_INSTANCE_ID; elsewhere the agent's default `<service>-<address>-<port>`.
  ...(env.SHOAL_INSTANCE_ID ? { instanceId: env.SHOAL_INSTANCE_ID } : {}),
  version: '1.0.0',
  zone: 'local',
  consul: { url: values.consul! },
  ...(env.SHOAL_COORDINATOR_URL
    ? {
        coordinator: {
          url: env.SHOAL_COORDINATOR_URL,
          ...(env.SHOAL_COORDINATOR_TOKEN ? { token: env.SHOAL_COORDINATOR_TOKEN } : {}),
        },
      }
    : {}),
  // A small /metrics server of its own on a free port; its address goes into the Consul registration.
  metrics: { port: 0, host: values.host! },
  // SIGTERM from the actuator (or a drain directive from the coordinator) takes the drain path: deregister,
  // wait a moment so clients' watchers drop this instance, GOAWAY, finish in-flight calls, then exit.
  handleSignals: ['SIGTERM'],
  drainGraceMs: 1000,
  // On SIGTERM, the wait after deregistering: 1 s is plenty for Consul watchers on one host; on Kubernetes keep the
  // default (5 s), so kube-proxy and ingresses see the pod go too.
  terminationDelayMs: 1000,
  onDrained: async () => {
    await agent.close();
    process.exit(0);
  },
  logger,
  registry,
});

const instanceId = agent.instanceId;
const { service } = loadGreeter();
// The agent's interceptor counts in-flight calls, requests, errors and latency; on drain, tryShutdown sends GOAWAY.
const server = agent.attachGrpcServer(new grpc.Server({ interceptors: [agent.grpcInterceptor()] }));
server.addService(service, {
  sayHello: (call: grpc.ServerUnaryCall<HelloRequest, HelloReply>, callback: grpc.sendUnaryData<HelloReply>) => {
    work.run().then(
      () => callback(null, { message: `Hello, ${call.request.name || 'world'}`, instanceId }),
      (err: unknown) => callback({ code: grpc.status.INTERNAL, details: String(err) }),
    );
  },
});

server.bindAsync(`${values.host}:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    logger.error({ err }, 'cannot bind');
    process.exit(1);
  }
  agent.start().then(
    () => logger.info({ port }, 'greeter replica serving'),
    (startErr: unknown) => {
      logger.error({ err: startErr }, 'agent failed to start');
      process.exit(1);
    },
  );
});
