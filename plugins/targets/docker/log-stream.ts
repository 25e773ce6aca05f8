/**
 * `docker logs` of a container without a TTY is multiplexed: frames of an 8-byte header
 * (stream byte, 3 zero bytes, big-endian length) and the payload. Returns the payloads in order.
 */
export function demux(buffer: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const stream = buffer[offset];
    if (stream > 2 || buffer[offset + 1] !== 0 || buffer[offset + 2] !== 0 || buffer[offset + 3] !== 0) {
      return buffer; // not multiplexed after all (a TTY container): the bytes are the text
    }
    const length = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + length));
    offset += 8 + length;
  }
  return Buffer.concat(parts);
}

/** Whole lines of the last `maxBytes` of the text. */
export function tailLines(text: Buffer, maxBytes: number): string[] {
  let tail = text.length > maxBytes ? text.subarray(text.length - maxBytes) : text;
  if (text.length > maxBytes) {
    const newline = tail.indexOf(0x0a);
    tail = newline === -1 ? Buffer.alloc(0) : tail.subarray(newline + 1);
  }
  const lines = tail.toString("utf8").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}
