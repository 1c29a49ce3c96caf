/**
 * Small conveniences over `node:assert/strict` (std's asserts cannot be installed here).
 * @module
 */

import assertStrict from "node:assert/strict";

/** Assert a value is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  assertStrict.ok(value, message);
}

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assertStrict.deepStrictEqual(actual, expected, message);
}

/** Assert `fn` throws an instance of `type`, and return the error. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  type: new (...args: any[]) => E,
): E {
  try {
    fn();
  } catch (e) {
    assertStrict.ok(e instanceof type, `expected ${type.name}, got ${e}`);
    return e as E;
  }
  throw new assertStrict.AssertionError({ message: `expected ${type.name} to be thrown` });
}

/** Assert a promise rejects with an instance of `type`, and return the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  type: new (...args: any[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    assertStrict.ok(e instanceof type, `expected ${type.name}, got ${e}`);
    return e as E;
  }
  throw new assertStrict.AssertionError({ message: `expected ${type.name} to be rejected` });
}

/** Assert `text` contains `part`. */
export function assertIncludes(text: string, part: string): void {
  assertStrict.ok(
    text.includes(part),
    `expected ${JSON.stringify(text)} to include ${JSON.stringify(part)}`,
  );
}
