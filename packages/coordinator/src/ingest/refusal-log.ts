import type { Clock, Logger } from '@shoal/core';
import type { IngestRefusal, Transport } from './refusal.js';

/** Who sent what was refused, as far as the coordinator can tell (never the token). */
export interface RefusedSender {
  service?: string | undefined;
  instance?: string | undefined;
  /** The connection's remote address (gRPC peer or HTTP socket), used when no instance is known. */
  peer?: string | undefined;
}

export interface RefusalLogOptions {
  /** One line per (reason, service, instance or peer host) at most this often; the rest are counted. Default 60000. */
  intervalMs?: number;
  /** Senders remembered; beyond, lines are dropped until old entries expire. Default 1000. */
  maxKeys?: number;
}

/** Bounds what an untrusted field may put in a log line. */
function clip(value: string | undefined): string | undefined {
  return value === undefined ? undefined : value.slice(0, 128);
}

/** The host of `ipv4:10.0.0.1:5000` / `[::1]:5000` / `10.0.0.1`, so reconnects from one host share a key. */
function peerHost(peer: string | undefined): string | undefined {
  if (peer === undefined) return undefined;
  const bare = peer.replace(/^(ipv4|ipv6):/, '');
  const v6 = /^\[([^\]]+)\]/.exec(bare);
  if (v6) return v6[1];
  const parts = bare.split(':');
  return parts.length === 2 ? parts[0] : bare;
}

/**
 * Logs refused agent reports and streams at `warn`, rate-limited per sender and reason, so a wrong token or a
 * service the coordinator does not serve shows in the log and not only in `shoal_coordinator_reports_refused_total`.
 * A line names the reason, the transport, the service and instance (or the peer's address when the refusal came
 * before any hello) and how many refusals of the same kind were not logged since; never the token.
 */
export class RefusalLog {
  private readonly intervalMs: number;
  private readonly maxKeys: number;
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    options: RefusalLogOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 60_000;
    this.maxKeys = options.maxKeys ?? 1000;
  }

  note(refusal: IngestRefusal, transport: Transport, sender: RefusedSender): void {
    const host = peerHost(sender.peer);
    const key = `${refusal.reason}\u0000${sender.service ?? ''}\u0000${sender.instance ?? host ?? ''}`;
    const now = this.clock.monotonic();
    const entry = this.last.get(key);
    if (entry !== undefined && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    if (entry === undefined && this.last.size >= this.maxKeys) {
      for (const [k, e] of this.last) if (now - e.at >= this.intervalMs) this.last.delete(k);
      if (this.last.size >= this.maxKeys) return;
    }
    const fields = {
      reason: refusal.reason,
      transport,
      details: refusal.message,
      ...(sender.service !== undefined ? { service: clip(sender.service) } : {}),
      ...(sender.instance !== undefined ? { instance: clip(sender.instance) } : {}),
      ...(host !== undefined ? { peer: clip(host) } : {}),
      ...(entry !== undefined && entry.suppressed > 0 ? { suppressed: entry.suppressed } : {}),
    };
    // "no leader yet" is a transient state of a coordinator pair, not a misconfiguration.
    if (refusal.reason === 'unavailable') this.log.debug(fields, 'agent report refused');
    else this.log.warn(fields, 'agent report refused');
    this.last.set(key, { at: now, suppressed: 0 });
  }
}
