import assert from 'node:assert/strict';
import { runModule as runInProcess } from '../../../test/support/run-module.js';

const runModule = (body: string) => runInProcess<Record<string, boolean>>(body);

// CommonJS modules loaded by the process, including those reached through `import`, are in the require cache.
const LOADED = `
import { createRequire } from 'node:module';
const cache = createRequire(import.meta.url).cache;
const loaded = (name) => Object.keys(cache).some((k) => k.includes('/node_modules/' + name + '/'));
`;

describe('@shoal/protocol import cost', () => {
  it('loads neither proto-loader nor protobufjs nor grpc-js on import, and proto-loader on loadCoordinatorService', async () => {
    const result = await runModule(`${LOADED}
const protocol = await import('@shoal/protocol');
protocol.validateReport({ ...protocol.emptyLoadReport(), intervalMs: 1000 });
protocol.responseFromJson('{"directive":{"reportIntervalMs":1000}}');
const afterImport = { protoLoader: loaded('@grpc/proto-loader'), protobufjs: loaded('protobufjs'), grpc: loaded('@grpc/grpc-js') };
const grpc = await import('@grpc/grpc-js');
const { CoordinatorService } = protocol.loadCoordinatorService(grpc);
console.log(JSON.stringify({ ...afterImport, afterLoad: loaded('@grpc/proto-loader') && loaded('protobufjs'), service: Object.keys(CoordinatorService).length === 2 }));
`);
    assert.deepEqual(result, { protoLoader: false, protobufjs: false, grpc: false, afterLoad: true, service: true });
  });
});
