import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { isShoalError } from '@shoal/core';
import { createCoordinator, loadConfigFile, parseConfigYaml, type Coordinator } from '@shoal/coordinator';
import { resolveServiceTokens } from '@shoal/coordinator/internal';
import { RecordingActuator } from './support/agent-client.js';

/** A valid config touching most sections (what a mutation starts from). */
function baseConfig(): Record<string, unknown> {
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: 3_600_000,
    decisionLogSize: 50,
    api: { token: 'operator-token-0123456789', readToken: 'read-token-0123456789abc' },
    keda: { token: 'keda-token-0123456789abcd', maxWatchers: 10 },
    limits: { maxStreams: 100, reportsPerSecondPerInstance: 10, grpcMaxConnections: 100, httpMaxConnections: 100 },
    services: [
      {
        name: 'orders',
        token: 'orders-token-0123456789abcdef',
        minReplicas: 1,
        maxReplicas: 5,
        reportIntervalMs: 1000,
        policy: {
          targets: [
            { metric: 'eventLoopUtilization', type: 'average', value: 0.5 },
            { metric: 'inFlight', type: 'average', value: 10 },
          ],
        },
        actuator: { type: 'command', command: 'true', args: ['{service}', '{replicas}', '{victims}'] },
      },
      {
        name: 'greeter',
        token: 'greeter-token-0123456789abcd',
        maxReplicas: 3,
        policy: { targets: [{ metric: 'cpu', value: 0.7 }] },
        actuator: { type: 'command', command: 'true' },
      },
    ],
  };
}

type Path = Array<string | number>;

/** Every path to a value in `value` (objects and arrays included). */
function paths(value: unknown, prefix: Path = []): Path[] {
  if (value === null || typeof value !== 'object') return [prefix];
  const children = Object.entries(value).flatMap(([k, v]) =>
    paths(v, [...prefix, Array.isArray(value) ? Number(k) : k]),
  );
  return [prefix, ...children];
}

function mutate(config: Record<string, unknown>, path: Path, replacement: unknown, remove: boolean): unknown {
  if (path.length === 0) return remove ? undefined : replacement;
  const copy = structuredClone(config);
  let node = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (remove) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = replacement;
  return copy;
}

const ALL_PATHS = paths(baseConfig());
const oddValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(-1, 0, 1.5, 1e308, Number.MAX_SAFE_INTEGER + 2, '', '..', '--x', 'x'.repeat(5000), [], {}, null),
);
/** A mutation of the valid config: one value replaced or removed. */
const mutatedConfig = fc
  .record({ path: fc.constantFrom(...ALL_PATHS), value: oddValue, remove: fc.boolean() })
  .map(({ path, value, remove }) => mutate(baseConfig(), path, value, remove));
/** A mutation of the YAML text: characters inserted, or a slice removed. */
const mutatedText = fc
  .record({
    at: fc.nat(),
    cut: fc.nat({ max: 40 }),
    insert: fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constantFrom(':', '- ', '&a ', '*a', '!!binary ', '{', '\t', '\n  '),
    ),
  })
  .map(({ at, cut, insert }) => {
    const text = stringify(baseConfig());
    const i = at % text.length;
    return text.slice(0, i) + insert + text.slice(i + cut);
  });

/**
 * A clear error: a Shoal error with a code, one message without a stack trace. `tokensInPlace`: the tokens are still
 * in token fields (a text mutation can splice one into another field's value, which an error rightly quotes), so
 * none may appear in the message.
 */
function assertClearError(error: unknown, tokensInPlace: boolean): void {
  assert.ok(isShoalError(error), `not a Shoal error: ${String(error)}`);
  const message = (error as Error).message;
  assert.doesNotMatch(message, /\n\s+at .*:\d+:\d+/, `no stack trace: ${message}`);
  if (tokensInPlace) assert.doesNotMatch(message, /token-0123456789/, `no token in the message: ${message}`);
}

describe('hostile coordinator configs (property-based, issue 18)', () => {
  let dir: string;
  let coordinator: Coordinator | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-config-prop-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await coordinator?.close();
    coordinator = undefined;
  });

  it('parses every mutated config file (as --check does) into a valid config or a clear ConfigError', async () => {
    const file = join(dir, 'coordinator.yaml');
    await writeFile(file, stringify(baseConfig()));
    assert.equal((await loadConfigFile(file)).services.length, 2); // the base is valid, read as --check reads it
    const check = async (text: string, tokensInPlace: boolean) => {
      try {
        // loadConfigFile is readFile + parseConfigYaml; then --check reads the token files.
        const config = parseConfigYaml(text, file);
        await resolveServiceTokens(config, dir);
      } catch (error) {
        assertClearError(error, tokensInPlace);
        assert.equal((error as { code: string }).code, 'SHOAL_ERR_CONFIG');
      }
    };
    await fc.assert(
      fc.asyncProperty(mutatedConfig, async (c) => check(c === undefined ? '' : stringify(c), true)),
      { numRuns: 60 },
    );
    await fc.assert(
      fc.asyncProperty(mutatedText, (text) => check(text, false)),
      { numRuns: 60 },
    );
  });

  it('reloads every mutated config or refuses it with a clear error, and keeps serving', async () => {
    coordinator = createCoordinator(baseConfig() as never, { actuatorFactory: () => new RecordingActuator(1) });
    await coordinator.start();
    const c = coordinator;
    let applied = 0;
    await fc.assert(
      fc.asyncProperty(mutatedConfig, async (next) => {
        try {
          await c.reload(next as never);
          applied++;
        } catch (error) {
          assertClearError(error, true);
        }
        const res = await fetch(`${c.urls().http}/healthz`);
        await res.arrayBuffer();
        assert.equal(res.status, 200);
      }),
      { numRuns: 60 },
    );
    assert.ok(applied > 0, 'some mutations are valid configs and were applied');
  });
});
