import { allowedFrom, assertTransition, canTransition, FINAL_STATES, isFinal, JOB_STATES, JobState, sourcesOf } from "../../lib/jobs/states";

/** The whole table, written out independently of the module: every pair is checked both ways. */
const EXPECTED: Record<JobState, JobState[]> = {
  queued: ["launching", "cancelled", "timed_out", "failed"],
  launching: ["running", "retrying", "succeeded", "failed", "timed_out", "cancelled"],
  running: ["succeeded", "failed", "timed_out", "retrying", "cancelled"],
  retrying: ["queued", "failed", "timed_out", "cancelled"],
  succeeded: [],
  failed: ["queued"],
  timed_out: ["queued"],
  cancelled: ["queued"],
  rejected: [],
};

describe("job state machine", () => {
  const pairs = JOB_STATES.flatMap((from) => JOB_STATES.map((to) => [from, to] as const));

  test.each(pairs)("%s → %s is allowed exactly when the table says so", (from, to) => {
    const allowed = EXPECTED[from].includes(to);
    expect(canTransition(from, to)).toBe(allowed);
    if (allowed) expect(() => assertTransition(from, to)).not.toThrow();
    else expect(() => assertTransition(from, to)).toThrow(expect.objectContaining({ type: "INVALID_TRANSITION", code: 409 }));
  });

  test("final states lead only back to the queue (operator retry) and every other state can be cancelled", () => {
    for (const s of JOB_STATES) {
      expect(isFinal(s)).toBe(FINAL_STATES.includes(s));
      if (isFinal(s)) expect(allowedFrom(s)).toEqual(s === "succeeded" || s === "rejected" ? [] : ["queued"]);
      else expect(canTransition(s, "cancelled")).toBe(true);
    }
  });

  test("sourcesOf inverts the table", () => {
    expect(sourcesOf("running")).toEqual(["launching"]);
    expect(sourcesOf("queued")).toEqual(["retrying", "failed", "timed_out", "cancelled"]);
    expect(sourcesOf("rejected")).toEqual([]);
  });
});
