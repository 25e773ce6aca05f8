import type { Workload } from "@blacktree/sdk";

/** EC2 takes at most 16 KB of user data, counted before base64. */
export const USER_DATA_MAX_BYTES = 16 * 1024;
export const EXIT_CODE_TAG = "blacktree.exit-code";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The instance's whole life as a shell script: run the worker container once with the job
 * env (secrets travel by name only: the worker fetches them through its callback), tag the
 * instance with the container's exit code (so inspect can report `exited`), power off —
 * and InstanceInitiatedShutdownBehavior=terminate makes that the end of the instance.
 */
export function workerUserData(key: string, image: string, workload: Workload, region: string): string {
  for (const name of Object.keys(workload.env ?? {})) if (!ENV_NAME.test(name)) throw new Error(`env name '${name}' is not a shell variable name`);
  const envArgs = Object.entries(workload.env ?? {}).map(([k, v]) => `  -e ${quote(`${k}=${v}`)} \\`);
  return [
    "#!/bin/bash",
    `# Blacktree worker ${key.replace(/[^\w:.@-]/g, "_")}: one container, its exit code as a tag, then power off (terminates).`,
    "docker run --rm --name blacktree-worker \\",
    ...envArgs,
    `  ${[image, ...(workload.command ?? [])].map(quote).join(" ")}`,
    "code=$?",
    "imds=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' http://169.254.169.254/latest/api/token)",
    'id=$(curl -s -H "X-aws-ec2-metadata-token: $imds" http://169.254.169.254/latest/meta-data/instance-id)',
    `aws ec2 create-tags --region ${quote(region)} --resources "$id" --tags "Key=${EXIT_CODE_TAG},Value=$code" || echo "blacktree: could not tag the exit code" >&2`,
    "shutdown -h now",
    "",
  ].join("\n");
}
