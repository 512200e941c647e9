import type { IncomingMessage, ServerResponse } from 'node:http';
import { responseToJson } from '@shoal/protocol';
import { isShoalError, type MetricsRegistry } from '@shoal/core';
import type { DecisionRecord } from './control-loop.js';
import { IngestRefusal, type Ingest } from './ingest.js';
import type { RolloutStatus } from './rollout/rollout.js';
import { tlsSocketPeerNames } from './peer-identity.js';
import { FORWARDED_HEADER, type LeaderAnswer } from './leader-view.js';
import { ROLLOUT_ERROR_CODES } from './rollout/rollout-error.js';
import type { InstanceView } from './service-window.js';

/** One service in `GET /v1/services`. */
export interface ServiceStatus {
  name: string;
  actuator: string;
  minReplicas: number;
  maxReplicas: number;
  currentReplicas?: number;
  desiredReplicas?: number;
  lastDecision?: DecisionRecord;
  /** The local actuator's rollout, in short (`GET /v1/services/:name/rollout` has all of it). */
  rollout?: {
    state: RolloutStatus['state'];
    paused: boolean;
    from?: string;
    to?: string;
    reason?: string;
    warning?: string;
  };
  instances: InstanceView[];
}

/** One target group of Prometheus `http_sd_configs`. */
export interface SdTargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

export interface HttpApiDeps {
  ingest: Ingest;
  registry: MetricsRegistry;
  maxBodyBytes: number;
  services(): ServiceStatus[];
  decisions(service: string): DecisionRecord[] | undefined;
  /** The service's rollout; undefined when it has none (not a local actuator) or does not exist. */
  rollout?(service: string): RolloutStatus | undefined;
  rolloutAction?(service: string, action: 'pause' | 'resume' | 'undo'): Promise<RolloutStatus>;
  /** Checks the operator token of the rollout routes (reads and writes). */
  apiAccess?(authorization: string | undefined, write: boolean): 'ok' | 'unauthenticated' | 'forbidden';
  sd(): SdTargetGroup[];
  /**
   * A follower's answer to a read (`GET /v1/services`, `/v1/services/:name[/decisions|/rollout]`, `/v1/sd`): the
   * leader's answer, with the caller's `authorization`. Undefined: this coordinator answers itself (it leads, or
   * runs alone). Rejects when the leader cannot be asked (answered 503 with `retry-after`).
   */
  proxy?(path: string, authorization: string | undefined): Promise<LeaderAnswer> | undefined;
  ready(): { ready: boolean; reason: string };
  info(): Record<string, unknown>;
  /**
   * Checks the read token of a request (`authorization: Bearer <readToken>`) for everything but `/healthz`,
   * `/readyz` and `POST /v1/report` (agents' own tokens). Undefined: the read API is open (no `readToken` set).
   */
  checkRead?(authorization: string | undefined): boolean;
  /**
   * `POST /v1/services/:name/wake`, before its body is read: undefined when `authorization` carries the service's
   * wake token; else the refusal (401, 404).
   */
  wakeAccess?(service: string, authorization: string | undefined): { status: number; body: unknown } | undefined;
  /**
   * A client's waiting-call count (the decoded JSON body, validated there): recorded by the leader, forwarded to
   * the leader by a follower (`forwardedBy`: the follower that relayed this request, if one did).
   */
  wake?(service: string, body: unknown, request: WakeRequestInfo): WakeAnswer | Promise<WakeAnswer>;
}

export interface WakeRequestInfo {
  authorization: string | undefined;
  forwardedBy: string | undefined;
}

export interface WakeAnswer {
  status: number;
  body: unknown;
  /** Who answered, when a follower forwarded it (`x-shoal-answered-by`). */
  answeredBy?: 'leader';
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new IngestRefusal(8, 413, 'invalid', `body larger than ${limit} bytes`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size > limit) return; // already refused: the rest is discarded until the 413 closes the connection
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        reject(new IngestRefusal(8, 413, 'invalid', `body larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * The coordinator's HTTP API (node:http): status, decisions, JSON report ingestion, Prometheus metrics and
 * HTTP service discovery, health and readiness.
 */
export function createHttpHandler(deps: HttpApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(deps, req, res).catch(() => {
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  };
}

async function handle(deps: HttpApiDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // The path is taken as sent, never parsed as a URL: `//evil.example/v1/services` is a path that matches no route
  // (not `/v1/services` on another host), and nothing about it can throw.
  const raw = req.url ?? '/';
  const query = raw.indexOf('?');
  const path = (query < 0 ? raw : raw.slice(0, query)).replace(/(?<=.)\/+$/, '');
  const method = req.method ?? 'GET';
  const allow = (methods: string[]): boolean => {
    if (methods.includes(method)) return true;
    send(res, 405, { error: `method ${method} not allowed on ${path}` }, { allow: methods.join(', ') });
    return false;
  };

  if (path === '/healthz') {
    if (allow(['GET', 'HEAD'])) send(res, 200, { status: 'ok' });
    return;
  }
  if (path === '/readyz') {
    if (!allow(['GET', 'HEAD'])) return;
    const r = deps.ready();
    send(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', reason: r.reason });
    return;
  }
  if (path === '/v1/report') {
    await handleReport(deps, req, res, allow);
    return;
  }
  const wake = /^\/v1\/services\/([^/]+)\/wake$/.exec(path);
  if (wake) {
    await handleWake(deps, req, res, wake[1] as string, allow);
    return;
  }
  if (deps.checkRead && !deps.checkRead(headerValue(req.headers.authorization))) {
    send(
      res,
      401,
      {
        error: ROLLOUT_WRITE.test(path)
          ? OPERATOR_TOKEN_NEEDED
          : 'this endpoint needs the read token ("authorization: Bearer <readToken>")',
      },
      {
        'www-authenticate': 'Bearer realm="shoal-coordinator"',
      },
    );
    return;
  }
  // A follower answers reads with the leader's view (GET only: writes and /metrics stay local).
  const proxyable = path === '/v1/sd' || path === '/v1/services' || /^\/v1\/services\/[^/]+(\/decisions)?$/.test(path);
  if (proxyable && method === 'GET' && (await answerFromLeader(deps, req, res, path))) return;
  if (path === '/metrics') {
    if (!allow(['GET'])) return;
    const text = await deps.registry.metrics();
    res.writeHead(200, { 'content-type': deps.registry.contentType });
    res.end(text);
    return;
  }
  if (path === '/v1/sd') {
    if (allow(['GET'])) send(res, 200, deps.sd());
    return;
  }
  if (path === '/v1/services') {
    if (allow(['GET'])) send(res, 200, { coordinator: deps.info(), services: deps.services() });
    return;
  }
  const ro = /^\/v1\/services\/([^/]+)\/rollout(?:\/(pause|resume|undo))?$/.exec(path);
  if (ro) {
    await handleRollout(deps, req, res, ro[1] as string, ro[2] as 'pause' | 'resume' | 'undo' | undefined);
    return;
  }
  const m = /^\/v1\/services\/([^/]+)(\/decisions)?$/.exec(path);
  if (m) {
    if (!allow(['GET'])) return;
    let name: string;
    try {
      name = decodeURIComponent(m[1] as string);
    } catch {
      send(res, 400, { error: 'invalid percent-escape in the service name' });
      return;
    }
    if (m[2]) {
      const list = deps.decisions(name);
      if (!list) send(res, 404, { error: `no service "${name}"` });
      else send(res, 200, { service: name, decisions: list });
    } else {
      const s = deps.services().find((x) => x.name === name);
      if (!s) send(res, 404, { error: `no service "${name}"` });
      else send(res, 200, s);
    }
    return;
  }
  send(res, 404, { error: `no route ${method} ${path}` });
}

/** The rollout's writes: only the operator token steers a rollout. */
const ROLLOUT_WRITE = /^\/v1\/services\/[^/]+\/rollout\/(pause|resume|undo)$/;
const OPERATOR_TOKEN_NEEDED =
  'pausing, resuming or undoing a rollout needs the operator token (api.token or api.tokenFile; the read token only reads): "authorization: Bearer <token>"';

/**
 * `GET /v1/services/:name/rollout` and `POST .../rollout/{pause,resume,undo}`, behind the `api` token (writes are
 * refused without one unless insecureDev).
 */
async function handleRollout(
  deps: HttpApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
  rawName: string,
  action: 'pause' | 'resume' | 'undo' | undefined,
): Promise<void> {
  const method = req.method ?? 'GET';
  const allowed = action ? ['POST'] : ['GET'];
  if (!allowed.includes(method)) {
    send(res, 405, { error: `method ${method} not allowed here` }, { allow: allowed.join(', ') });
    return;
  }
  req.resume(); // no body is read on these routes
  const access = deps.apiAccess?.(headerValue(req.headers.authorization), action !== undefined) ?? 'forbidden';
  if (access === 'unauthenticated') {
    send(
      res,
      401,
      {
        error: action
          ? OPERATOR_TOKEN_NEEDED
          : 'this endpoint needs the read token or the operator token ("authorization: Bearer <token>")',
      },
      { 'www-authenticate': 'Bearer' },
    );
    return;
  }
  if (access === 'forbidden') {
    send(res, 403, { error: 'rollout writes need an api token in the config (api.token or api.tokenFile)' });
    return;
  }
  let name: string;
  try {
    name = decodeURIComponent(rawName);
  } catch {
    send(res, 400, { error: 'invalid percent-escape in the service name' });
    return;
  }
  if (!deps.services().some((s) => s.name === name)) {
    send(res, 404, { error: `no service "${name}"` });
    return;
  }
  if (!action) {
    if (await answerFromLeader(deps, req, res, `/v1/services/${rawName}/rollout`)) return;
    const status = deps.rollout?.(name);
    if (!status)
      send(res, 404, {
        error: `service "${name}" has no rollouts (only the local actuator rolls out)`,
        code: 'SHOAL_ERR_ROLLOUT_UNSUPPORTED',
      });
    else send(res, 200, status);
    return;
  }
  try {
    if (!deps.rolloutAction) throw new Error('rollouts are not available');
    send(res, 200, await deps.rolloutAction(name, action));
  } catch (error) {
    const code = isShoalError(error) ? error.code : undefined;
    send(res, code !== undefined && code in ROLLOUT_ERROR_CODES ? 409 : 500, {
      error: (error as Error).message,
      ...(code ? { code } : {}),
    });
  }
}

async function handleReport(
  deps: HttpApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
  allow: (methods: string[]) => boolean,
): Promise<void> {
  if (!allow(['POST'])) return;
  try {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type)) {
      throw new IngestRefusal(3, 415, 'invalid', 'content-type must be application/json');
    }
    const body = await readBody(req, deps.maxBodyBytes);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new IngestRefusal(3, 400, 'invalid', 'body is not valid JSON');
    }
    const { reportFromJson } = await import('@shoal/protocol');
    let request;
    try {
      request = reportFromJson(parsed);
    } catch (error) {
      throw new IngestRefusal(3, 400, 'invalid', (error as Error).message);
    }
    const response = await deps.ingest.acceptUnary(
      request,
      headerValue(req.headers.authorization),
      'http',
      false,
      deps.ingest.checksPeers ? tlsSocketPeerNames(req.socket) : undefined,
      req.socket.remoteAddress,
    );
    send(res, 200, responseToJson(response));
  } catch (error) {
    if (error instanceof IngestRefusal) {
      // A refused body may still be arriving: answer, then close the connection rather than read it all.
      const close: Record<string, string> = error.httpStatus === 413 ? { connection: 'close' } : {};
      send(res, error.httpStatus, { error: error.message, reason: error.reason }, close);
    } else {
      send(res, 500, { error: 'internal error' });
    }
  }
}

/**
 * `POST /v1/services/:name/wake` (its own token, checked before the body is read: an anonymous client costs nothing
 * but the refusal). The body is at most 1 KiB.
 */
async function handleWake(
  deps: HttpApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
  rawName: string,
  allow: (methods: string[]) => boolean,
): Promise<void> {
  if (!allow(['POST'])) return;
  let name: string;
  try {
    name = decodeURIComponent(rawName);
  } catch {
    req.resume();
    send(res, 400, { error: 'invalid percent-escape in the service name' });
    return;
  }
  const refusal =
    deps.wake && deps.wakeAccess
      ? deps.wakeAccess(name, headerValue(req.headers.authorization))
      : { status: 404, body: { error: 'waking on client calls is not available' } };
  if (refusal || !deps.wake || !deps.wakeAccess) {
    // Refused before the body is read: an anonymous client costs nothing but this answer.
    req.resume();
    const r = refusal ?? { status: 404, body: {} };
    const headers: Record<string, string> =
      r.status === 401 ? { 'www-authenticate': 'Bearer' } : r.status === 503 ? { 'retry-after': '1' } : {};
    send(res, r.status, r.body, headers);
    return;
  }
  try {
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      throw new IngestRefusal(3, 415, 'invalid', 'content-type must be application/json');
    }
    const raw = await readBody(req, 1024);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new IngestRefusal(3, 400, 'invalid', 'body is not valid JSON');
    }
    const answer = await deps.wake(name, parsed, {
      authorization: headerValue(req.headers.authorization),
      forwardedBy: headerValue(req.headers[FORWARDED_HEADER]),
    });
    const headers: Record<string, string> = answer.status === 503 ? { 'retry-after': '1' } : {};
    if (answer.answeredBy) headers['x-shoal-answered-by'] = answer.answeredBy;
    send(res, answer.status, answer.body, headers);
  } catch (error) {
    if (error instanceof IngestRefusal) {
      send(res, error.httpStatus, { error: error.message }, error.httpStatus === 413 ? { connection: 'close' } : {});
    } else send(res, 500, { error: 'internal error' });
  }
}

/** On a follower: sends the leader's answer to this read (or 503 when it cannot be asked) and returns true. */
async function answerFromLeader(
  deps: HttpApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<boolean> {
  const pending = deps.proxy?.(path, headerValue(req.headers.authorization));
  if (!pending) return false;
  try {
    const answer = await pending;
    let body = answer.body;
    if (path === '/v1/services' && answer.status === 200) {
      // The services are the leader's; `coordinator` still says who answered (this follower) and for whom.
      const parsed = JSON.parse(body.toString('utf8')) as { coordinator?: { id?: unknown } };
      const info = deps.info();
      body = Buffer.from(
        JSON.stringify({ ...parsed, coordinator: { ...info, answeredBy: parsed.coordinator?.id ?? info.leaderId } }),
      );
    }
    res.writeHead(answer.status, {
      'content-type': answer.contentType,
      'content-length': body.length,
      'cache-control': 'no-store',
      'x-shoal-answered-by': 'leader',
    });
    res.end(body);
  } catch (error) {
    send(res, 503, { error: (error as Error).message }, { 'retry-after': '1' });
  }
  return true;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
