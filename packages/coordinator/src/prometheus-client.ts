import http from 'node:http';
import https from 'node:https';
import {
  InvalidArgumentError,
  ExternalMetricError,
  TimeoutError,
  assertInteger,
  assertPositiveNumber,
  describeValue,
  isShoalError,
  realClock,
  retry,
  type Clock,
} from '@shoal/core';

/**
 * A small client of Prometheus's HTTP API (`POST /api/v1/query`, instant queries) for external metrics: one number
 * per query. Every attempt has a timeout; failed attempts are retried with core's full-jitter backoff up to
 * `maxAttempts`; a query Prometheus refuses (HTTP 400/422: bad PromQL) is not retried. The `authorization`
 * header value never appears in an error or a log line.
 */

export interface PrometheusClientOptions {
  /** Base URL of the Prometheus server, `http(s)://host:port[/prefix]`. Required. */
  url: string;
  /** Time limit of one attempt, ms. Default 5000. */
  timeoutMs?: number;
  /** Attempts per query (the first included). Default 3. */
  maxAttempts?: number;
  /** Backoff between attempts (full jitter): first ceiling and cap, ms. Default `{ baseMs: 200, capMs: 2000 }`. */
  backoff?: { baseMs?: number; capMs?: number };
  /** Value of the `Authorization` header (`Bearer <token>`, `Basic <base64>`). Default none. */
  authorization?: string;
  /** PEM of the CA(s) that signed Prometheus's certificate (an https url). Default: the system's. */
  ca?: string | Buffer;
  clock?: Clock;
  /** Jitter source (tests). Default Math.random. */
  random?: () => number;
}

export interface ResolvedPrometheusClientOptions {
  readonly url: URL;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly backoff: { readonly baseMs: number; readonly capMs: number };
  readonly authorization?: string;
  readonly ca?: string | Buffer;
}

/** A Prometheus query failed: unreachable, refused (bad query, auth) or not a single number (`SHOAL_ERR_EXTERNAL_METRIC`). */
const PrometheusQueryError = ExternalMetricError;

export function resolvePrometheusClientOptions(input: PrometheusClientOptions): ResolvedPrometheusClientOptions {
  if (typeof input !== 'object' || input === null) {
    throw new InvalidArgumentError(`prometheus options must be an object, got ${describeValue(input)}`);
  }
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw new InvalidArgumentError(`prometheus.url must be an http(s) URL, got ${describeValue(input.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`prometheus.url must be an http(s) URL, got ${describeValue(input.url)}`);
  }
  if (url.username || url.password) {
    throw new InvalidArgumentError('prometheus.url must not carry credentials (use prometheus.authorization)');
  }
  const timeoutMs = input.timeoutMs ?? 5000;
  assertInteger('prometheus.timeoutMs', timeoutMs, 1);
  const maxAttempts = input.maxAttempts ?? 3;
  assertInteger('prometheus.maxAttempts', maxAttempts, 1);
  if (maxAttempts > 10) throw new InvalidArgumentError(`prometheus.maxAttempts must be <= 10, got ${maxAttempts}`);
  const baseMs = input.backoff?.baseMs ?? 200;
  const capMs = input.backoff?.capMs ?? 2000;
  assertPositiveNumber('prometheus.backoff.baseMs', baseMs);
  assertPositiveNumber('prometheus.backoff.capMs', capMs);
  if (input.authorization !== undefined) {
    if (typeof input.authorization !== 'string' || input.authorization.length === 0) {
      throw new InvalidArgumentError('prometheus.authorization must be a non-empty string');
    }
    if (/[\r\n]/.test(input.authorization)) {
      throw new InvalidArgumentError('prometheus.authorization must be one line (no CR or LF)');
    }
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return Object.freeze({
    url,
    timeoutMs,
    maxAttempts,
    backoff: Object.freeze({ baseMs, capMs }),
    ...(input.authorization !== undefined ? { authorization: input.authorization } : {}),
    ...(input.ca !== undefined ? { ca: input.ca } : {}),
  });
}

const MAX_BODY_BYTES = 1024 * 1024;
/** A query text beyond this is refused before it is sent. */
export const MAX_QUERY_LENGTH = 4096;

interface ApiBody {
  status?: unknown;
  data?: { resultType?: unknown; result?: unknown };
  errorType?: unknown;
  error?: unknown;
}

export class PrometheusClient {
  readonly options: ResolvedPrometheusClientOptions;
  private readonly clock: Clock;
  private readonly random: (() => number) | undefined;
  private readonly agent: http.Agent;
  private closed = false;

  constructor(options: PrometheusClientOptions) {
    this.options = resolvePrometheusClientOptions(options);
    this.clock = options.clock ?? realClock;
    this.random = options.random;
    this.agent =
      this.options.url.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 4, ...(this.options.ca ? { ca: this.options.ca } : {}) })
        : new http.Agent({ keepAlive: true, maxSockets: 4 });
  }

  /**
   * Evaluates an instant query and returns its one number: a scalar, or a vector of exactly one sample. An empty
   * vector is 0 (as KEDA's Prometheus scaler does by default: no series means nothing waiting). Several samples,
   * NaN, infinities and negative values are errors (`PrometheusQueryError`).
   */
  async query(promql: string): Promise<number> {
    if (this.closed) throw new PrometheusQueryError('the Prometheus client is closed', { retryable: false });
    if (typeof promql !== 'string' || promql.length === 0 || promql.length > MAX_QUERY_LENGTH) {
      throw new InvalidArgumentError(
        `query must be a string of 1..${MAX_QUERY_LENGTH} characters, got ${describeValue(promql)}`,
      );
    }
    return retry(() => this.attempt(promql), {
      maxAttempts: this.options.maxAttempts,
      baseMs: this.options.backoff.baseMs,
      capMs: this.options.backoff.capMs,
      clock: this.clock,
      ...(this.random ? { random: this.random } : {}),
      shouldRetry: (error) => !isShoalError(error) || error.retryable,
    });
  }

  private async attempt(promql: string): Promise<number> {
    const { status, text } = await this.post('api/v1/query', new URLSearchParams({ query: promql }).toString());
    let body: ApiBody;
    try {
      body = JSON.parse(text) as ApiBody;
    } catch {
      throw new PrometheusQueryError(`Prometheus answered HTTP ${status} with a body that is not JSON`, {
        retryable: status >= 500,
      });
    }
    if (status !== 200 || body.status !== 'success') {
      const why = typeof body.error === 'string' ? body.error.slice(0, 300) : `HTTP ${status}`;
      // 400 bad_data / 422 execution error: the query itself is wrong, another attempt would fail the same way.
      const retryable = status >= 500 || status === 429;
      const kind = typeof body.errorType === 'string' ? `${body.errorType}: ` : '';
      throw new PrometheusQueryError(`Prometheus refused the query (HTTP ${status}): ${kind}${why}`, { retryable });
    }
    return valueOf(body.data);
  }

  private post(path: string, form: string): Promise<{ status: number; text: string }> {
    const url = new URL(path, this.options.url);
    const mod = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string | number> = {
      'content-type': 'application/x-www-form-urlencoded',
      'content-length': Buffer.byteLength(form),
      accept: 'application/json',
    };
    if (this.options.authorization) headers.authorization = this.options.authorization;
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (error: Error | undefined, value?: { status: number; text: string }) => {
        if (settled) return;
        settled = true;
        this.clock.clearTimeout(timer);
        if (error) reject(error);
        else resolve(value!);
      };
      const req = mod.request(url, { method: 'POST', headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) {
            req.destroy();
            done(new PrometheusQueryError(`Prometheus's answer exceeds ${MAX_BODY_BYTES} bytes`, { retryable: false }));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => done(undefined, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', (error) =>
          done(new PrometheusQueryError(`reading Prometheus's answer failed`, { cause: error })),
        );
      });
      const timer = this.clock.setTimeout(() => {
        req.destroy();
        done(
          new TimeoutError(`Prometheus did not answer within ${this.options.timeoutMs} ms (${url.host})`, {
            retryable: true,
          }),
        );
      }, this.options.timeoutMs);
      timer.unref();
      req.on('error', (error: NodeJS.ErrnoException) =>
        done(
          new PrometheusQueryError(`cannot reach Prometheus at ${url.host}: ${error.code ?? error.message}`, {
            cause: error,
          }),
        ),
      );
      req.end(form);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.agent.destroy();
  }
}

function sampleValue(raw: unknown): number {
  // Prometheus encodes sample values as strings ("1.5", "NaN", "+Inf").
  const n = typeof raw === 'string' ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n)) {
    throw new PrometheusQueryError(`the query's value is not a finite number (${describeValue(raw)})`, {
      retryable: false,
    });
  }
  if (n < 0) throw new PrometheusQueryError(`the query's value is negative (${n})`, { retryable: false });
  return n;
}

function valueOf(data: ApiBody['data']): number {
  const type = data?.resultType;
  const result = data?.result;
  if (type === 'scalar' && Array.isArray(result)) return sampleValue(result[1]);
  if (type === 'vector' && Array.isArray(result)) {
    if (result.length === 0) return 0;
    if (result.length > 1) {
      throw new PrometheusQueryError(
        `the query returned ${result.length} series; it must return one number (aggregate it, e.g. sum(...))`,
        { retryable: false },
      );
    }
    const sample = (result[0] as { value?: unknown[] } | undefined)?.value;
    return sampleValue(Array.isArray(sample) ? sample[1] : undefined);
  }
  throw new PrometheusQueryError(
    `the query returned a ${describeValue(type)} result; it must return a scalar or a one-sample vector`,
    { retryable: false },
  );
}
