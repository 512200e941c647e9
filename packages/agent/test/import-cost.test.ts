import assert from 'node:assert/strict';
import { runModule as runInProcess } from '../../../test/support/run-module.js';

const runModule = (body: string) => runInProcess<Record<string, unknown>>(body);

// CommonJS packages the process loaded, including those reached through `import`, are in the require cache.
const PRELUDE = `
import { createRequire } from 'node:module';
const cache = createRequire(import.meta.url).cache;
const loaded = () => ['@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'consul', 'prom-client'].filter((name) =>
  Object.keys(cache).some((k) => k.includes('/node_modules/' + name + '/')));
const { createAgent } = await import('@shoal/agent');
const base = { service: 'svc', port: 8080, address: '127.0.0.1', onDrained: () => {} };
`;

describe('@shoal/agent import cost (what a process loads)', () => {
  it('loads none of grpc-js, proto-loader, protobufjs, consul, prom-client for an HTTP-reporting agent', async () => {
    const result = await runModule(`${PRELUDE}
const afterImport = loaded();
const agent = createAgent({ ...base, coordinator: { url: 'http://127.0.0.1:9', requestTimeoutMs: 50 } });
const handler = agent.httpListener((req, res) => res.end());
await agent.start();
await agent.close();
const afterRun = loaded();
agent.metricsHandler;
console.log(JSON.stringify({ afterImport, afterRun, afterMetricsHandler: loaded() }));
`);
    assert.deepEqual(result, { afterImport: [], afterRun: [], afterMetricsHandler: ['prom-client'] });
  });

  it('loads grpc-js and the proto for a gRPC coordinator, prom-client for a metrics port, consul for registration', async () => {
    const result = await runModule(`${PRELUDE}
const grpcAgent = createAgent({ ...base, coordinator: { url: 'grpc://127.0.0.1:9' } });
await grpcAgent.start();
await grpcAgent.close();
const grpc = loaded();
console.log(JSON.stringify({ grpc }));
`);
    assert.deepEqual(result, { grpc: ['@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs'] });
    const metrics = await runModule(`${PRELUDE}
createAgent({ ...base, metrics: { port: 0 } });
console.log(JSON.stringify({ port: loaded() }));
`);
    assert.deepEqual(metrics, { port: ['prom-client'] });
    const consul = await runModule(`${PRELUDE}
let error;
try {
  createAgent({ ...base, consul: { url: 'ftp://nowhere' } });
} catch (e) {
  error = e.message;
}
const agent = createAgent({ ...base, consul: { url: 'http://127.0.0.1:9' }, registerTimeoutMs: 50 });
const created = loaded();
await agent.start();
await agent.close();
console.log(JSON.stringify({ error: typeof error, created, started: loaded() }));
`);
    // The option is validated at createAgent (through @shoal/consul, loaded then); the consul client on start().
    assert.deepEqual(consul, { error: 'string', created: ['prom-client'], started: ['consul', 'prom-client'] });
  });
});
