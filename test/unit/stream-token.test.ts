import { randomBytes } from "node:crypto";
import { CallbackTokens } from "../../lib/auth/callback-token";
import { redactTokenInUrl, STREAM_TOKEN_TTL_MS, StreamTokens } from "../../lib/auth/stream-token";
import { parseEventPosition } from "../../lib/gateway/event-stream";
import { numberedLines, parseLogPosition } from "../../lib/gateway/log-follow";

const secret = randomBytes(32);
const alice = { name: "alice", role: "submitter" as const };

describe("stream tokens", () => {
  const tokens = new StreamTokens(secret);

  test("a token carries its scope and caller, and opens for 60 s", () => {
    const now = 1_800_000_000_000;
    const { token, expiresAt } = tokens.issue({ kind: "job", jobId: "job_1" }, alice, now);
    expect(expiresAt).toBe(now + STREAM_TOKEN_TTL_MS);
    expect(tokens.verify(token, now + 59_999)).toEqual({ scope: { kind: "job", jobId: "job_1" }, caller: alice, exp: expiresAt });
    expect(tokens.verify(token, now + 60_001)).toBeNull();
    const events = tokens.issue({ kind: "events" }, { name: "ops", role: "operator" }, now).token;
    expect(tokens.verify(events, now)?.scope).toEqual({ kind: "events" });
  });

  test("a changed payload, another secret, a worker token or garbage is no token", () => {
    const { token } = tokens.issue({ kind: "job", jobId: "job_1" }, alice);
    const [prefix, payload, sig] = token.split(".");
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const forged = `${prefix}.${Buffer.from(JSON.stringify({ ...claims, r: "admin" })).toString("base64url")}.${sig}`;
    expect(tokens.verify(forged)).toBeNull();
    expect(new StreamTokens(randomBytes(32)).verify(token)).toBeNull();
    // Same secret, different label: a worker's callback token never opens a stream, nor the reverse.
    const worker = new CallbackTokens(secret).issue("job_1", 1, "job_1:1", 60_000);
    expect(tokens.verify(worker)).toBeNull();
    expect(tokens.verify(`bts.${worker}`)).toBeNull();
    expect(new CallbackTokens(secret).verify(token)).toBeNull();
    for (const bad of ["", "bts", "bts..", "bts.a.b.c", "x.y.z"]) expect(tokens.verify(bad)).toBeNull();
  });

  test("request URLs are logged without the token", () => {
    expect(redactTokenInUrl("/api/jobs/j/events?token=bts.abc.def&lastEventId=4")).toBe("/api/jobs/j/events?token=[redacted]&lastEventId=4");
    expect(redactTokenInUrl("/api/events?state=queued&TOKEN=bts.x.y")).toBe("/api/events?state=queued&TOKEN=[redacted]");
    expect(redactTokenInUrl("/api/jobs?state=queued")).toBe("/api/jobs?state=queued");
  });
});

describe("stream positions", () => {
  test("event positions are whole non-negative numbers", () => {
    expect(parseEventPosition(undefined)).toBeNull();
    expect(parseEventPosition("")).toBeNull();
    expect(parseEventPosition("42")).toBe(42);
    for (const bad of ["-1", "1.5", "abc", "1e3", "9".repeat(16)]) expect(parseEventPosition(bad)).toBe("invalid");
  });

  test("log positions are <attempt>:<line>; stored lines are numbered from the count posted", () => {
    expect(parseLogPosition("2:17")).toEqual({ attempt: 2, line: 17 });
    expect(parseLogPosition(null)).toBeNull();
    for (const bad of ["2", "a:b", "2:-1", "17"]) expect(parseLogPosition(bad)).toBe("invalid");
    // 10 lines posted, the store kept the last 3.
    expect(numberedLines({ log: "h\ni\nj", logLines: 10 })).toEqual([
      { n: 8, line: "h" },
      { n: 9, line: "i" },
      { n: 10, line: "j" },
    ]);
    expect(numberedLines({ log: null, logLines: 0 })).toEqual([]);
    // An ended attempt's log from its target may hold more lines than were posted.
    expect(numberedLines({ log: "a\nb", logLines: 0 }).map((l) => l.n)).toEqual([1, 2]);
  });
});
