/**
 * The one assertion module of the tests: `node:assert/strict` (std's asserts cannot be installed
 * here) and a few conveniences over it. Tests import assertions from here only
 * (tests/layout_test.ts checks it), so every file reads the same.
 * @module
 */

import assertStrict from "node:assert/strict";

/**
 * `node:assert/strict` itself: `assert(value)` asserts a truthy value, and `assert.equal`,
 * `assert.deepEqual`, `assert.match`, `assert.rejects`... are the strict assertions.
 */
export const assert: typeof assertStrict = assertStrict;
export default assertStrict;

/** The strict assertions by name, for files that import them one by one. */
export const deepEqual: typeof assertStrict.deepEqual = assertStrict.deepEqual;
export const deepStrictEqual: typeof assertStrict.deepStrictEqual = assertStrict.deepStrictEqual;
export const doesNotMatch: typeof assertStrict.doesNotMatch = assertStrict.doesNotMatch;
export const equal: typeof assertStrict.equal = assertStrict.equal;
export const match: typeof assertStrict.match = assertStrict.match;
export const notEqual: typeof assertStrict.notEqual = assertStrict.notEqual;
export const ok: typeof assertStrict.ok = assertStrict.ok;
export const rejects: typeof assertStrict.rejects = assertStrict.rejects;
export const throws: typeof assertStrict.throws = assertStrict.throws;

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
