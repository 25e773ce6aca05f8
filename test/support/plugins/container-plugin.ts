/**
 * Test plugin, written as a third party would: `container-script` jobs run a shell script
 * in the offline busybox test image (see test/support/docker-image.sh). The image has no
 * node, so these workers never call back: the target's exit code tells the outcome.
 */
import { definePlugin, defineTaskType } from "../../../lib/sdk";

export const CONTAINER_IMAGE = "local/busybox:1";

const containerScript = (name: string) =>
  defineTaskType<{ deploymentId: string; script: string }>({
    name,
    params: { deploymentId: { type: "string", default: "none" }, script: { type: "string", max: 10_000 } },
    toWorkload: (job) => ({ image: CONTAINER_IMAGE, command: ["sh", "-c", job.params.script], env: {} }),
  });

export default definePlugin({
  name: "test-containers",
  apiVersion: "^1.0.0",
  taskTypes: [containerScript("container-script"), containerScript("container-script-b")],
});
