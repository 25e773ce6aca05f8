import { randomBytes } from "node:crypto";
import { EmulatorClock, scriptFrom, WorkerScript } from "./clock";

/** An EC2 API error: the server answers the Query protocol's `<Response><Errors>…` XML. */
export class Ec2Error extends Error {
  constructor(readonly code: string, message: string, readonly status = 400) {
    super(message);
  }
}

interface EmulatedInstance {
  id: string;
  reservationId: string;
  clientToken: string | null;
  imageId: string;
  instanceType: string;
  tags: Record<string, string>;
  userData: string;
  shutdownBehavior: string;
  subnetId: string | null;
  securityGroups: string[];
  instanceProfile: string | null;
  launchedAt: number;
  script: WorkerScript;
  terminatedAt: number | null;
}

export interface Ec2Timing {
  /** Time spent pending, and shutting down. */
  phaseMs: number;
  defaultRunMs: number;
}

const USER_DATA_LIMIT = 16 * 1024;
const STATE_CODES: Record<string, number> = { pending: 0, running: 16, "shutting-down": 32, terminated: 48, stopping: 64, stopped: 80 };
const NS = "http://ec2.amazonaws.com/doc/2016-11-15/";

/** EC2 as far as the `ec2` target uses it: RunInstances, DescribeInstances, TerminateInstances; time-scripted instances. */
export class Ec2Emulator {
  readonly instances = new Map<string, EmulatedInstance>();
  private readonly byToken = new Map<string, string>();

  constructor(private readonly clock: EmulatorClock, readonly timing: Ec2Timing) {}

  handle(action: string, form: URLSearchParams, capacityFault: boolean): string {
    switch (action) {
      case "RunInstances":
        return this.runInstances(form, capacityFault);
      case "DescribeInstances":
        return this.describeInstances(form);
      case "TerminateInstances":
        return this.terminateInstances(form);
      default:
        throw new Ec2Error("InvalidAction", `The emulator does not implement ${action}`);
    }
  }

  /** Instances launched with this tag value (test assertions). */
  instancesTagged(key: string, value: string): EmulatedInstance[] {
    return [...this.instances.values()].filter((i) => i.tags[key] === value);
  }

  /** The user data as the instance would run it (decoded). */
  userDataOf(id: string): string {
    return Buffer.from(this.instances.get(id)?.userData ?? "", "base64").toString("utf8");
  }

  private runInstances(form: URLSearchParams, capacityFault: boolean): string {
    const token = form.get("ClientToken");
    if (token && token.length > 64) throw new Ec2Error("InvalidParameterValue", "ClientToken must be at most 64 characters");
    const known = token && this.byToken.get(token);
    if (known && this.instances.has(known)) return this.reservationXml("RunInstancesResponse", [this.instances.get(known)!]);
    if (capacityFault) throw new Ec2Error("InsufficientInstanceCapacity", "We currently do not have sufficient capacity in the Availability Zone you requested.", 500);
    const imageId = form.get("ImageId");
    if (!imageId) throw new Ec2Error("MissingParameter", "The request must contain the parameter ImageId");
    const userData = form.get("UserData") ?? "";
    const raw = Buffer.from(userData, "base64");
    if (raw.toString("base64") !== userData) throw new Ec2Error("InvalidParameterValue", "Invalid BASE64 encoding of user data.");
    if (raw.length > USER_DATA_LIMIT) throw new Ec2Error("InvalidParameterValue", "User data is limited to 16384 bytes");
    const tags: Record<string, string> = {};
    for (let i = 1; form.has(`TagSpecification.${i}.ResourceType`); i++) {
      if (form.get(`TagSpecification.${i}.ResourceType`) !== "instance") continue;
      for (let j = 1; form.has(`TagSpecification.${i}.Tag.${j}.Key`); j++) tags[form.get(`TagSpecification.${i}.Tag.${j}.Key`)!] = form.get(`TagSpecification.${i}.Tag.${j}.Value`) ?? "";
    }
    const env: Record<string, string> = {};
    for (const m of raw.toString("utf8").matchAll(/BLACKTREE_TEST_([A-Z_]+)=([^'\s]*)/g)) env[`BLACKTREE_TEST_${m[1]}`] = m[2];
    const inst: EmulatedInstance = {
      id: `i-${randomBytes(8).toString("hex").slice(0, 17)}`,
      reservationId: `r-${randomBytes(8).toString("hex").slice(0, 17)}`,
      clientToken: token,
      imageId,
      instanceType: form.get("InstanceType") ?? "m1.small",
      tags,
      userData,
      shutdownBehavior: form.get("InstanceInitiatedShutdownBehavior") ?? "stop",
      subnetId: form.get("SubnetId"),
      securityGroups: listParam(form, "SecurityGroupId"),
      instanceProfile: form.get("IamInstanceProfile.Arn") ?? form.get("IamInstanceProfile.Name"),
      launchedAt: this.clock.now(),
      script: scriptFrom(env, this.timing.defaultRunMs),
      terminatedAt: null,
    };
    this.instances.set(inst.id, inst);
    if (token) this.byToken.set(token, inst.id);
    return this.reservationXml("RunInstancesResponse", [inst]);
  }

  private describeInstances(form: URLSearchParams): string {
    const ids = listParam(form, "InstanceId");
    const filters: Array<{ name: string; values: string[] }> = [];
    for (let i = 1; form.has(`Filter.${i}.Name`); i++) {
      const values = listParam(form, `Filter.${i}.Value`);
      if (values.length > 200) throw new Ec2Error("InvalidParameterValue", "The maximum number of filter values specified on a single call is 200");
      filters.push({ name: form.get(`Filter.${i}.Name`)!, values });
    }
    for (const id of ids) if (!this.instances.has(id)) throw new Ec2Error("InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
    const matching = [...this.instances.values()].filter((inst) => (ids.length === 0 || ids.includes(inst.id)) && filters.every((f) => this.matches(inst, f)));
    const start = Number(form.get("NextToken") ?? 0);
    const size = Number(form.get("MaxResults") ?? 1000);
    const page = matching.slice(start, start + size);
    const next = start + size < matching.length ? `<nextToken>${start + size}</nextToken>` : "";
    const reservations = page.map((inst) => `<item><reservationId>${inst.reservationId}</reservationId><ownerId>000000000000</ownerId><groupSet/><instancesSet>${this.instanceXml(inst)}</instancesSet></item>`);
    return `<DescribeInstancesResponse xmlns="${NS}"><requestId>${requestId()}</requestId><reservationSet>${reservations.join("")}</reservationSet>${next}</DescribeInstancesResponse>`;
  }

  private terminateInstances(form: URLSearchParams): string {
    const ids = listParam(form, "InstanceId");
    const items = ids.map((id) => {
      const inst = this.instances.get(id);
      if (!inst) throw new Ec2Error("InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
      const previous = this.state(inst);
      if (inst.terminatedAt === null && previous !== "terminated" && previous !== "shutting-down") inst.terminatedAt = this.clock.now();
      const current = this.state(inst);
      return `<item><instanceId>${id}</instanceId><currentState><code>${STATE_CODES[current]}</code><name>${current}</name></currentState><previousState><code>${STATE_CODES[previous]}</code><name>${previous}</name></previousState></item>`;
    });
    return `<TerminateInstancesResponse xmlns="${NS}"><requestId>${requestId()}</requestId><instancesSet>${items.join("")}</instancesSet></TerminateInstancesResponse>`;
  }

  private matches(inst: EmulatedInstance, f: { name: string; values: string[] }): boolean {
    if (f.name === "instance-state-name") return f.values.includes(this.state(inst));
    if (f.name === "tag-key") return f.values.some((k) => k in this.tagsOf(inst));
    if (f.name.startsWith("tag:")) return f.values.includes(this.tagsOf(inst)[f.name.slice(4)]);
    throw new Ec2Error("InvalidParameterValue", `The filter '${f.name}' is not supported by the emulator`);
  }

  /** The worker tags its exit code just before it powers off (the user data's last steps). */
  private tagsOf(inst: EmulatedInstance): Record<string, string> {
    const endedAt = this.selfEndAt(inst);
    const killedFirst = inst.terminatedAt !== null && inst.terminatedAt < endedAt;
    return this.clock.now() >= endedAt && !killedFirst && !inst.script.untagged ? { ...inst.tags, "blacktree.exit-code": String(inst.script.exit) } : inst.tags;
  }

  private selfEndAt(inst: EmulatedInstance): number {
    return inst.launchedAt + this.timing.phaseMs + inst.script.runMs;
  }

  private state(inst: EmulatedInstance): string {
    const now = this.clock.now();
    const downAt = Math.min(inst.terminatedAt ?? Infinity, this.selfEndAt(inst));
    if (now >= downAt) {
      const shutdownEnds = downAt + this.timing.phaseMs;
      if (inst.terminatedAt === null && inst.shutdownBehavior !== "terminate") return now < shutdownEnds ? "stopping" : "stopped";
      return now < shutdownEnds ? "shutting-down" : "terminated";
    }
    return now < inst.launchedAt + this.timing.phaseMs ? "pending" : "running";
  }

  private instanceXml(inst: EmulatedInstance): string {
    const state = this.state(inst);
    const tags = Object.entries(this.tagsOf(inst)).map(([k, v]) => `<item><key>${xml(k)}</key><value>${xml(v)}</value></item>`).join("");
    return `<item><instanceId>${inst.id}</instanceId><imageId>${xml(inst.imageId)}</imageId><instanceState><code>${STATE_CODES[state]}</code><name>${state}</name></instanceState><instanceType>${xml(inst.instanceType)}</instanceType><launchTime>${new Date(inst.launchedAt).toISOString()}</launchTime>${inst.clientToken ? `<clientToken>${xml(inst.clientToken)}</clientToken>` : ""}<tagSet>${tags}</tagSet></item>`;
  }

  private reservationXml(root: string, list: EmulatedInstance[]): string {
    return `<${root} xmlns="${NS}"><requestId>${requestId()}</requestId><reservationId>${list[0].reservationId}</reservationId><ownerId>000000000000</ownerId><groupSet/><instancesSet>${list.map((i) => this.instanceXml(i)).join("")}</instancesSet></${root}>`;
  }
}

function listParam(form: URLSearchParams, prefix: string): string[] {
  const values: string[] = [];
  for (let i = 1; form.has(`${prefix}.${i}`); i++) values.push(form.get(`${prefix}.${i}`)!);
  return values;
}

export function xml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export function requestId(): string {
  return randomBytes(16).toString("hex");
}
