import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError, componentLogger, errorFields, type Clock, type Logger } from '@shoal/core';
import type { PrometheusConfig } from './config.js';
import { PrometheusClient } from './prometheus-client.js';

/** One external metric of a service: a PromQL query whose number is the service's value of `metric`. */
export interface ExternalMetric {
  metric: string;
  query: string;
}

/** What one read of a service's external metrics gave: the values, and why the others are missing. */
export interface ExternalMetricsReading {
  values: Record<string, number>;
  /** One line per failed query, for the decision log: `external metric queue_depth: <why>`. */
  problems: string[];
}

/** What the control loop needs of a service's external metrics. */
export interface ExternalMetricsReader {
  read(): Promise<ExternalMetricsReading>;
}

/**
 * The external metrics of one service, read from Prometheus once per control-loop tick (all queries at once). A
 * query that fails (unreachable server, timeout after the client's retries, bad PromQL, not one number) leaves its
 * metric out: the target then has no value and the HPA's missing-metric rules apply (no scale-down on it); the
 * reason goes into the decision log. The query text is operator config, never from an agent.
 */
export class ExternalMetricsSource implements ExternalMetricsReader {
  private readonly log: Logger;

  constructor(
    private readonly service: string,
    private readonly metrics: readonly ExternalMetric[],
    private readonly client: PrometheusClient,
    logger?: Logger,
  ) {
    this.log = componentLogger(logger, 'external-metrics', { service });
  }

  get size(): number {
    return this.metrics.length;
  }

  async read(): Promise<ExternalMetricsReading> {
    const values: Record<string, number> = {};
    const problems: string[] = [];
    await Promise.all(
      this.metrics.map(async (m) => {
        try {
          values[m.metric] = await this.client.query(m.query);
        } catch (error) {
          const why = (error as Error).message;
          problems.push(`external metric ${m.metric}: ${why}`);
          this.log.warn({ metric: m.metric, ...errorFields(error) }, 'external metric query failed');
        }
      }),
    );
    return { values, problems };
  }
}

/**
 * The coordinator's Prometheus client from its `prometheus` config section (the authorization read from its file,
 * relative to `baseDir`; errors name the field, never the value).
 */
export async function createPrometheusClient(
  config: PrometheusConfig,
  baseDir: string,
  clock: Clock,
): Promise<PrometheusClient> {
  let authorization = config.authorization;
  if (config.authorizationFile) {
    try {
      authorization = (await readFile(resolve(baseDir, config.authorizationFile), 'utf8')).trim();
    } catch (error) {
      throw new ConfigError(
        `prometheus.authorizationFile: cannot read the file it names (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    if (authorization.length === 0) throw new ConfigError('prometheus.authorizationFile: the file is empty');
  }
  let ca: Buffer | undefined;
  if (config.caFile) {
    try {
      ca = await readFile(resolve(baseDir, config.caFile));
    } catch (error) {
      throw new ConfigError(
        `prometheus.caFile: cannot read ${config.caFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  return new PrometheusClient({
    url: config.url,
    timeoutMs: config.timeoutMs,
    maxAttempts: config.maxAttempts,
    backoff: config.backoff,
    ...(authorization ? { authorization } : {}),
    ...(ca ? { ca } : {}),
    clock,
  });
}
