/**
 * The worker's log is its stdout and stderr, one event per line with the team's emojis.
 * Every line goes through redaction: secrets are registered as soon as they are known,
 * so not even a child's echo of one (git, docker) reaches the log.
 */
const secrets = new Set<string>();

export function registerSecret(value: string | null | undefined): void {
  // Very short values would mangle ordinary words and protect nothing.
  if (value && value.length >= 4) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join("***");
  return out;
}

function write(stream: NodeJS.WriteStream, line: string): void {
  stream.write(redact(line) + "\n");
}

export const log = {
  progress: (message: string) => write(process.stdout, `🔄 ${message}`),
  success: (message: string) => write(process.stdout, `✅ ${message}`),
  warn: (message: string) => write(process.stderr, `⚠️ ${message}`),
  failure: (message: string) => write(process.stderr, `❌ ${message}`),
  /** A line of a child's output (git, docker), indented under the step that ran it. */
  child: (tool: string, line: string, stream: "stdout" | "stderr") =>
    write(stream === "stdout" ? process.stdout : process.stderr, `   ${tool}: ${line}`),
  /** The machine-readable last line, for runs without a callback. */
  result: (result: object) => write(process.stdout, `blacktree-result ${JSON.stringify(result)}`),
};
