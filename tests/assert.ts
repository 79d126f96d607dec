/** Assertions for tests: node:assert/strict with Deno-std-like names. */
import assert from "node:assert/strict";

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message as string);
}

export function assert_(value: unknown, message?: string): asserts value {
  assert.ok(value, message as string);
}
export { assert_ as assert };

/** Asserts that `fn` throws an instance of `ErrorClass` whose message includes `includes`. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ErrorClass, `expected ${ErrorClass.name}, got ${error}`);
    if (includes) {
      assert.ok(String((error as Error).message).includes(includes), (error as Error).message);
    }
    return error as E;
  }
  throw new assert.AssertionError({ message: `expected ${ErrorClass.name} to be thrown` });
}

/** Async variant of {@link assertThrows}. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof ErrorClass, `expected ${ErrorClass.name}, got ${error}`);
    if (includes) {
      assert.ok(String((error as Error).message).includes(includes), (error as Error).message);
    }
    return error as E;
  }
  throw new assert.AssertionError({ message: `expected ${ErrorClass.name} to be rejected` });
}
