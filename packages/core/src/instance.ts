import { InvalidArgumentError } from './errors.js';
import {
  assertInteger,
  assertObject,
  assertPort,
  assertString,
  assertStringArray,
  assertStringRecord,
  describeValue,
} from './validate.js';

/** One running replica of a service, as discovery, balancing and scaling see it. */
export interface Instance {
  /** Unique instance id (Consul's service ID). */
  readonly id: string;
  /** Logical service name, e.g. `orders`. */
  readonly service: string;
  /** IPv4/IPv6 address or host name the instance listens on. */
  readonly address: string;
  readonly port: number;
  /** Availability zone, if known. */
  readonly zone?: string;
  /** Relative weight for weighted strategies, an integer in [1, 10000]. Default 1. */
  readonly weight: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
}

export interface InstanceInput {
  id: string;
  service: string;
  address: string;
  port: number;
  zone?: string;
  weight?: number;
  tags?: readonly string[];
  meta?: Readonly<Record<string, string>>;
}

export const MAX_INSTANCE_WEIGHT = 10_000;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Validates `input` and returns a frozen `Instance` with defaults applied. */
export function createInstance(input: InstanceInput): Instance {
  assertObject('instance', input);
  assertString('instance.id', input.id, { maxLength: 256 });
  assertString('instance.service', input.service, { maxLength: 128 });
  if (!NAME_RE.test(input.service)) {
    throw new InvalidArgumentError(
      `instance.service must start with a letter or digit and hold only letters, digits, '.', '_' and '-', got ${describeValue(input.service)}`,
    );
  }
  assertString('instance.address', input.address, { maxLength: 255 });
  assertPort('instance.port', input.port);
  if (input.zone !== undefined) assertString('instance.zone', input.zone, { maxLength: 128 });
  const weight = input.weight ?? 1;
  assertInteger('instance.weight', weight, 1, MAX_INSTANCE_WEIGHT);
  const tags = input.tags ?? [];
  assertStringArray('instance.tags', tags);
  const meta = input.meta ?? {};
  assertStringRecord('instance.meta', meta);
  return Object.freeze({
    id: input.id,
    service: input.service,
    address: input.address,
    port: input.port,
    ...(input.zone !== undefined ? { zone: input.zone } : {}),
    weight,
    tags: Object.freeze([...tags]),
    meta: Object.freeze({ ...meta }),
  });
}

/** `address:port`, bracketing IPv6 literals. */
export function instanceAddress(instance: Pick<Instance, 'address' | 'port'>): string {
  return instance.address.includes(':')
    ? `[${instance.address}]:${instance.port}`
    : `${instance.address}:${instance.port}`;
}

/** True when two instances are the same in every field that matters to balancing and scaling. */
export function instancesEqual(a: Instance, b: Instance): boolean {
  if (
    a.id !== b.id ||
    a.service !== b.service ||
    a.address !== b.address ||
    a.port !== b.port ||
    a.zone !== b.zone ||
    a.weight !== b.weight ||
    a.tags.length !== b.tags.length
  ) {
    return false;
  }
  for (let i = 0; i < a.tags.length; i++) if (a.tags[i] !== b.tags[i]) return false;
  const ak = Object.keys(a.meta);
  if (ak.length !== Object.keys(b.meta).length) return false;
  for (const k of ak) if (a.meta[k] !== b.meta[k]) return false;
  return true;
}

/** True when two lists hold the same instances (by id and content), in any order. */
export function instanceSetsEqual(a: readonly Instance[], b: readonly Instance[]): boolean {
  if (a.length !== b.length) return false;
  const byId = new Map(a.map((i) => [i.id, i]));
  for (const inst of b) {
    const other = byId.get(inst.id);
    if (!other || !instancesEqual(other, inst)) return false;
  }
  return true;
}
