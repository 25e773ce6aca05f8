import { parsePluginsConfig } from "../../lib/config/plugins-config";
import { fallbackChain, fallbackKey } from "../../lib/jobs/fallback";

const routing = { fallback: { fargate: ["ec2", "process"] } };

test("an attempt tries the job's routed target, then its fallback list, in order", () => {
  expect(fallbackChain(routing, "fargate")).toEqual(["fargate", "ec2", "process"]);
  expect(fallbackChain(routing, "docker")).toEqual(["docker"]);
});

test("a fallback key names its target: never the first target's key", () => {
  expect(fallbackKey("job_1", 2, "ec2")).toBe("job_1:2@ec2");
});

describe("config loading refuses fallback chains that repeat a target", () => {
  const load = (fallback: Record<string, string[]>) => () => parsePluginsConfig({ plugins: [{ use: "./p" }], routing: { default: "a", fallback } }, {}, "development");
  test.each([
    [{ a: ["b", "a"] }, "routing.fallback.a", /itself/],
    [{ a: ["b", "b"] }, "routing.fallback.a", /'b' twice/],
  ])("%j", (fallback, field, message) => {
    let caught: any;
    try {
      load(fallback)();
    } catch (err) {
      caught = err;
    }
    expect(caught?.type).toBe("CONFIG_INVALID");
    expect(caught.data.fields).toEqual([{ field, message: expect.stringMatching(message) }]);
  });

  test("a chain without repeats loads", () => {
    expect(load({ a: ["b", "c"], b: ["a"] })().routing.fallback).toEqual({ a: ["b", "c"], b: ["a"] });
  });
});
