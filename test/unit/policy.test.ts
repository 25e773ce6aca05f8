import { backoffDelay, compileRetryPolicy, compileTimeouts, DEFAULT_RETRY, shouldRetry } from "../../lib/jobs/policy";

describe("timeouts", () => {
  test("layers apply in order and a job may shorten a timeout", () => {
    const t = compileTimeouts([{ runTimeout: 1000 }, { runTimeout: 2000, startTimeout: 50 }], { runTimeout: 500 }, { runTimeout: 3000 });
    expect(t.runTimeout).toBe(500);
    expect(t.startTimeout).toBe(50);
  });

  test("a job cannot exceed the configured maximum, nor turn a capped timeout off", () => {
    expect(() => compileTimeouts([], { runTimeout: 5000 }, { runTimeout: 3000 })).toThrow(expect.objectContaining({ type: "VALIDATION_FAILED", data: { fields: [expect.objectContaining({ field: "timeouts.runTimeout" })] } }));
    expect(() => compileTimeouts([], { runTimeout: 0 }, { runTimeout: 3000 })).toThrow(/Invalid timeouts/);
  });

  test("timeouts must be whole milliseconds", () => {
    expect(() => compileTimeouts([], { startTimeout: -1 })).toThrow(expect.objectContaining({ data: { fields: [expect.objectContaining({ field: "timeouts.startTimeout" })] } }));
    expect(() => compileTimeouts([], { startTimeout: "5" as unknown as number })).toThrow(/Invalid timeouts/);
  });
});

describe("retry policy", () => {
  test("each bad field is named", () => {
    try {
      compileRetryPolicy([], { maxAttempts: 0, backoffCoefficient: 0.5, jitter: "x" as never, retryOn: ["NOPE" as never] });
      throw new Error("expected a validation error");
    } catch (err: any) {
      expect(err.type).toBe("VALIDATION_FAILED");
      expect(err.data.fields.map((f: any) => f.field).sort()).toEqual(["retry.backoffCoefficient", "retry.jitter", "retry.maxAttempts", "retry.retryOn"]);
    }
  });

  test("maxAttempts is capped by config", () => {
    expect(() => compileRetryPolicy([], { maxAttempts: 11 }, 10)).toThrow(/Invalid retry policy/);
    expect(compileRetryPolicy([], { maxAttempts: 10 }, 10).maxAttempts).toBe(10);
  });

  test("delays grow exponentially to the cap without jitter", () => {
    const p = { ...DEFAULT_RETRY, initialDelay: 100, backoffCoefficient: 2, maxDelay: 500, jitter: "none" as const };
    expect([2, 3, 4, 5].map((n) => backoffDelay(p, n))).toEqual([100, 200, 400, 500]);
  });

  test("full jitter stays within [0, nominal], equal jitter within [nominal/2, nominal]", () => {
    const p = { ...DEFAULT_RETRY, initialDelay: 1000, backoffCoefficient: 2, maxDelay: 60_000 };
    expect(backoffDelay({ ...p, jitter: "full" }, 3, () => 0)).toBe(0);
    expect(backoffDelay({ ...p, jitter: "full" }, 3, () => 0.999999)).toBe(2000);
    expect(backoffDelay({ ...p, jitter: "equal" }, 3, () => 0)).toBe(1000);
    expect(backoffDelay({ ...p, jitter: "equal" }, 3, () => 0.999999)).toBe(2000);
  });

  test("shouldRetry honours attempts, outcomes and a non-retryable error", () => {
    const p = { ...DEFAULT_RETRY, maxAttempts: 3, retryOn: ["EXIT_NONZERO" as const] };
    expect(shouldRetry(p, "EXIT_NONZERO", 1)).toBe(true);
    expect(shouldRetry(p, "EXIT_NONZERO", 3)).toBe(false);
    expect(shouldRetry(p, "WORKER_LOST", 1)).toBe(false);
    expect(shouldRetry(p, "EXIT_NONZERO", 1, false)).toBe(false);
  });
});
