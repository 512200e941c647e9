import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const fixtures = fileURLToPath(new URL('../fixtures/module-trace/', import.meta.url));

/** Runs the fixture in a fresh Node process whose loader hooks record every module it loads. */
async function trace(...args: string[]): Promise<Array<{ step: string; k8sLoaded: boolean; error?: string }>> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', `${fixtures}register.mjs`, `${fixtures}actuators.mjs`, ...args],
    { timeout: 60_000 },
  );
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { step: string; k8sLoaded: boolean; error?: string });
}

describe('@kubernetes/client-node loading', function () {
  this.timeout(90_000);

  it('is loaded only once a kubernetes actuator is created (not by importing, nor by local/command actuators)', async () => {
    const steps = await trace('kubernetes');
    assert.equal(steps.length, 2);
    // One process: importing the coordinator and creating local and command actuators loaded none of it ...
    assert.deepEqual(steps[0], { step: 'local+command', k8sLoaded: false });
    // ... a kubernetes actuator did.
    assert.equal(steps[1]!.k8sLoaded, true);
    // The actuator reached the (real HTTP) API server through the lazily loaded client and reported its 404.
    assert.match(steps[1]!.error ?? '', /Deployment "web" not found in namespace "default"/);
  });
});
