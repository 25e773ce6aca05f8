import assert from "node:assert";
import { isAssertionError, poll } from "../../lib/testkit/poll";

/**
 * The testkit's `poll`: a failing assertion inside the polled function fails the poll at
 * once with the assertion's own error; any other error only means "not yet".
 *
 * On the code before this fix the first two tests failed: the assertion was swallowed
 * until the deadline and the poll threw "…: not within 2000 ms (last error: expect(received)…)"
 * after 2 s instead of the assertion's own error at once.
 */
describe("poll", () => {
  test("a failing expect fails the poll at once, with the assertion's own error", async () => {
    let calls = 0;
    const started = Date.now();
    const err = await poll(
      () => {
        calls += 1;
        expect(calls).toBe(0);
        return true;
      },
      { timeout: 2000, interval: 10, message: "never" },
    ).then(
      () => null,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(calls).toBe(1);
    expect(isAssertionError(err)).toBe(true);
    expect((err as Error).message).toMatch(/expect\(received\)\.toBe\(expected\)/);
    expect((err as Error).message).not.toMatch(/not within/);
  });

  test("a failing node:assert fails the poll at once, also when it throws after a few tries", async () => {
    let calls = 0;
    const err = await poll(
      async () => {
        calls += 1;
        if (calls < 3) return false;
        assert.strictEqual(calls, 99, "calls reached 3");
        return true;
      },
      { timeout: 2000, interval: 10, message: "never" },
    ).then(
      () => null,
      (e: unknown) => e,
    );
    expect(calls).toBe(3);
    expect(err).toBeInstanceOf(assert.AssertionError);
    expect((err as Error).message).toMatch(/^calls reached 3/);
  });

  test("other errors count as 'not yet': ECONNREFUSED while a node starts, then a value", async () => {
    let calls = 0;
    const value = await poll(
      async () => {
        calls += 1;
        if (calls < 4) throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
        return { ok: calls };
      },
      { timeout: 5000, interval: 5, message: "node up" },
    );
    expect(value).toEqual({ ok: 4 });
  });

  test("at the deadline the error names what was awaited and the last error", async () => {
    let calls = 0;
    const started = Date.now();
    await expect(
      poll(
        () => {
          calls += 1;
          throw new Error(`refused #${calls}`);
        },
        { timeout: 150, interval: 10, message: "gateway up" },
      ),
    ).rejects.toThrow(/^gateway up: not within 150 ms \(last error: refused #\d+\)$/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(calls).toBeGreaterThan(2);
  });

  test("falsy values are 'not yet' and the deadline error has no last error then", async () => {
    await expect(poll(() => 0, { timeout: 60, interval: 10, message: "zero" })).rejects.toThrow(/^zero: not within 60 ms$/);
  });

  test("what counts as an assertion error", () => {
    let jestError: unknown;
    try {
      expect(1).toBe(2);
    } catch (e) {
      jestError = e;
    }
    expect(isAssertionError(jestError)).toBe(true);
    expect(isAssertionError(new assert.AssertionError({ message: "x" }))).toBe(true);
    expect(isAssertionError(Object.assign(new Error("x"), { name: "JestAssertionError" }))).toBe(true);
    expect(isAssertionError(new Error("connect ECONNREFUSED"))).toBe(false);
    expect(isAssertionError(new TypeError("fetch failed"))).toBe(false);
    expect(isAssertionError("AssertionError")).toBe(false);
    expect(isAssertionError(null)).toBe(false);
  });
});
