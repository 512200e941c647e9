import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '@shoal/core';
import { parseBearer } from '@shoal/protocol';
import type { CoordinatorConfig } from './config.js';

export type AuthResult = { ok: true } | { ok: false; status: 'unauthenticated' | 'permission_denied'; reason: string };

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * Bearer-token checks for agents. One token per service: a report for service S must carry S's token. Tokens are
 * compared as SHA-256 digests with `timingSafeEqual`, so the comparison time does not depend on how much of a
 * token matches (nor on its length). Every configured token is compared on each check, so timing does not reveal
 * which service a token belongs to either.
 */
export class TokenAuthenticator {
  private readonly digests: ReadonlyMap<string, Buffer>;

  constructor(
    tokens: ReadonlyMap<string, string>,
    readonly insecureDev = false,
  ) {
    const map = new Map<string, Buffer>();
    for (const [service, token] of tokens) map.set(service, digest(token));
    this.digests = map;
  }

  /** Services that have a token. */
  get services(): string[] {
    return [...this.digests.keys()];
  }

  /**
   * Who a stream's token belongs to, before it says anything (a stream is authenticated when it opens, so an
   * anonymous one never counts against a limit). `service` is undefined under --insecure-dev without a token: such
   * a stream may only say hello for a service without a token.
   */
  identify(
    authorization: string | undefined,
  ): { ok: true; service: string | undefined } | (AuthResult & { ok: false }) {
    const token = parseBearer(authorization);
    if (token === undefined) {
      if (this.insecureDev) return { ok: true, service: undefined };
      return { ok: false, status: 'unauthenticated', reason: 'missing "authorization: Bearer <token>"' };
    }
    const owner = this.owner(token);
    if (owner === undefined) return { ok: false, status: 'unauthenticated', reason: 'the bearer token is not valid' };
    return { ok: true, service: owner };
  }

  private owner(token: string): string | undefined {
    const presented = digest(token);
    let owner: string | undefined;
    for (const [name, d] of this.digests) {
      if (timingSafeEqual(d, presented) && owner === undefined) owner = name;
    }
    return owner;
  }

  /**
   * `authorization` is the raw header value (`Bearer <token>`), or undefined. `service` is the service the request
   * claims to report for.
   */
  check(service: string, authorization: string | undefined): AuthResult {
    // --insecure-dev: a service without a token accepts anyone; services with a token still require it.
    if (this.insecureDev && !this.digests.has(service)) return { ok: true };
    const token = parseBearer(authorization);
    if (token === undefined) {
      return { ok: false, status: 'unauthenticated', reason: 'missing "authorization: Bearer <token>"' };
    }
    const owner = this.owner(token);
    if (owner === undefined) {
      return { ok: false, status: 'unauthenticated', reason: 'the bearer token is not valid' };
    }
    if (owner !== service) {
      return { ok: false, status: 'permission_denied', reason: `the token is not valid for service "${service}"` };
    }
    return { ok: true };
  }
}

/**
 * Collects each service's token (inline or from `tokenFile`, relative to `baseDir`). Throws `ConfigError` when
 * no service has a token and `insecureDev` is off: the coordinator refuses to start unauthenticated.
 */
export async function resolveServiceTokens(
  config: CoordinatorConfig,
  baseDir = process.cwd(),
): Promise<Map<string, string>> {
  const tokens = new Map<string, string>();
  for (const [i, s] of config.services.entries()) {
    if (s.token) tokens.set(s.name, s.token);
    else if (s.tokenFile) {
      tokens.set(s.name, await readTokenFile(`services[${i}].tokenFile`, baseDir, s.tokenFile));
    }
  }
  if (!config.insecureDev) {
    const missing = config.services.map((s, i) => [s, i] as const).filter(([s]) => !tokens.has(s.name));
    if (missing.length > 0) {
      throw new ConfigError(
        `refusing to start without agent authentication: ${missing
          .map(([s, i]) => `services[${i}] ("${s.name}")`)
          .join(', ')} has no token or tokenFile (set one, or run with --insecure-dev on a laptop)`,
      );
    }
  }
  return tokens;
}

/** Reads a token file (trimmed, at least 16 characters). Errors name the field and the path, never the content. */
export async function readTokenFile(field: string, baseDir: string, file: string): Promise<string> {
  const path = resolve(baseDir, file);
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (error) {
    // The value is not shown: a token pasted where its file's path belongs would be printed otherwise.
    throw new ConfigError(
      `${field}: cannot read the file it names (${(error as NodeJS.ErrnoException).code ?? 'error'}; a path of ` +
        `${file.length} characters relative to ${baseDir}; the value is not shown in case it is the token itself)`,
    );
  }
  if (text.length < 16) {
    throw new ConfigError(`${field}: the token in the file must be at least 16 characters`);
  }
  return text;
}

/** The HTTP API's tokens: the operator token (`api.token[File]`) and the read token (`api.readToken[File]`). */
export async function resolveApiTokens(
  config: CoordinatorConfig,
  baseDir = process.cwd(),
): Promise<{ operator: string | undefined; read: string | undefined }> {
  const api = config.api;
  const operator =
    api?.token ?? (api?.tokenFile ? await readTokenFile('api.tokenFile', baseDir, api.tokenFile) : undefined);
  const read =
    api?.readToken ??
    (api?.readTokenFile ? await readTokenFile('api.readTokenFile', baseDir, api.readTokenFile) : undefined);
  return { operator, read };
}

/** Each service's wake token (`services[].wake.token[File]`): clients present it with their waiting-call counts. */
export async function resolveWakeTokens(
  config: CoordinatorConfig,
  baseDir = process.cwd(),
): Promise<Map<string, string>> {
  const tokens = new Map<string, string>();
  for (const [i, s] of config.services.entries()) {
    const wake = s.wake;
    if (!wake) continue;
    if (wake.token) tokens.set(s.name, wake.token);
    else if (wake.tokenFile)
      tokens.set(s.name, await readTokenFile(`services[${i}].wake.tokenFile`, baseDir, wake.tokenFile));
  }
  return tokens;
}

/** The token KEDA must send as `scalerMetadata.token` (`keda.token[File]`), if any. */
export async function resolveKedaToken(
  config: CoordinatorConfig,
  baseDir = process.cwd(),
): Promise<string | undefined> {
  const keda = config.keda;
  return keda.token ?? (keda.tokenFile ? await readTokenFile('keda.tokenFile', baseDir, keda.tokenFile) : undefined);
}

/** A constant-time check of `authorization` against one token. */
export function bearerMatches(token: string, authorization: string | undefined): boolean {
  const presented = parseBearer(authorization);
  return presented !== undefined && timingSafeEqual(digest(presented), digest(token));
}

/** Resolves a config file's directory for relative `tokenFile`s. */
export function configBaseDir(configPath: string | undefined): string {
  return configPath ? dirname(resolve(configPath)) : process.cwd();
}
