import http from "node:http";
import type { AddressInfo } from "node:net";
import { CallRecord, EmulatorClock, Fault } from "./clock";
import { Ec2Emulator, Ec2Error, Ec2Timing, requestId, xml } from "./ec2";
import { EcrEmulator } from "./ecr";
import { EcsEmulator, EcsError, EcsTiming } from "./ecs";

export interface EmulatorOptions {
  ecs?: Partial<EcsTiming>;
  ec2?: Partial<Ec2Timing>;
}

const ECS_PREFIX = "AmazonEC2ContainerServiceV20141113.";
const ECR_PREFIX = "AmazonEC2ContainerRegistry_V20150921.";

/**
 * A local emulator of the AWS HTTP APIs the `fargate` and `ec2` targets call: the ECS JSON
 * 1.1 protocol, ECR's GetAuthorizationToken and the EC2 Query protocol, on 127.0.0.1. The real SDK clients talk to it
 * at `endpoint`; signatures are not checked. Every call is recorded (action, time), and
 * faults are injected on demand: throttling, capacity, slow answers, dropped connections.
 */
export class AwsEmulator {
  readonly clock = new EmulatorClock();
  readonly ecs: EcsEmulator;
  readonly ec2: Ec2Emulator;
  readonly ecr = new EcrEmulator();
  readonly calls: CallRecord[] = [];
  private readonly faults: Fault[] = [];
  /** Calls per second above which an action is throttled (what AWS does to a noisy account). */
  private readonly rateLimits = new Map<string, number>();
  private server: http.Server | null = null;
  endpoint = "";

  constructor(opts: EmulatorOptions = {}) {
    this.ecs = new EcsEmulator(this.clock, { phaseMs: 50, defaultRunMs: 100, termMs: 50, killAfterMs: 500, rolloutMs: 200, ...opts.ecs });
    this.ec2 = new Ec2Emulator(this.clock, { phaseMs: 50, defaultRunMs: 100, ...opts.ec2 });
  }

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => this.serve(req, res));
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.endpoint;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The next `times` (default 1) calls of `fault.action` meet the fault. */
  inject(fault: Fault): void {
    this.faults.push({ times: 1, ...fault } as Fault);
  }

  clearFaults(): void {
    this.faults.length = 0;
    this.rateLimits.clear();
  }

  /** Throttles `action` above `perSecond` calls in any 1 s window (accepted calls count). */
  throttleAbove(action: string, perSecond: number): void {
    this.rateLimits.set(action, perSecond);
  }

  count(action: string, since = 0): number {
    return this.calls.filter((c) => c.action === action && c.at >= since).length;
  }

  /** Most calls of `action` in any 1 s sliding window. */
  maxPerSecond(action: string): number {
    const times = this.calls.filter((c) => c.action === action).map((c) => c.at);
    let max = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i] - times[j] >= 1000) j++;
      max = Math.max(max, i - j + 1);
    }
    return max;
  }

  private takeFault(action: string, kind: Fault["kind"]): Fault | null {
    const i = this.faults.findIndex((f) => f.action === action && f.kind === kind);
    if (i === -1) return null;
    const fault = this.faults[i];
    if (fault.times !== undefined && --fault.times <= 0) this.faults.splice(i, 1);
    return fault;
  }

  private overRate(action: string, now: number): boolean {
    const limit = this.rateLimits.get(action);
    if (limit === undefined) return false;
    return this.calls.filter((c) => c.action === action && c.at > now - 1000 && c.accepted).length >= limit;
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const target = String(req.headers["x-amz-target"] ?? "");
      if (target.startsWith(ECS_PREFIX)) void this.serveEcs(target.slice(ECS_PREFIX.length), text, req, res);
      else if (target.startsWith(ECR_PREFIX)) void this.serveEcr(target.slice(ECR_PREFIX.length), req, res);
      else void this.serveEc2(new URLSearchParams(text), req, res);
    });
  }

  /** Records the call and applies the faults that come before an answer; false means the call was refused. */
  private async admit(service: CallRecord["service"], action: string, req: http.IncomingMessage): Promise<{ throttled: boolean; capacity: boolean; drop: boolean }> {
    const now = Date.now();
    const throttled = this.takeFault(action, "throttle") !== null || this.overRate(action, now);
    // SigV4: `Authorization: AWS4-HMAC-SHA256 Credential=<access key id>/<date>/…` (the signature itself is not checked).
    const accessKeyId = /Credential=([^/,\s]+)\//.exec(String(req.headers.authorization ?? ""))?.[1] ?? null;
    this.calls.push({ service, action, at: now, accepted: !throttled, accessKeyId });
    const slow = this.takeFault(action, "slow");
    if (slow && slow.kind === "slow") await new Promise((r) => setTimeout(r, slow.ms));
    return { throttled, capacity: !throttled && this.takeFault(action, "capacity") !== null, drop: !throttled && this.takeFault(action, "drop") !== null };
  }

  private async serveEcs(action: string, text: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const f = await this.admit("ecs", action, req);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": requestId() });
      res.end(JSON.stringify(body));
    };
    if (f.throttled) return send(400, { __type: "ThrottlingException", message: "Rate exceeded" });
    try {
      const out = this.ecs.handle(action, text ? JSON.parse(text) : {}, f.capacity);
      if (f.drop) return void req.socket.destroy(); // the task exists; the caller never hears of it
      send(200, out);
    } catch (err) {
      if (err instanceof EcsError) return send(400, { __type: err.code, message: err.message });
      send(500, { __type: "ServerException", message: (err as Error).message });
    }
  }

  private async serveEcr(action: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const f = await this.admit("ecr", action, req);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": requestId() });
      res.end(JSON.stringify(body));
    };
    if (f.throttled) return send(400, { __type: "ThrottlingException", message: "Rate exceeded" });
    try {
      send(200, this.ecr.handle(action));
    } catch (err) {
      send(400, { __type: (err as { code?: string }).code ?? "ServerException", message: (err as Error).message });
    }
  }

  private async serveEc2(form: URLSearchParams, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const action = form.get("Action") ?? "";
    const f = await this.admit("ec2", action, req);
    const send = (status: number, body: string) => {
      res.writeHead(status, { "content-type": "text/xml;charset=UTF-8" });
      res.end(body);
    };
    const error = (status: number, code: string, message: string) =>
      send(status, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${xml(code)}</Code><Message>${xml(message)}</Message></Error></Errors><RequestID>${requestId()}</RequestID></Response>`);
    if (f.throttled) return error(503, "RequestLimitExceeded", "Request limit exceeded.");
    try {
      const out = this.ec2.handle(action, form, f.capacity);
      if (f.drop) return void req.socket.destroy();
      send(200, `<?xml version="1.0" encoding="UTF-8"?>${out}`);
    } catch (err) {
      if (err instanceof Ec2Error) return error(err.status, err.code, err.message);
      error(500, "InternalError", (err as Error).message);
    }
  }
}

/** Starts an emulator on a free port. */
export async function startAwsEmulator(opts: EmulatorOptions = {}): Promise<AwsEmulator> {
  const emu = new AwsEmulator(opts);
  await emu.start();
  return emu;
}

/** Dummy credentials and region for the SDK's default chain (the emulator accepts any signature). */
export function useDummyAwsCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = "AKIAEMULATOR0000TEST";
  process.env.AWS_SECRET_ACCESS_KEY = "emulator-secret-never-in-a-workload";
  process.env.AWS_REGION = "us-east-1";
  // The SDK warns once per process that its 2027 releases will need Node 22 (we pin the last Node 20 line).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
}
