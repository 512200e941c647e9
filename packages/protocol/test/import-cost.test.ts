import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Runs `body` as an ES module in a fresh Node process (from the repository root) and returns its JSON output. */
function runModule(body: string): Promise<Record<string, boolean>> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', body],
      { cwd: ROOT, timeout: 15_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as Record<string, boolean>);
      },
    );
  });
}

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
