import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { deregisterOnSignals } from '@shoal/consul';
import { startTestConsul, type TestConsul } from '../../../test/support/consul.js';

const child = fileURLToPath(new URL('./fixtures/signal-child.ts', import.meta.url));

describe('deregisterOnSignals', () => {
  let consul: TestConsul | undefined;

  afterEach(async () => {
    await consul?.close();
    consul = undefined;
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`deregisters before the process exits on ${signal}, then exits as the signal would`, async () => {
      consul = await startTestConsul();
      const service = `shoal-sig-${process.pid}-${Date.now().toString(36)}`;
      const proc = spawn(process.execPath, ['--import', 'tsx', child, consul.url, service], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      try {
        const [line] = (await once(proc.stdout!, 'data')) as [Buffer];
        const { id } = JSON.parse(line.toString()) as { id: string };
        const listed = await (await fetch(`${consul.url}/v1/health/service/${service}`)).json();
        assert.equal((listed as Array<{ Service: { ID: string } }>)[0]?.Service.ID, id);
        const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
        proc.kill(signal);
        const [code, sig] = await exited;
        assert.equal(sig, signal, `exit code ${code}`);
        const after = await (await fetch(`${consul.url}/v1/health/service/${service}`)).json();
        assert.deepEqual(after, []);
      } finally {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
    });
  }

  it('with exit: false only closes the registration, and the disposer removes the handlers', async () => {
    let closed = 0;
    const before = process.listenerCount('SIGUSR2');
    const dispose = deregisterOnSignals(
      {
        close: async () => {
          closed++;
        },
      },
      { signals: ['SIGUSR2'], exit: false },
    );
    assert.equal(process.listenerCount('SIGUSR2'), before + 1);
    const done = new Promise<void>((resolve) => {
      const check = () => (closed === 1 ? resolve() : setImmediate(check));
      check();
    });
    process.kill(process.pid, 'SIGUSR2');
    await done;
    assert.equal(process.listenerCount('SIGUSR2'), before, 'handlers are removed once a signal arrived');
    dispose();
    const again = deregisterOnSignals({ close: async () => {} }, { signals: ['SIGUSR2'], exit: false });
    again();
    assert.equal(process.listenerCount('SIGUSR2'), before);
  });

  it('validates its arguments', () => {
    assert.throws(() => deregisterOnSignals({} as never), /registration must have a close\(\) method/);
    assert.throws(
      () => deregisterOnSignals({ close: async () => {} }, { signals: ['TERM' as never] }),
      /signals must be a non-empty array of signal names/,
    );
    assert.throws(
      () => deregisterOnSignals({ close: async () => {} }, { exit: 'yes' as never }),
      /exit must be a boolean, got "yes"/,
    );
  });
});
