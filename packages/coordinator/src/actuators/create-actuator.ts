import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock, Logger } from '@shoal/core';
import type { ActuatorConfig } from '../config.js';
import type { Actuator } from './actuator.js';
import { CommandActuator } from './command.js';
import { KubernetesActuator } from './kubernetes.js';
import { LocalActuator } from './local.js';

export interface ActuatorContext {
  service: string;
  coordinatorUrl?: string;
  coordinatorToken?: string;
  /** Where local replicas' guards keep their records, so a restarted coordinator adopts them (config `stateDir`). */
  stateDir?: string;
  /** Environment local replicas and commands inherit (the CLI passes `process.env`). */
  baseEnv?: Readonly<Record<string, string | undefined>>;
  /** For the command actuator, the count to report before its first scale. */
  initialReplicas?: number;
  /** Overrides the Kubernetes client configuration (tests, or an application that loaded its own). */
  kubeConfig?: KubeConfig;
  logger?: Logger;
  clock?: Clock;
}

/** Builds the actuator a service's config names. */
export function createActuator(config: ActuatorConfig, ctx: ActuatorContext): Actuator {
  const common = {
    ...(ctx.logger ? { logger: ctx.logger } : {}),
    ...(ctx.clock ? { clock: ctx.clock } : {}),
  };
  switch (config.type) {
    case 'local':
      return new LocalActuator({
        service: ctx.service,
        command: config.command,
        args: config.args,
        env: config.env,
        host: config.host,
        stopTimeoutMs: config.stopTimeoutMs,
        orphanGraceMs: config.orphanGraceMs,
        restartBackoff: config.restartBackoff,
        ...(config.cwd ? { cwd: config.cwd } : {}),
        ...(ctx.stateDir ? { stateDir: ctx.stateDir } : {}),
        ...(ctx.baseEnv ? { baseEnv: ctx.baseEnv } : {}),
        ...(ctx.coordinatorUrl ? { coordinatorUrl: ctx.coordinatorUrl } : {}),
        ...(ctx.coordinatorToken ? { coordinatorToken: ctx.coordinatorToken } : {}),
        ...common,
      });
    case 'kubernetes':
      return new KubernetesActuator({
        kind: config.kind,
        name: config.name,
        namespace: config.namespace,
        requestTimeoutMs: config.requestTimeoutMs,
        ...(config.podSelector ? { podSelector: config.podSelector } : {}),
        ...(ctx.kubeConfig ? { kubeConfig: ctx.kubeConfig } : {}),
        ...(config.kubeconfig ? { kubeconfigPath: config.kubeconfig } : {}),
        ...common,
      });
    case 'command':
      return new CommandActuator({
        service: ctx.service,
        args: config.args,
        timeoutMs: config.timeoutMs,
        ...(config.command ? { command: config.command } : {}),
        ...(config.webhook ? { webhook: config.webhook } : {}),
        ...(config.cwd ? { cwd: config.cwd } : {}),
        ...(ctx.baseEnv ? { baseEnv: ctx.baseEnv } : {}),
        ...(ctx.initialReplicas !== undefined ? { initialReplicas: ctx.initialReplicas } : {}),
        ...common,
      });
  }
}
