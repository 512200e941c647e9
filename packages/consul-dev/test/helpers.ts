import { ManualClock } from '@shoal/core';
import { startConsulDev } from '@shoal/consul-dev';
import type { ConsulDevOptions, ConsulDevServer } from '@shoal/consul-dev';
import { waitFor } from '../../../test/kit/index.js';

export interface Harness {
  server: ConsulDevServer;
  clock: ManualClock;
  call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; headers: Headers; text: string; json<T>(): T }>;
  /** Resolves once the number of pending clock timers exceeds `count` (a blocking query has parked). */
  timersAbove(count: number): Promise<void>;
  close(): Promise<void>;
}

/** A consul-dev on a free port driven by a ManualClock (random = 0 unless given: no jitter, no stagger). */
export async function harness(
  options: ConsulDevOptions = {},
  clock = new ManualClock(1_700_000_000_000),
): Promise<Harness> {
  const server = await startConsulDev({ host: '127.0.0.1', port: 0, clock, random: () => 0, ...options });
  return {
    server,
    clock,
    async call(method, path, body) {
      const res = await fetch(`${server.url}${path}`, {
        method,
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
    },
    async timersAbove(count) {
      const deadline = Date.now() + 5000;
      while (clock.pending <= count) {
        if (Date.now() > deadline) throw new Error(`no new timer after 5 s (pending ${clock.pending})`);
        await new Promise((r) => setTimeout(r, 2));
      }
    },
    close: () => server.close(),
  };
}

export interface CheckView {
  CheckID: string;
  Status: string;
  Output: string;
}

export async function agentCheck(h: Harness, id: string): Promise<CheckView | undefined> {
  const res = await h.call('GET', '/v1/agent/checks');
  return res.json<Record<string, CheckView>>()[id];
}

/** Polls a check until `predicate` holds (probes do real I/O, so results land asynchronously). */
export async function waitForCheck(
  h: Harness,
  id: string,
  predicate: (c: CheckView) => boolean,
  timeoutMs = 5000,
): Promise<CheckView> {
  let last: CheckView | undefined;
  return waitFor(
    async () => {
      last = await agentCheck(h, id);
      return last && predicate(last) ? last : undefined;
    },
    { timeoutMs, intervalMs: 5, what: () => `check ${id} to match; last: ${JSON.stringify(last)}` },
  );
}
