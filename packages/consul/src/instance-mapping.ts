import { MAX_INSTANCE_WEIGHT, createInstance, type Instance } from '@shoal/core';
import type { HealthServiceEntry } from './consul-client.js';

/**
 * Maps one `/v1/health/service` entry to an `Instance`:
 * id = Service.ID, service = Service.Service, address = Service.Address || Node.Address, port = Service.Port,
 * zone = Service.Meta.zone, weight = Service.Meta.weight || Service.Weights.Passing || 1 (rounded, clamped to
 * 1..10000), tags = Service.Tags, meta = Service.Meta.
 * Throws `InvalidArgumentError` naming the field when the entry cannot describe a reachable instance.
 */
export function instanceFromHealthEntry(entry: HealthServiceEntry): Instance {
  const svc = entry?.Service ?? {};
  const meta = svc.Meta ?? {};
  const address = svc.Address || entry?.Node?.Address || '';
  const zone = typeof meta.zone === 'string' && meta.zone.length > 0 ? meta.zone : undefined;
  return createInstance({
    id: svc.ID as string,
    service: svc.Service as string,
    address,
    port: svc.Port as number,
    ...(zone !== undefined ? { zone } : {}),
    weight: weightOf(meta.weight, svc.Weights?.Passing),
    tags: svc.Tags ?? [],
    meta,
  });
}

function weightOf(metaWeight: string | undefined, passing: number | undefined): number {
  const fromMeta = metaWeight === undefined ? NaN : Number(metaWeight);
  const raw = Number.isFinite(fromMeta) && fromMeta > 0 ? fromMeta : Number(passing);
  if (!Number.isFinite(raw) || raw <= 0) return 1;
  return Math.min(MAX_INSTANCE_WEIGHT, Math.max(1, Math.round(raw)));
}

/** Sorted by id, so equal sets come out in equal order whatever order Consul used. */
export function compareInstances(a: Instance, b: Instance): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
