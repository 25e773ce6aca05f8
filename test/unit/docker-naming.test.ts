import { containerLabels, containerName } from "../../plugins/targets/docker/naming";

describe("docker container names and labels", () => {
  test("names are deterministic, Docker-valid, at most 63 characters, and collision-free", () => {
    const keys = ["job_abc:1", "job_abc:2", "JOB_ABC:1", "job/abc:1", "job abc:1", "x".repeat(500), "x".repeat(501), ":::", "é:1"];
    const names = keys.map((k) => containerName("blacktree", k));
    expect(new Set(names).size).toBe(keys.length);
    for (const name of names) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/);
    }
    expect(containerName("blacktree", "job_abc:1")).toBe(containerName("blacktree", "job_abc:1"));
    expect(containerName("blacktree", "job_abc:1")).toMatch(/^blacktree-job_abc-1-[0-9a-f]{12}$/);
  });

  test("labels move the request's blacktree.* labels under the prefix and add the key", () => {
    expect(containerLabels("acme", "job_1:2", { "blacktree.job": "job_1", "blacktree.attempt": "2", other: "x" })).toEqual({
      "acme.job": "job_1",
      "acme.attempt": "2",
      other: "x",
      "acme.key": "job_1:2",
    });
  });
});
