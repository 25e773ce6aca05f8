import { loadWorkerEnv, parseLabels } from "../../lib/config/worker-env";
import { matches, parseSelector } from "../../plugins/targets/pool/selector";

describe("pool worker labels and selectors", () => {
  test("WORKER_LABELS and selectors parse k=v lists; a worker matches when it has every selected label", () => {
    expect(parseLabels("gpu=true, zone=a ,")).toEqual({ gpu: "true", zone: "a" });
    expect(() => parseLabels("gpu")).toThrow(expect.objectContaining({ type: "CONFIG_INVALID" }));
    expect(parseSelector("zone=a")).toEqual({ zone: "a" });
    expect(parseSelector(undefined)).toEqual({});
    expect(() => parseSelector("=a")).toThrow(expect.objectContaining({ type: "LAUNCH_FAILED", retryable: false }));
    expect(matches({ gpu: "true", zone: "a" }, { zone: "a" })).toBe(true);
    expect(matches({ zone: "b" }, { zone: "a" })).toBe(false);
    expect(matches({}, {})).toBe(true);
  });

  test("a worker node needs a transporter; capacity and grace are bounded whole numbers", () => {
    expect(() => loadWorkerEnv({})).toThrow(expect.objectContaining({ type: "CONFIG_INVALID" }));
    const env = loadWorkerEnv({ TRANSPORTER: "redis://127.0.0.1:6379", WORKER_CAPACITY: "3", WORKER_LABELS: "zone=a", NODE_ID: "w1" }, "/tmp");
    expect(env).toMatchObject({ capacity: 3, labels: { zone: "a" }, nodeId: "w1", namespace: "blacktree", dataDir: "/tmp/data-worker" });
    expect(() => loadWorkerEnv({ TRANSPORTER: "redis://x", WORKER_CAPACITY: "0" })).toThrow(expect.objectContaining({ type: "CONFIG_INVALID" }));
  });
});
