import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import {
  ActuatorError,
  ClosedError,
  EventEmitter,
  InvalidArgumentError,
  assertPositiveInteger,
  assertString,
  componentLogger,
  realClock,
  retry,
  type Clock,
  type Disposable,
  type Logger,
} from '@shoal/core';
import { isInstanceId } from '@shoal/protocol';
import { redactSecrets } from '../redact.js';
import type { Actuator, ReplicaInfo, ScaleOptions } from './actuator.js';

export interface CommandActuatorOptions {
  service: string;
  /** Run this program (no shell) with `args`; `{replicas}`, `{service}` and `{victims}` in args are substituted. */
  command?: string;
  args?: readonly string[];
  cwd?: string;
  /** Environment for the command (the CLI passes `process.env`). */
  baseEnv?: Readonly<Record<string, string | undefined>>;
  /** Or POST to this URL, signed with HMAC-SHA256 of `<timestamp>.<body>` under `secret`. */
  webhook?: { url: string; secret: string };
  /** Per attempt. Default 10000. */
  timeoutMs?: number;
  /** Webhook attempts on network errors and 5xx. Default 3. */
  maxAttempts?: number;
  /** The count `getReplicas()` reports before the first scale. Default 0. */
  initialReplicas?: number;
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
}

/** Header carrying `sha256=<hex>` of HMAC-SHA256(secret, `${timestamp}.${body}`). */
export const SIGNATURE_HEADER = 'x-shoal-signature';
export const TIMESTAMP_HEADER = 'x-shoal-timestamp';

/** The signature a webhook receiver recomputes to check a request (compare with `timingSafeEqual`). */
export function signWebhookBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

const MAX_OUTPUT = 4096;

/**
 * The `command` actuator, for platforms Shoal has no built-in actuator for: it runs a command (no shell; the
 * desired count is an argument and `SHOAL_DESIRED_REPLICAS` in its environment) or calls a webhook with an
 * HMAC-signed JSON body. It cannot read the platform's count, so `getReplicas()` returns the last count it set.
 */
export class CommandActuator implements Actuator {
  readonly type = 'command';
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly changes = new EventEmitter<number>();
  private current: number;
  /** Aborted by close(): stops running commands, webhook calls and the waits between webhook attempts. */
  private readonly closing = new AbortController();
  private readonly running = new Set<ChildProcess>();
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly options: CommandActuatorOptions) {
    assertString('service', options.service);
    if ((options.command === undefined) === (options.webhook === undefined)) {
      throw new InvalidArgumentError('command actuator needs exactly one of "command" or "webhook"');
    }
    if (options.webhook) {
      assertString('webhook.url', options.webhook.url);
      assertString('webhook.secret', options.webhook.secret);
      if (!/^https?:\/\//.test(options.webhook.url)) {
        throw new InvalidArgumentError(
          `webhook.url must be an http(s) URL, got ${JSON.stringify(options.webhook.url)}`,
        );
      }
    }
    this.timeoutMs = options.timeoutMs ?? 10_000;
    assertPositiveInteger('timeoutMs', this.timeoutMs);
    this.maxAttempts = options.maxAttempts ?? 3;
    assertPositiveInteger('maxAttempts', this.maxAttempts);
    this.current = options.initialReplicas ?? 0;
    this.log = componentLogger(options.logger, 'command-actuator', { service: options.service });
    this.clock = options.clock ?? realClock;
  }

  async getReplicas(): Promise<number> {
    return this.current;
  }

  assumeReplicas(replicas: number): void {
    if (Number.isInteger(replicas) && replicas >= 0) this.current = replicas;
  }

  replicas(): readonly ReplicaInfo[] {
    return [];
  }

  watch(listener: (replicas: number) => void): Disposable {
    return this.changes.event(listener);
  }

  async scaleTo(replicas: number, options: ScaleOptions = {}): Promise<void> {
    if (!Number.isInteger(replicas) || replicas < 0) {
      throw new InvalidArgumentError(`replicas must be an integer >= 0, got ${replicas}`);
    }
    if (this.closing.signal.aborted) throw new ClosedError('command actuator is closed');
    // Only ids of the one grammar reach the command (never an option, a path or a second list item) or the webhook.
    const victims = (options.victims ?? []).filter((id) => {
      if (isInstanceId(id)) return true;
      this.log.warn({ victim: JSON.stringify(id).slice(0, 80) }, 'victim id outside the instance grammar; not passed');
      return false;
    });
    const call = this.options.webhook ? this.callWebhook(replicas, victims) : this.runCommand(replicas, victims);
    this.pending.add(call);
    try {
      await call;
    } finally {
      this.pending.delete(call);
    }
    if (replicas !== this.current) {
      this.current = replicas;
      this.changes.emit(replicas);
    }
  }

  /** Stops a running command (SIGTERM) or webhook call, so nothing outlives the actuator; its scaleTo rejects. */
  async close(): Promise<void> {
    this.closing.abort();
    for (const child of this.running) child.kill('SIGTERM');
    await Promise.allSettled([...this.pending]);
    this.changes.clear();
  }

  /** Command output as it may appear in logs and errors (and so in the decision log and the API). */
  private redact(text: string): string {
    return redactSecrets(
      text,
      [this.options.webhook?.secret ?? ''].filter((x) => x.length > 0),
    );
  }

  private runCommand(replicas: number, victims: string[]): Promise<void> {
    const subst = (s: string) =>
      s
        .replaceAll('{replicas}', String(replicas))
        .replaceAll('{service}', this.options.service)
        .replaceAll('{victims}', victims.join(','));
    const args = (this.options.args ?? []).map(subst);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.options.baseEnv ?? {})) if (v !== undefined) env[k] = v;
    Object.assign(env, {
      SHOAL_SERVICE: this.options.service,
      SHOAL_DESIRED_REPLICAS: String(replicas),
      SHOAL_VICTIMS: victims.join(','),
    });
    const command = this.options.command as string;
    return new Promise<void>((resolve, reject) => {
      const child = spawn(command, args, {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(this.options.cwd ? { cwd: this.options.cwd } : {}),
      });
      this.running.add(child);
      let output = '';
      const collect = (chunk: Buffer) => {
        if (output.length < MAX_OUTPUT) output += chunk.toString('utf8').slice(0, MAX_OUTPUT - output.length);
      };
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      const timer = this.clock.setTimeout(() => {
        child.kill('SIGKILL');
        reject(new ActuatorError(`command "${command}" did not finish within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      timer.unref();
      child.once('error', (error) => {
        this.running.delete(child);
        this.clock.clearTimeout(timer);
        reject(new ActuatorError(`cannot run command "${command}": ${error.message}`, { cause: error }));
      });
      child.once('close', (code, signal) => {
        this.running.delete(child);
        this.clock.clearTimeout(timer);
        if (code === 0) {
          this.log.info({ replicas, output: this.redact(output.trim().slice(0, 500)) }, 'command ran');
          resolve();
        } else {
          reject(
            new ActuatorError(
              `command "${command}" failed (${signal ? `signal ${signal}` : `exit code ${code}`}): ${this.redact(output.trim().slice(-500))}`,
            ),
          );
        }
      });
    });
  }

  private async callWebhook(replicas: number, victims: string[]): Promise<void> {
    const { url, secret } = this.options.webhook as { url: string; secret: string };
    const body = JSON.stringify({ service: this.options.service, desiredReplicas: replicas, victims });
    await retry(
      async (attempt) => {
        const timestamp = String(this.clock.now());
        const controller = new AbortController();
        const timer = this.clock.setTimeout(() => controller.abort(), this.timeoutMs);
        timer.unref();
        let response: Response;
        try {
          response = await fetch(url, {
            method: 'POST',
            body,
            signal: AbortSignal.any([controller.signal, this.closing.signal]),
            headers: {
              'content-type': 'application/json',
              [TIMESTAMP_HEADER]: timestamp,
              [SIGNATURE_HEADER]: signWebhookBody(secret, timestamp, body),
            },
          });
          await response.arrayBuffer().catch(() => undefined);
        } catch (error) {
          throw new ActuatorError(
            `webhook ${new URL(url).origin} unreachable (attempt ${attempt + 1}): ${controller.signal.aborted ? `timed out after ${this.timeoutMs} ms` : this.closing.signal.aborted ? 'actuator closed' : (error as Error).message}`,
            { cause: error, retryable: !this.closing.signal.aborted },
          );
        } finally {
          this.clock.clearTimeout(timer);
        }
        if (!response.ok) {
          throw new ActuatorError(`webhook ${new URL(url).origin} answered HTTP ${response.status}`, {
            retryable: response.status >= 500 || response.status === 429,
          });
        }
        this.log.info({ replicas }, 'webhook accepted');
      },
      {
        maxAttempts: this.maxAttempts,
        baseMs: 200,
        capMs: 5000,
        clock: this.clock,
        signal: this.closing.signal,
        ...(this.options.random ? { random: this.options.random } : {}),
        shouldRetry: (error) => (error as ActuatorError).retryable === true,
      },
    );
  }
}
