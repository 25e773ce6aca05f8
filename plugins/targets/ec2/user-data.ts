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
/** `<account>.dkr.ecr.<region>.amazonaws.com/…`: pulled after a login with the instance's own role. */
const ECR_IMAGE = /^(\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com)\//;

export function workerUserData(key: string, image: string, workload: Workload, region: string, securityOpt: string[] = []): string {
  for (const name of Object.keys(workload.env ?? {})) if (!ENV_NAME.test(name)) throw new Error(`env name '${name}' is not a shell variable name`);
  const envArgs = Object.entries(workload.env ?? {}).map(([k, v]) => `  -e ${quote(`${k}=${v}`)} \\`);
  const ecr = ECR_IMAGE.exec(image);
  return [
    "#!/bin/bash",
    `# Blacktree worker ${key.replace(/[^\w:.@-]/g, "_")}: one container, its exit code as a tag, then power off (terminates).`,
    // The login token is made on the instance, with its own role: it never travels in this user data.
    ...(ecr ? [`aws ecr get-login-password --region ${quote(ecr[2])} | docker login --username AWS --password-stdin ${quote(ecr[1])} >/dev/null || echo "blacktree: ECR login failed" >&2`] : []),
    "docker run --rm --name blacktree-worker \\",
    ...securityOpt.map((opt) => `  --security-opt ${quote(opt)} \\`),
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
