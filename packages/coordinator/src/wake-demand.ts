/**
 * Waiting calls reported by clients of a service at zero (`POST /v1/services/:name/wake`): one entry per client
 * (its latest count), forgotten after `demandTtlMs` without a new report. The table is bounded (`MAX_CLIENTS`
 * entries per service) and the count per client too, so what an authenticated client sends costs at most a small,
 * fixed amount; the total only ever reaches the actuator as a replica count capped by maxReplicas.
 */

/** The most calls one client may say are waiting. */
export const MAX_WAITING_PER_CLIENT = 10_000;
/** The most clients a service's table keeps (the oldest is dropped past it). */
export const MAX_CLIENTS = 1000;
const CLIENT_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface WakeReport {
  client: string;
  waiting: number;
}

/** Validates a decoded JSON body: `{ "client": "<id>", "waiting": <0..10000> }`; throws with the reason. */
export function parseWakeReport(body: unknown): WakeReport {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new Error('body must be a JSON object {"client": "...", "waiting": N}');
  }
  const o = body as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'client' && key !== 'waiting') throw new Error(`unknown field ${JSON.stringify(key.slice(0, 64))}`);
  }
  if (typeof o.client !== 'string' || !CLIENT_ID.test(o.client)) {
    throw new Error('client must match [A-Za-z0-9._-]{1,64}');
  }
  const w = o.waiting;
  if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > MAX_WAITING_PER_CLIENT) {
    throw new Error(`waiting must be an integer from 0 to ${MAX_WAITING_PER_CLIENT}`);
  }
  return { client: o.client, waiting: w };
}

/** One service's table of waiting calls by client. */
export class WakeDemand {
  private readonly entries = new Map<string, { waiting: number; atMs: number }>();

  constructor(private ttlMs: number) {}

  setTtl(ttlMs: number): void {
    this.ttlMs = ttlMs;
  }

  /** Records a client's count (0 removes it). */
  record(report: WakeReport, now: number): void {
    this.entries.delete(report.client); // re-inserted last: the map's order is the age order
    if (report.waiting === 0) return;
    this.entries.set(report.client, { waiting: report.waiting, atMs: now });
    while (this.entries.size > MAX_CLIENTS) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** Waiting calls over every client heard from within the TTL. */
  total(now: number): number {
    let n = 0;
    for (const [client, e] of this.entries) {
      if (now - e.atMs > this.ttlMs) this.entries.delete(client);
      else n += e.waiting;
    }
    return n;
  }

  /** Clients with calls waiting now. */
  clients(now: number): number {
    this.total(now);
    return this.entries.size;
  }
}
