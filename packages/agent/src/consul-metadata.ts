/**
 * Consul service `Meta` keys the agent sets so Prometheus's `consul_sd_configs` can find each instance's metrics
 * (see the README for the relabelling). Meta keys are limited to [A-Za-z0-9_-] by Consul.
 */
export const METRICS_PORT_META_KEY = 'shoal_metrics_port';
export const METRICS_PATH_META_KEY = 'shoal_metrics_path';
/** Lets a coordinator find the instance's agent by Consul instance. */
export const AGENT_META_KEY = 'shoal_agent';
