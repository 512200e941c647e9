import type * as grpc from '@grpc/grpc-js';
import type { TimerHandle } from '@shoal/core';
import type { CoordinatorMessage, Hello, LoadReport, WireAgentMessage } from '@shoal/protocol';

/** One agent stream, local or relayed to the leader. */
export class AgentSession {
  hello: Hello | undefined;
  lastReport: LoadReport | undefined;
  helloTimer: TimerHandle | undefined;
  closed = false;
  /** Who the stream's hello said it was, before the hello was accepted (for the refusal log). */
  claimed: { service: string; instanceId: string } | undefined;
  /** The service the stream's token belongs to (undefined under --insecure-dev without a token). */
  owner: string | undefined;
  /** Names of the stream's verified client certificate (mutual TLS). */
  peerNames: readonly string[] | undefined;
  constructor(
    readonly call: grpc.ServerDuplexStream<WireAgentMessage, CoordinatorMessage>,
    readonly authorization: string | undefined,
  ) {}

  /** `service/instanceId` once the session said hello. */
  get key(): string | undefined {
    return this.hello ? instanceKey(this.hello.service, this.hello.instanceId) : undefined;
  }

  /** Ends the agent's stream with a status (no-op once closed). */
  fail(code: grpc.status, details: string): void {
    if (!this.closed) this.call.emit('error', { code, details });
  }
}

/** The key sessions, rate limits and drains share: `service/instanceId`. */
export function instanceKey(service: string, instanceId: string): string {
  return `${service}/${instanceId}`;
}
