/** Most log lines one `logs` call returns across the broker; the target bounds the bytes. */
export const MAX_LOG_LINES = 2000;

/** Reads a target's log iterable, keeping only its last `max` lines. */
export async function lastLines(lines: AsyncIterable<string> | undefined, max = MAX_LOG_LINES): Promise<string[]> {
  const kept: string[] = [];
  if (!lines) return kept;
  for await (const line of lines) {
    kept.push(line);
    if (kept.length > max) kept.shift();
  }
  return kept;
}
