import { InvalidArgumentError } from './errors.js';

/** Renders a received value for an error message without dumping whole objects. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'function') return 'a function';
  return `an ${typeof value}`;
}

function fail(name: string, expectation: string, value: unknown): never {
  throw new InvalidArgumentError(`${name} must be ${expectation}, got ${describeValue(value)}`);
}

export function assertObject(name: string, value: unknown): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(name, 'an object', value);
}

export function assertString(
  name: string,
  value: unknown,
  opts: { maxLength?: number; pattern?: RegExp } = {},
): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) fail(name, 'a non-empty string', value);
  if (opts.maxLength !== undefined && value.length > opts.maxLength)
    fail(name, `a string of at most ${opts.maxLength} characters`, value);
  if (opts.pattern && !opts.pattern.test(value)) fail(name, `a string matching ${String(opts.pattern)}`, value);
}

export function assertFiniteNumber(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(name, 'a finite number', value);
}

export function assertNonNegativeNumber(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(name, 'a finite number >= 0', value);
}

export function assertPositiveNumber(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(name, 'a finite number > 0', value);
}

export function assertInteger(
  name: string,
  value: unknown,
  min = Number.MIN_SAFE_INTEGER,
  max = Number.MAX_SAFE_INTEGER,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range =
      min === Number.MIN_SAFE_INTEGER && max === Number.MAX_SAFE_INTEGER
        ? 'an integer'
        : max === Number.MAX_SAFE_INTEGER
          ? `an integer >= ${min}`
          : `an integer between ${min} and ${max}`;
    fail(name, range, value);
  }
}

export function assertPositiveInteger(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) fail(name, 'a positive integer', value);
}

export function assertPort(name: string, value: unknown): asserts value is number {
  assertInteger(name, value, 0, 65535);
}

export function assertBoolean(name: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') fail(name, 'a boolean', value);
}

export function assertOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
    fail(name, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, value);
}

export function assertStringArray(name: string, value: unknown): asserts value is string[] {
  if (!Array.isArray(value)) fail(name, 'an array of strings', value);
  value.forEach((v, i) => assertString(`${name}[${i}]`, v));
}

export function assertStringRecord(name: string, value: unknown): asserts value is Record<string, string> {
  assertObject(name, value);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') fail(`${name}.${k}`, 'a string', v);
  }
}

/** Rejects keys of `value` that are not in `known`, naming the first unknown one. */
export function assertKnownKeys(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new InvalidArgumentError(
        `${name} has an unknown option ${JSON.stringify(key)}; known options: ${known.join(', ')}`,
      );
    }
  }
}
