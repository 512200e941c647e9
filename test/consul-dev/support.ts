/**
 * Shared set-up for the conformance suite: a Consul (the double, or a real one at CONSUL_HTTP_ADDR), the real
 * `consul` npm client pointed at it, a raw HTTP helper for what the client cannot send, and unique names so tests
 * against a shared real agent do not collide. Everything a test registers is removed in `cleanup()`.
 */
import { randomUUID } from 'node:crypto';
import Consul from 'consul';
import { startTestConsul } from '../support/consul.js';
import type { TestConsul, TestConsulOptions } from '../support/consul.js';

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  json<T = unknown>(): T;
}

export interface Fixture {
  tc: TestConsul;
  consul: Consul;
  /** A raw HTTP call; the test token is sent unless `headers` says otherwise. */
  raw(method: string, path: string, body?: string | Buffer, headers?: Record<string, string>): Promise<RawResponse>;
  /** A unique service/key name for this test. */
  name(prefix?: string): string;
  /** Remembers a service ID to deregister in cleanup(). */
  track(serviceId: string): string;
  trackKey(prefix: string): string;
  trackSession(id: string): string;
  cleanup(): Promise<void>;
}

export async function setup(options: TestConsulOptions = {}): Promise<Fixture> {
  const tc = await startTestConsul(options);
  const consul = new Consul({
    host: tc.host,
    port: tc.port,
    ...(tc.token ? { defaults: { token: tc.token } } : {}),
  });
  const services = new Set<string>();
  const keys = new Set<string>();
  const sessions = new Set<string>();
  const raw = async (
    method: string,
    path: string,
    body?: string | Buffer,
    headers: Record<string, string> = tc.token ? { 'X-Consul-Token': tc.token } : {},
  ): Promise<RawResponse> => {
    const res = await fetch(`${tc.url}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
  };
  return {
    tc,
    consul,
    raw,
    name: (prefix = 'cdt') => `${prefix}-${randomUUID().slice(0, 8)}`,
    track(id) {
      services.add(id);
      return id;
    },
    trackKey(prefix) {
      keys.add(prefix);
      return prefix;
    },
    trackSession(id) {
      sessions.add(id);
      return id;
    },
    async cleanup() {
      if (tc.isReal) {
        for (const id of sessions) await consul.session.destroy(id).catch(() => {});
        for (const id of services) await consul.agent.service.deregister(id).catch(() => {});
        for (const k of keys) await consul.kv.del({ key: k, recurse: true }).catch(() => {});
      }
      consul.destroy();
      await tc.close();
    },
  };
}

/** Polls `fn` until it returns a truthy value or the deadline passes (no fixed sleeps). */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 5000,
  stepMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** The HTTP status of a rejected node-consul call (papi ResponseError). */
export function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number; response?: { statusCode?: number } }).response?.statusCode;
}

export function bodyOf(err: unknown): unknown {
  return (err as { response?: { body?: unknown } }).response?.body;
}

export interface HealthEntry {
  Node: { Node: string; Address: string };
  Service: { ID: string; Service: string; Tags: string[]; Meta: Record<string, string>; Port: number; Address: string };
  Checks: Array<{ CheckID: string; Status: string; Output: string; Notes: string; ServiceID: string; Type: string }>;
}
