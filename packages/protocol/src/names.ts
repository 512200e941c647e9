/**
 * The one name grammar of Shoal: service names, instance ids and metric names, as agents send them, as the
 * coordinator's config names them, and as actuators see them. An agent whose names pass here is never refused
 * for a name by a coordinator configured for its service. Documented in docs/protocol.md ("Names").
 */

export interface NameRule {
  readonly pattern: RegExp;
  readonly maxLength: number;
  /** The rule in words, for error messages. */
  readonly description: string;
}

/**
 * Service names: 1–63 characters of `a-z 0-9 _ . -`, starting with a letter or digit. Lowercase only: Consul's DNS
 * interface and Kubernetes names are case-insensitive/lowercase, so `Orders` and `orders` would be one service.
 */
export const SERVICE_NAME: NameRule = Object.freeze({
  pattern: /^[a-z0-9][a-z0-9_.-]{0,62}$/,
  maxLength: 63,
  description: '1-63 characters of a-z, 0-9, "_", ".", "-", starting with a letter or digit',
});

/**
 * Instance ids: 1–128 characters of `A-Z a-z 0-9 _ . : -`, starting with a letter or digit. No `/`, `,`, spaces or
 * a leading `-`/`.`: an id never becomes a path segment, a list separator or a command-line option.
 */
export const INSTANCE_ID: NameRule = Object.freeze({
  pattern: /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/,
  maxLength: 128,
  description: '1-128 characters of A-Z, a-z, 0-9, "_", ".", ":", "-", starting with a letter or digit',
});

/** Metric names (custom report metrics, policy targets): Prometheus-style, 1–64 characters. */
export const METRIC_NAME: NameRule = Object.freeze({
  pattern: /^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/,
  maxLength: 64,
  description: '1-64 characters of a-z, A-Z, 0-9, "_", not starting with a digit',
});

/** Whether `value` is a string that follows `rule`. */
export function isName(rule: NameRule, value: unknown): value is string {
  return typeof value === 'string' && value.length <= rule.maxLength && rule.pattern.test(value);
}

export const isServiceName = (value: unknown): value is string => isName(SERVICE_NAME, value);
export const isInstanceId = (value: unknown): value is string => isName(INSTANCE_ID, value);
export const isMetricName = (value: unknown): value is string => isName(METRIC_NAME, value);
