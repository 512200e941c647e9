import { InvalidArgumentError, assertKnownKeys, assertObject, describeValue } from '@shoal/core';

/** Validates an optional object-valued option and its keys; returns `{}` when undefined. */
export function optionObject(name: string, value: unknown, known: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  assertObject(name, value);
  assertKnownKeys(name, value, known);
  return value;
}

/** A number in [min, max] (inclusive unless `exclusiveMin`), or the default when undefined. */
export function numberOption(
  name: string,
  value: unknown,
  def: number,
  min: number,
  max = Number.POSITIVE_INFINITY,
  opts: { integer?: boolean; exclusiveMin?: boolean } = {},
): number {
  if (value === undefined) return def;
  const ok =
    typeof value === 'number' &&
    !Number.isNaN(value) &&
    (Number.isFinite(value) || max === Number.POSITIVE_INFINITY) &&
    (opts.exclusiveMin ? value > min : value >= min) &&
    value <= max &&
    (!opts.integer || Number.isInteger(value));
  if (!ok) {
    const kind = opts.integer ? 'an integer' : 'a number';
    const lower = opts.exclusiveMin ? `> ${min}` : `>= ${min}`;
    const range = max === Number.POSITIVE_INFINITY ? lower : `${lower} and <= ${max}`;
    throw new InvalidArgumentError(`${name} must be ${kind} ${range}, got ${describeValue(value)}`);
  }
  return value;
}
