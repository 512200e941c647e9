/**
 * bench:agent-memory — where the agent's gRPC transport memory goes: what each piece it loads adds to a process's
 * RSS, V8 heap (used and reserved) and young generation, measured after two full collections in a fresh process
 * per step (`node --expose-gc`), steps cumulative:
 *
 *   plain           a node:http server (the application)
 *   http2           + node:http2 (what grpc-js runs on)
 *   grpc-js         + @grpc/grpc-js
 *   protocol        + @shoal/protocol (validators, JSON mapping)
 *   service         + loadCoordinatorService(grpc): @grpc/proto-loader and protobufjs parse the shipped .proto
 *
 *   npm run bench:agent-memory     (about 10 s; 3 processes per step, medians)
 *
 * The last line printed is one JSON object with every figure.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const STEPS = ['plain', 'http2', 'grpc-js', 'protocol', 'service'] as const;
type Step = (typeof STEPS)[number];

interface Sample {
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  youngGenMb: number;
  externalMb: number;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The child's code: plain JavaScript run with `node -e` (no TypeScript loader in the measured process, which would
 * add its own compiler's memory), from the repository root so that the packages resolve as an application's do.
 */
function childScript(step: Step): string {
  const upTo = STEPS.indexOf(step);
  return `
    import http from 'node:http';
    import { getHeapSpaceStatistics } from 'node:v8';
        const server = http.createServer((_req, res) => res.end('ok'));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    ${upTo >= 1 ? "await import('node:http2');" : ''}
    const grpc = ${upTo >= 2 ? "await import('@grpc/grpc-js')" : 'undefined'};
    const protocol = ${upTo >= 3 ? "await import('@shoal/protocol')" : 'undefined'};
    ${upTo >= 4 ? 'protocol.loadCoordinatorService(grpc);' : ''}
    globalThis.gc();
    globalThis.gc();
    const m = process.memoryUsage();
    const mb = (b) => Math.round((b / 1048576) * 10) / 10;
    const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
    console.log(JSON.stringify({ rssMb: mb(m.rss), heapUsedMb: mb(m.heapUsed), heapTotalMb: mb(m.heapTotal),
      youngGenMb: mb(young), externalMb: mb(m.external) }));
    server.close();
  `;
}

async function main(): Promise<void> {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const results: Record<string, Sample> = {};
  for (const step of STEPS) {
    const samples: Sample[] = [];
    for (let i = 0; i < 3; i++) {
      const { stdout } = await exec(process.execPath, ['--expose-gc', '--input-type=module', '-e', childScript(step)], {
        cwd: ROOT,
      });
      samples.push(JSON.parse(stdout.trim().split('\n').at(-1)!) as Sample);
    }
    const keys = Object.keys(samples[0]!) as Array<keyof Sample>;
    results[step] = Object.fromEntries(keys.map((k) => [k, median(samples.map((s) => s[k]))])) as unknown as Sample;
    const r = results[step];
    const prev = STEPS.indexOf(step) > 0 ? results[STEPS[STEPS.indexOf(step) - 1]!]! : undefined;
    const delta = prev ? ` (+${(r.rssMb - prev.rssMb).toFixed(1)} MB RSS)` : '';
    console.log(
      `${step.padEnd(9)} rss ${r.rssMb.toFixed(1)} MB${delta}  heap used ${r.heapUsedMb.toFixed(1)}  heap reserved ${r.heapTotalMb.toFixed(1)}  young gen ${r.youngGenMb.toFixed(1)}  external ${r.externalMb.toFixed(1)}`,
    );
  }
  console.log(
    JSON.stringify({
      bench: 'agent-memory',
      node: process.version,
      steps: results,
      grpcTransportLoadMb: Math.round((results.service!.rssMb - results.plain!.rssMb) * 10) / 10,
    }),
  );
}

await main();
