import Consul from 'consul';
import {
  ConsulPermissionError,
  ConsulRequestError,
  ConsulUnavailableError,
  InvalidArgumentError,
  assertPositiveInteger,
  assertString,
} from '@shoal/core';

export interface ConsulKvOptions {
  url: string;
  token?: string;
  datacenter?: string;
  requestTimeoutMs: number;
}

interface ConsulKvItem {
  Key: string;
  Value: string | null;
  Session?: string;
  ModifyIndex: number;
  LockIndex?: number;
}

/**
 * The few Consul calls the coordinator makes (KV with sessions), through the `consul` npm client, each with a
 * timeout and errors mapped to Shoal's Consul error classes. `@shoal/consul` has no KV API, so this stays here.
 */
export class ConsulKv {
  private readonly client: Consul;
  private readonly timeout: number;
  private readonly dc: string | undefined;

  constructor(options: ConsulKvOptions) {
    assertString('url', options.url);
    assertPositiveInteger('requestTimeoutMs', options.requestTimeoutMs);
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new InvalidArgumentError(`url must be an http(s) URL, got ${JSON.stringify(options.url)}`);
    }
    this.client = new Consul({
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      secure: url.protocol === 'https:',
      defaults: { ...(options.token ? { token: options.token } : {}) },
    });
    this.timeout = options.requestTimeoutMs;
    this.dc = options.datacenter;
  }

  private opts<T extends object>(o: T): T & { timeout: number; dc?: string } {
    return { ...o, timeout: this.timeout, ...(this.dc ? { dc: this.dc } : {}) };
  }

  async get(key: string): Promise<ConsulKvItem | undefined> {
    try {
      const item = (await this.client.kv.get(this.opts({ key }) as never)) as unknown as ConsulKvItem | null;
      return item ?? undefined;
    } catch (error) {
      throw mapError(error, `GET kv/${key}`);
    }
  }

  async set(
    key: string,
    value: string,
    extra: { acquire?: string; release?: string; cas?: number } = {},
  ): Promise<boolean> {
    try {
      return Boolean(await this.client.kv.set(this.opts({ key, value, ...extra }) as never));
    } catch (error) {
      throw mapError(error, `PUT kv/${key}`);
    }
  }

  async createSession(name: string, ttlMs: number, lockDelayMs: number): Promise<string> {
    try {
      const r = (await this.client.session.create(
        this.opts({
          name,
          ttl: `${Math.round(ttlMs / 1000)}s`,
          lockdelay: `${lockDelayMs}ms`,
          behavior: 'release',
        }) as never,
      )) as unknown as { ID: string };
      return r.ID;
    } catch (error) {
      throw mapError(error, 'PUT session/create');
    }
  }

  /** Renews a session; resolves false when Consul no longer has it. */
  async renewSession(id: string): Promise<boolean> {
    try {
      const r = (await this.client.session.renew(this.opts({ id }) as never)) as unknown;
      return Array.isArray(r) ? r.length > 0 : Boolean(r);
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      if (status === 404) return false;
      throw mapError(error, `PUT session/renew/${id}`);
    }
  }

  /** Closes the client's keep-alive sockets to Consul (the coordinator calls it last in close()). */
  destroy(): void {
    this.client.destroy();
  }

  async destroySession(id: string): Promise<void> {
    try {
      await this.client.session.destroy(this.opts({ id }) as never);
    } catch (error) {
      throw mapError(error, `PUT session/destroy/${id}`);
    }
  }
}

function mapError(error: unknown, what: string): Error {
  const status = (error as { statusCode?: number }).statusCode;
  const message = error instanceof Error ? error.message : String(error);
  if (status === 403) return new ConsulPermissionError(`Consul refused ${what} (403): ${message}`, { cause: error });
  if (status !== undefined && status >= 400 && status < 500) {
    return new ConsulRequestError(`Consul rejected ${what} (${status}): ${message}`, { cause: error });
  }
  return new ConsulUnavailableError(`Consul ${what} failed: ${message}`, { cause: error });
}
