import { assertObject } from '@shoal/core';

/** `assertObject` without narrowing the static type (our inputs are already typed). */
export function checkObject(name: string, value: unknown): void {
  assertObject(name, value);
}
